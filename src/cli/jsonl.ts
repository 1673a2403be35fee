// The export file: JSON Lines, one stored event per line, in log order. `planline export` writes it and
// `planline import` reads it back; this module is the one place that knows its shape.
import * as v from 'valibot';
import type { EventMetadata, StoredEvent } from '../events/store.js';

/** One line of an export. `position` is the event's place in the source log (informational on import). */
export type ExportedEvent = Pick<StoredEvent, 'stream' | 'revision' | 'position' | 'id' | 'type' | 'data' | 'metadata'>;

export function toExportLine(event: StoredEvent): string {
  const line: ExportedEvent = {
    stream: event.stream,
    revision: event.revision,
    position: event.position,
    id: event.id,
    type: event.type,
    data: event.data,
    metadata: event.metadata,
  };
  return JSON.stringify(line);
}

const jsonObject = v.pipe(
  v.record(v.string(), v.unknown()),
  v.check((value) => !Array.isArray(value), 'expected a JSON object, got an array'),
);

const metadataSchema = v.looseObject({
  command_id: v.string(),
  correlation_id: v.string(),
  causation_id: v.string(),
  at: v.string(),
  schema_version: v.pipe(v.number(), v.integer(), v.minValue(1)),
});

const lineSchema = v.object({
  stream: v.pipe(v.string(), v.minLength(1, 'must not be empty')),
  revision: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
  // Optional: a hand-written file need not invent positions; the target store assigns its own anyway.
  position: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0))),
  // The store only accepts UUIDs, and a kept id is what makes a second import a no-op.
  id: v.pipe(v.string(), v.uuid('must be a UUID')),
  type: v.pipe(v.string(), v.minLength(1, 'must not be empty')),
  data: jsonObject,
  metadata: metadataSchema,
});

/** An event read back from an export line (position may be absent). */
export type ImportedEvent = Omit<ExportedEvent, 'position'> & { position?: number | undefined };

export type ParsedLine = { ok: true; event: ImportedEvent } | { ok: false; problem: string };

/** One line of an export file: the event, or one sentence saying what is wrong with it. */
export function parseExportLine(text: string): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `malformed JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { ok: false, problem: 'expected a JSON object with stream, revision, id, type, data and metadata' };
  }
  const result = v.safeParse(lineSchema, json);
  if (!result.success) {
    const problems = result.issues.map((issue) => `${v.getDotPath(issue) ?? 'line'}: ${describeIssue(issue)}`);
    return { ok: false, problem: problems.join('; ') };
  }
  const { metadata, ...rest } = result.output;
  return { ok: true, event: { ...rest, metadata: metadata as EventMetadata } };
}

/** "missing" reads better than valibot's "Expected string but received undefined" for an absent field. */
function describeIssue(issue: v.BaseIssue<unknown>): string {
  return issue.input === undefined && issue.kind === 'schema' ? 'missing' : issue.message;
}
