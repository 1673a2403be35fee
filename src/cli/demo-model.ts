#!/usr/bin/env node
// `npm run demo-model`: a stand-in for a real model, to try Planline end to end on a machine with no
// model endpoint. It is an OpenAI-compatible chat completions server on loopback that answers from
// rules, not intelligence: the classifier and the architect answer with Planline's own heuristics
// (as JSON, the way a model would), and every agent looks at the project once (list_files, so the
// client runs a tool) and then reports what it was asked to do and what it saw. Point Planline at it
// with OPENAI_BASE_URL=http://127.0.0.1:<port>/v1.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { classifyHeuristically } from '../planning/heuristic-classifier.js';
import { planHeuristically } from '../planning/heuristic-planner.js';
import { CLASSIFIER_SYSTEM_PROMPT } from '../planning/classifier.js';
import { ARCHITECT_SYSTEM_PROMPT } from '../planning/architect.js';

interface Message {
  role: string;
  content?: string | null;
  tool_calls?: unknown[];
}

let served = 0;

/** The last user message's text (the task), without Planline's framing of subtasks. */
function taskOf(messages: readonly Message[]): string {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  const text = typeof last?.content === 'string' ? last.content : '';
  return /Your subtask[^:]*: ([\s\S]*)$/.exec(text)?.[1]?.trim() ?? text.trim();
}

function reply(messages: readonly Message[], tools: readonly unknown[]): { content: string | null; tool_calls?: unknown[] } {
  const system = typeof messages[0]?.content === 'string' ? messages[0].content : '';
  const task = taskOf(messages);
  // Planline frames the classifier's and the architect's task after a heading; the rest is context.
  const framed = (heading: RegExp) => heading.exec(task)?.[1]?.split(/\n\n(?:The user reviewed|This is a re-plan)/)[0]?.trim() ?? task;
  if (system === CLASSIFIER_SYSTEM_PROMPT) {
    const verdict = classifyHeuristically(framed(/Task to classify:\n([\s\S]*)$/));
    return { content: JSON.stringify(verdict.kind === 'atomic' ? { kind: 'atomic', agent: verdict.agent, confidence: 'medium', reason: verdict.reason } : { kind: 'complex', confidence: 'medium', reason: verdict.reason }) };
  }
  if (system === ARCHITECT_SYSTEM_PROMPT) {
    const plan = planHeuristically({ goal: framed(/Task:\n([\s\S]*)$/) });
    return { content: JSON.stringify({ reasoning: plan.reasoning, subtasks: plan.subtasks }) };
  }
  // An agent: look once, then answer.
  const toolResults = messages.filter((m) => m.role === 'tool');
  const canList = tools.some((t) => (t as { function?: { name?: string } }).function?.name === 'list_files');
  if (toolResults.length === 0 && canList) {
    return { content: `Let me look at the project first.`, tool_calls: [{ id: `call_${++served}`, type: 'function', function: { name: 'list_files', arguments: JSON.stringify({ path: '.' }) } }] };
  }
  const seen = toolResults.map((m) => String(m.content ?? '')).join('\n');
  const preview = seen.length > 300 ? `${seen.slice(0, 300)} …` : seen;
  return { content: `(demo model) I would now: ${task}\n\nWhat I saw of the project:\n${preview || '(nothing)'}` };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const port = Number(process.env.DEMO_MODEL_PORT ?? process.argv[2] ?? 8090);
const server = createServer((req, res) => {
  void (async () => {
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) return send(res, 404, { error: { message: 'only POST /v1/chat/completions', type: 'invalid_request_error' } });
    let body: { messages?: Message[]; tools?: unknown[]; model?: string };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
    } catch {
      return send(res, 400, { error: { message: 'the body is not JSON', type: 'invalid_request_error' } });
    }
    const message = reply(body.messages ?? [], body.tools ?? []);
    send(res, 200, {
      id: `chatcmpl-demo-${++served}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model ?? 'demo',
      choices: [{ index: 0, message: { role: 'assistant', ...message }, finish_reason: message.tool_calls ? 'tool_calls' : 'stop' }],
      usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
    });
  })();
});
server.listen(port, '127.0.0.1', () => {
  process.stderr.write(`demo model (rules, not a real model) on http://127.0.0.1:${port}/v1 — start Planline with OPENAI_BASE_URL=http://127.0.0.1:${port}/v1\n`);
});
process.on('SIGINT', () => server.close(() => process.exit(0)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
