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

// The array check comes first: v.record turns an array into an object ({"0": …}) and would let it pass.
const jsonObject = v.pipe(
  v.custom<unknown>((value) => !Array.isArray(value), 'expected a JSON object, got an array'),
  v.record(v.string(), v.unknown()),
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
  const quick = wellFormedLine(json as Record<string, unknown>);
  if (quick !== undefined) return { ok: true, event: quick };
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

// The schema above, checked by hand: an import validates a million lines, and this costs a fraction of
// the schema's run. It accepts only lines the schema accepts; anything else (including every invalid
// line) goes through the schema, which has the last word and the words for what is wrong.
const UUID = /^[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}$/iu;

function wellFormedLine(line: Record<string, unknown>): ImportedEvent | undefined {
  const { stream, revision, position, id, type, data, metadata } = line;
  if (typeof stream !== 'string' || stream.length === 0) return undefined;
  if (!isCount(revision)) return undefined;
  if (position !== undefined && !isCount(position)) return undefined;
  if (typeof id !== 'string' || !UUID.test(id)) return undefined;
  if (typeof type !== 'string' || type.length === 0) return undefined;
  if (!isObject(data) || !isObject(metadata)) return undefined;
  const { command_id, correlation_id, causation_id, at, schema_version } = metadata;
  if (typeof command_id !== 'string' || typeof correlation_id !== 'string' || typeof causation_id !== 'string' || typeof at !== 'string') return undefined;
  if (typeof schema_version !== 'number' || !Number.isInteger(schema_version) || schema_version < 1) return undefined;
  const event: ImportedEvent = { stream, revision, id, type, data, metadata: metadata as unknown as EventMetadata };
  if (position !== undefined) event.position = position;
  return event;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
