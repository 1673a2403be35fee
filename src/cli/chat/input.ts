// Lines from standard input. On a terminal: readline with editing and a prompt. Piped: plain lines in
// order, no prompt and no echo, so a script's answers are read exactly as written.
import { createInterface } from 'node:readline';

export interface LineInput {
  onLine(handler: (line: string) => void): void;
  /** Called once when the input ends (EOF, Ctrl-D) or Ctrl-C is pressed on a terminal. */
  onEnd(handler: () => void): void;
  /** Show the prompt again (terminal only). */
  prompt(text?: string): void;
  close(): void;
}

export function lineInput(stdin: NodeJS.ReadableStream, terminal: { tty: boolean; output?: NodeJS.WritableStream }): LineInput {
  const tty = terminal.tty && terminal.output !== undefined;
  const rl = createInterface({ input: stdin, ...(tty ? { output: terminal.output, terminal: true } : { terminal: false }), crlfDelay: Infinity });
  let ended = false;
  const endHandlers: Array<() => void> = [];
  const end = () => {
    if (ended) return;
    ended = true;
    for (const handler of endHandlers) handler();
  };
  rl.on('close', end);
  rl.on('SIGINT', () => {
    rl.close();
  });
  return {
    onLine: (handler) => void rl.on('line', handler),
    onEnd: (handler) => void endHandlers.push(handler),
    prompt(text) {
      if (!tty || ended) return;
      if (text !== undefined) rl.setPrompt(text);
      rl.prompt(true);
    },
    close: () => rl.close(),
  };
}
