// One line of an export file, as `planline import` reads it: well-formed lines come back as events
// (the quick check), anything else is refused with what is wrong (the schema's words).
import { describe, expect, it } from 'vitest';
import { parseExportLine } from '../../src/cli/jsonl.js';

const valid = {
  stream: 'plan-1',
  revision: 3,
  position: 17,
  id: '0f8fad5b-d9cb-469f-a165-70867728950e',
  type: 'PlanApproved',
  data: { approval_request_id: 'a-1', decided_by: 'user', nested: { list: [1, 'two', null] } },
  metadata: { command_id: 'c', correlation_id: 'c', causation_id: 'c', at: '2025-01-01T00:00:00.000Z', schema_version: 1, extra: 'kept' },
};
const line = (changes: Record<string, unknown>) => JSON.stringify({ ...valid, ...changes });

describe('an export line', () => {
  it('reads a well-formed line as the event it holds, position optional, unknown top-level fields ignored', () => {
    expect(parseExportLine(JSON.stringify(valid))).toEqual({ ok: true, event: valid });
    const { position: _position, ...withoutPosition } = valid;
    expect(parseExportLine(JSON.stringify(withoutPosition))).toEqual({ ok: true, event: withoutPosition });
    expect(parseExportLine(line({ comment: 'hand-written' }))).toEqual({ ok: true, event: valid });
    expect(parseExportLine(line({ id: valid.id.toUpperCase() }))).toEqual({ ok: true, event: { ...valid, id: valid.id.toUpperCase() } });
  });

  it.each([
    [{ stream: '' }, /stream: must not be empty/],
    [{ revision: -1 }, /revision:/],
    [{ revision: 1.5 }, /revision:/],
    [{ position: null }, /position:/],
    [{ position: -2 }, /position:/],
    [{ id: 'not-a-uuid' }, /id: must be a UUID/],
    [{ id: undefined }, /id: missing/],
    [{ type: '' }, /type: must not be empty/],
    [{ data: [1, 2] }, /data: expected a JSON object, got an array/],
    [{ data: 'text' }, /data:/],
    [{ metadata: { ...valid.metadata, schema_version: 0 } }, /metadata.schema_version:/],
    [{ metadata: { ...valid.metadata, schema_version: 1.5 } }, /metadata.schema_version:/],
    [{ metadata: { ...valid.metadata, at: 5 } }, /metadata.at:/],
    [{ metadata: { ...valid.metadata, causation_id: undefined } }, /metadata.causation_id: missing/],
  ])('refuses %j, saying what is wrong', (changes, problem) => {
    const parsed = parseExportLine(line(changes));
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.problem).toMatch(problem);
  });

  it('refuses text that is not a JSON object', () => {
    expect(parseExportLine('{"stream":')).toMatchObject({ ok: false, problem: expect.stringMatching(/^malformed JSON/) });
    expect(parseExportLine('[1]')).toMatchObject({ ok: false, problem: expect.stringMatching(/expected a JSON object/) });
  });
});
