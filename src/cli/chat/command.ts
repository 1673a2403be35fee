// `planline chat` as a CLI command: options parsed (bad ones exit 2), then the chat runs until /quit,
// the end of the input (exit 0) or a connection that cannot be made or kept (exit 1).
import type { CliCommand } from '../io.js';
import { runChat } from './chat.js';
import { CHAT, DEFAULT_URL, parseChatOptions } from './options.js';

export const chatCommand: CliCommand = {
  name: CHAT,
  synopsis: 'chat [--url URL] [--session ID] [--token JWT] [--workspace DIR] [--yes] [--json]',
  summary: 'talk to a running Planline over its IDE socket, and run the agents\' tool calls in a workspace',
  details: [
    `--url URL         the server (default ${DEFAULT_URL})`,
    '--session ID      join a session; without it a new one is started and its id printed',
    '--token JWT       bearer token for the socket (default: $PLANLINE_TOKEN)',
    '--workspace DIR   where tool calls run (default: the current directory); paths outside it are refused',
    '--yes, -y         approve plans and tool calls without asking',
    '--json            print the server\'s frames as JSON lines (notes go to stderr)',
    'Type a message to send it; /help lists the commands (/approve, /reject, /modify, /cancel, /agent, /quit).',
    'Reconnects by itself and resumes where it left off. Exit codes: 0 /quit or end of input, 1 cannot connect, 2 bad arguments.',
  ],
  run: (args, io) => runChat(parseChatOptions(args, io.env), io),
};
