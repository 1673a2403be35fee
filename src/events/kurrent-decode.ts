// KurrentDB records → the port's StoredEvent, and the port's shapes → what the client sends. Pure
// functions: everything the adapter reads passes through decodeRecordedEvent, so a record written by
// another tool on a shared server is skipped or surfaced here and can never make a read throw.
import { EventStoreUnavailableError, type EventMetadata, type Position, type StoredEvent } from './store.js';

/** Holds the one event that names this log (see the adapter's logId). Our bookkeeping: never shown. */
export const LOG_STREAM = 'planline-log';

/** A recorded event as the client hands it over (readStream, readAll and subscriptions alike). */
export interface RecordedEventShape {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  /** Parsed JSON for JSON events (or the text, when it is not valid JSON); bytes otherwise. */
  data: unknown;
  /** Parsed JSON, the raw bytes when they are not JSON, or undefined when empty. */
  metadata: unknown;
  position?: { commit: bigint; prepare: bigint } | undefined;
}

export type SkipReason =
  /** `$`-typed events and `$`-prefixed streams belong to the server (projections, metadata, users…). */
  | 'system'
  /** LOG_STREAM: this adapter's own bookkeeping. */
  | 'log-marker'
  /** data is not a JSON object (an array, a scalar, malformed JSON, binary): not an event of ours. */
  | 'data-not-an-object'
  /** Written in a legacy explicit transaction (commit ≠ prepare): its position is not unique as a number. */
  | 'legacy-transaction';

export type Decoded = { event: StoredEvent } | { skip: SkipReason };

/**
 * Decide what a record is to Planline. Skipped: system records, our log marker, records whose data is
 * not a JSON object, and records of legacy explicit transactions. Surfaced: everything else, with
 * metadata that is missing or not a JSON object read as `{}` (other tools often write none).
 *
 * `position` is the record's commit position when the caller knows it better (a stream read from a
 * server before 22.6 sends it beside the record); the record's own position wins when present.
 */
export function decodeRecordedEvent(record: RecordedEventShape, commitPosition?: bigint): Decoded {
  if (record.type.startsWith('$') || record.streamId.startsWith('$')) return { skip: 'system' };
  if (record.streamId === LOG_STREAM) return { skip: 'log-marker' };
  // Events written outside explicit transactions (every gRPC write, since server 20.6) have
  // commit === prepare, so the commit position alone names the event and a number round-trips to a
  // $all position. A legacy transaction's events share one commit position: not representable.
  if (record.position !== undefined && record.position.commit !== record.position.prepare) return { skip: 'legacy-transaction' };
  const commit = record.position?.commit ?? commitPosition;
  // Only a server too old to say where its events are (stream reads before 22.6 without a commit
  // position beside them): the store cannot work with it, and saying so beats guessing.
  if (commit === undefined) throw new EventStoreUnavailableError(`KurrentDB sent ${record.streamId}@${record.revision} without a position`);
  const data = asObject(record.data);
  if (data === undefined) return { skip: 'data-not-an-object' };
  return {
    event: {
      stream: record.streamId,
      revision: Number(record.revision),
      position: toPosition(commit),
      id: record.id,
      type: record.type,
      data,
      metadata: decodeMetadata(record.metadata),
    },
  };
}

/**
 * Metadata as written, whichever way it was written. A multi-stream append carries metadata as
 * string-valued properties (the client refuses anything else) and the server reads them back as a JSON
 * object with its own `$schema.*` entries added: those are dropped, and a schema_version that became
 * a string is a number again. Missing or non-object metadata (other tools) reads as `{}`.
 */
export function decodeMetadata(raw: unknown): EventMetadata {
  const parsed = asObject(raw);
  if (parsed === undefined) return {} as EventMetadata;
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key.startsWith('$')) continue;
    metadata[key] = key === 'schema_version' && typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value;
  }
  return metadata as unknown as EventMetadata;
}

/**
 * Metadata for the client's multiStreamAppend, which accepts only string values (it throws otherwise):
 * strings as they are, numbers and booleans as their text, anything else as JSON. Absent values are left out.
 */
export function toProperties(metadata: EventMetadata): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (value === undefined || value === null) continue;
    properties[key] = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  }
  return properties;
}

/** JSON events arrive parsed; binary ones (written by other tools) as bytes that may hold JSON. */
function asObject(value: unknown): Record<string, unknown> | undefined {
  let parsed = value;
  if (value instanceof Uint8Array) {
    if (value.length === 0) return undefined;
    try {
      parsed = JSON.parse(Buffer.from(value).toString('utf8'));
    } catch {
      return undefined;
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return parsed as Record<string, unknown>;
}

/** Our positions are numbers; a commit position beyond 2^53 would silently lose precision. */
export function toPosition(commit: bigint): Position {
  if (commit > BigInt(Number.MAX_SAFE_INTEGER) || commit < 0n) {
    throw new EventStoreUnavailableError(`commit position ${commit} does not fit a Position`);
  }
  return Number(commit);
}

/**
 * A Position back to a $all position. Exact for every position this adapter hands out (commit ===
 * prepare, see decodeRecordedEvent); any other number may fall inside a record, which the server
 * refuses as an invalid position (the adapter then finds the event boundary before it).
 */
export function toKurrentPosition(position: Position): { commit: bigint; prepare: bigint } {
  return { commit: BigInt(position), prepare: BigInt(position) };
}
