import { describe, expect, it } from 'vitest';
import { extractJson, extractJsonObject } from '../../src/planning/tolerant-json.js';

const plan = { reasoning: 'split by layer', subtasks: [{ description: 'Add the model', agent: 'coder', dependencies: [] }] };

describe('extractJson', () => {
  it.each([
    ['plain JSON', JSON.stringify(plan)],
    ['a ```json fence with prose around it', `Here is the plan:\n\n\`\`\`json\n${JSON.stringify(plan, null, 2)}\n\`\`\`\n\nLet me know if you want changes.`],
    ['a bare ``` fence', `\`\`\`\n${JSON.stringify(plan)}\n\`\`\``],
    ['leading prose', `Sure! ${JSON.stringify(plan)}`],
    ['trailing prose with braces in it', `${JSON.stringify(plan)}\nNote: {this} is not JSON.`],
    ['an unterminated fence', `\`\`\`json\n${JSON.stringify(plan)}`],
    ["Python's True/False/None (the seed's classifier saw these)", '{"reasoning": "split by layer", "subtasks": [{"description": "Add the model", "agent": "coder", "dependencies": []}], "ok": True, "x": None}'],
    ['trailing commas', '{"reasoning": "split by layer", "subtasks": [{"description": "Add the model", "agent": "coder", "dependencies": [],},],}'],
    ['a bracketed aside before the JSON', `[Note] the plan follows: ${JSON.stringify(plan)}`],
  ])('finds the value in %s', (_, text) => {
    const result = extractJson(text);
    expect(result.ok).toBe(true);
    expect(result.ok && result.value).toMatchObject(plan);
  });

  it('prefers the ```json fence over another fence', () => {
    const text = '```bash\nnpm test\n```\n```json\n{"a": 1}\n```';
    expect(extractJson(text)).toEqual({ ok: true, value: { a: 1 } });
  });

  it('keeps True inside strings as it is', () => {
    expect(extractJson('{"text": "True story", "flag": True,}')).toEqual({ ok: true, value: { text: 'True story', flag: true } });
  });

  it('returns an array answer', () => {
    expect(extractJson('The subtasks: [{"description": "a"}]')).toEqual({ ok: true, value: [{ description: 'a' }] });
  });

  it.each([
    ['an empty answer', '', /empty/],
    ['prose only', 'I cannot help with that.', /no JSON object or array found/],
    ['broken JSON', '{"subtasks": [{"description": "a"', /no JSON object or array found/],
  ])('says why nothing was found in %s', (_, text, message) => {
    const result = extractJson(text);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(message);
  });

  it('does not return a fragment of a broken outer object', () => {
    expect(extractJson('{"plan": {"a": 1}, "broken": }').ok).toBe(false);
  });
});

describe('extractJsonObject', () => {
  it('refuses arrays and scalars', () => {
    expect(extractJsonObject('[1, 2]')).toEqual({ ok: false, error: 'expected a JSON object, got an array' });
    expect(extractJsonObject('"atomic"')).toEqual({ ok: false, error: 'expected a JSON object, got "atomic"' });
  });
});
