// The tool-approval policy as given (a session's policy) / when (a tool call) / then (run, ask or refuse).
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/commands/errors.js';
import {
  changeToolPolicy,
  commandPrefixOf,
  decideToolCall,
  DEFAULT_TOOL_POLICY,
  parseToolPolicyChange,
  rememberApproval,
  splitCommand,
  type ToolDecision,
  type ToolPolicy,
  type ToolPolicyChange,
} from '../../src/agents/tool-policy.js';

function given(policy: ToolPolicy = DEFAULT_TOOL_POLICY, ...changes: Array<ToolPolicyChange | ((p: ToolPolicy) => ToolPolicy)>) {
  const state = changes.reduce<ToolPolicy>((p, change) => (typeof change === 'function' ? change(p) : changeToolPolicy(p, change)), policy);
  return {
    policy: state,
    when(tool: string, args: Record<string, unknown> = {}) {
      const decision = decideToolCall(state, tool, args);
      return {
        decision,
        then(action: ToolDecision['action'], reason?: RegExp) {
          expect(decision.action).toBe(action);
          expect(decision.requires_approval).toBe(action === 'ask');
          if (reason) expect(decision.reason).toMatch(reason);
        },
      };
    },
  };
}
const command = (line: string) => ({ command: line });
const remembered = (tool: string, args: Record<string, unknown> = {}) => (p: ToolPolicy) => rememberApproval(p, tool, args);

describe("the seed's default", () => {
  it.each(['write_file', 'delete_file', 'move_file', 'create_directory', 'execute_command'])('asks before %s', (tool) => {
    given().when(tool, tool === 'execute_command' ? command('ls') : { path: 'a' }).then('ask');
  });

  it.each(['read_file', 'list_files', 'search_in_code', 'search_files'])('runs %s without asking', (tool) => {
    given().when(tool, { path: '.' }).then('run', /does not change the project/);
  });

  it('reads the aliases models use: run_command is execute_command', () => {
    given().when('run_command', command('ls')).then('ask');
    given(DEFAULT_TOOL_POLICY, { commands: { deny: ['rm'] } }).when('run_command', command('rm -rf build')).then('refuse');
  });

  it('refuses a tool nobody executes', () => {
    given().when('format_disk').then('refuse', /unknown tool "format_disk"/);
  });
});

describe('auto-approve by tool', () => {
  it('given write_file auto-approved, when the agent writes a file, then it runs without asking', () => {
    given(DEFAULT_TOOL_POLICY, { auto_approve: ['write_file'] }).when('write_file', { path: 'a.dart', content: '' }).then('run', /auto-approved/);
  });

  it('given execute_command auto-approved, a denied command is still refused', () => {
    const session = given(DEFAULT_TOOL_POLICY, { auto_approve: ['execute_command'], commands: { deny: ['git push'] } });
    session.when('execute_command', command('flutter test')).then('run');
    session.when('execute_command', command('git push origin main')).then('refuse');
  });
});

describe('command prefixes', () => {
  const session = given(DEFAULT_TOOL_POLICY, { commands: { allow: ['npm test', 'git', 'git push --dry-run'], deny: ['git push', 'rm -rf'] } });

  it('an allowed prefix runs without asking', () => {
    session.when('execute_command', command('npm test -- --watch=false')).then('run', /allowed by rule "npm test"/);
    session.when('execute_command', command('git status')).then('run', /allowed by rule "git"/);
  });

  it('the longest matching prefix wins, whichever list it is in', () => {
    session.when('execute_command', command('git push origin main')).then('refuse', /rule "git push" matches "git push origin main"/);
    session.when('execute_command', command('git push --dry-run origin main')).then('run', /"git push --dry-run"/);
  });

  it('on a tie the deny rule wins', () => {
    given(DEFAULT_TOOL_POLICY, { commands: { allow: ['make'], deny: ['make'] } }).when('execute_command', command('make all')).then('refuse');
  });

  it('prefixes match whole words: "git" does not allow "gitk"', () => {
    session.when('execute_command', command('gitk --all')).then('ask');
  });

  it('a command no rule matches is asked about', () => {
    session.when('execute_command', command('flutter pub get')).then('ask', /commands need approval/);
  });

  it('whitespace does not matter', () => {
    session.when('execute_command', command('  rm    -rf   build ')).then('refuse');
  });

  it('every part of a compound command is judged: an allowed part does not carry a denied one', () => {
    session.when('execute_command', command('npm test && rm -rf /')).then('refuse', /"rm -rf \/"/);
    session.when('execute_command', command('git status; ls')).then('ask');
    session.when('execute_command', command('git status | git log')).then('run');
  });

  it('a redirection or substitution is asked about even when every part is allowed', () => {
    session.when('execute_command', command('git log > notes.txt')).then('ask');
    session.when('execute_command', command('git $(echo push) origin')).then('ask');
    session.when('execute_command', command('git `cat cmd`')).then('ask');
  });

  it('operators inside quotes are text, not operators', () => {
    session.when('execute_command', command("git commit -m 'a; b && c > d'")).then('run');
  });
});

describe('remembered approvals', () => {
  it('given the user approved write_file with remember, then later writes run without asking', () => {
    const session = given(DEFAULT_TOOL_POLICY, remembered('write_file', { path: 'a' }));
    session.when('write_file', { path: 'b', content: 'x' }).then('run', /approved for the rest of the session/);
    session.when('delete_file', { path: 'b' }).then('ask');
  });

  it('given the user approved "npm test" with remember, then npm test runs without asking but npm publish does not', () => {
    const session = given(DEFAULT_TOOL_POLICY, remembered('execute_command', command('npm test -- --coverage')));
    expect(session.policy.remembered).toEqual({ tools: [], command_prefixes: ['npm test'] });
    session.when('execute_command', command('npm test')).then('run', /"npm test" was approved for the rest of the session/);
    session.when('execute_command', command('npm publish')).then('ask');
  });

  it('remembering a command never remembers the whole tool, and a deny rule still wins over it', () => {
    const session = given(DEFAULT_TOOL_POLICY, { commands: { deny: ['rm -rf'] } }, remembered('execute_command', command('rm -rf build')));
    expect(session.policy.remembered.tools).toEqual([]);
    session.when('execute_command', command('rm -rf build')).then('refuse');
  });

  it('remembering a compound command remembers each part', () => {
    const session = given(DEFAULT_TOOL_POLICY, remembered('execute_command', command('flutter pub get && flutter test')));
    expect(session.policy.remembered.command_prefixes).toEqual(['flutter pub', 'flutter test']);
  });

  it('remembering twice changes nothing', () => {
    const once = rememberApproval(DEFAULT_TOOL_POLICY, 'write_file', {});
    expect(rememberApproval(once, 'write_file', {})).toBe(once);
  });

  it('resetting forgets them', () => {
    given(DEFAULT_TOOL_POLICY, remembered('write_file'), { reset_remembered: true }).when('write_file', { path: 'a', content: '' }).then('ask');
  });
});

describe('commandPrefixOf', () => {
  it.each([
    ['npm test -- --watch', 'npm test'],
    ['git status', 'git status'],
    ['ls', 'ls'],
    ['npm run build -- --prod', 'npm run build'],
    ['rm -rf build', 'rm -rf'],
  ])('%j → %j', (line, prefix) => {
    expect(commandPrefixOf(line)).toBe(prefix);
  });
});

describe('splitCommand', () => {
  it('cuts at control operators outside quotes and flags redirections', () => {
    expect(splitCommand('a && b || c; d | e & f')).toEqual({ segments: ['a', 'b', 'c', 'd', 'e', 'f'], hidden: false });
    expect(splitCommand('make 2>&1')).toEqual({ segments: ['make 2>&1'], hidden: true });
    expect(splitCommand('echo "a && b"')).toEqual({ segments: ['echo "a && b"'], hidden: false });
  });
});

describe('changing a policy from outside', () => {
  it('validates and normalizes a change', () => {
    expect(parseToolPolicyChange({ auto_approve: ['search_files', 'write_file'], commands: { allow: ['  npm   test '] } })).toEqual({
      auto_approve: ['search_in_code', 'write_file'],
      commands: { allow: ['npm   test'] },
    });
    expect(changeToolPolicy(DEFAULT_TOOL_POLICY, { commands: { allow: ['  npm   test '] } }).commands.allow).toEqual(['npm test']);
  });

  it.each([
    [{ auto_approve: ['format_disk'] }, /auto_approve/],
    [{ commands: { deny: [''] } }, /must not be empty/],
    [{ commands: { allow: 'npm' } }, /allow/],
    [{ surprise: true }, /surprise/],
  ])('refuses %j with a clear 400', (input, message) => {
    let caught: unknown;
    try {
      parseToolPolicyChange(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DomainError);
    expect((caught as DomainError).status).toBe(400);
    expect((caught as DomainError).message).toMatch(message);
  });
});
