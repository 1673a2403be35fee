// What the KurrentDB adapter makes of records on a shared server. Records are built the way the real
// client builds them: raw records as the Rust bridge hands them over (bytes, an isJson flag), turned
// into recorded events by the client's own converter, then decoded by the adapter.
import { randomUUID } from 'node:crypto';
import { convertRustRecord } from '@kurrent/kurrentdb-client/dist/utils/convertRustEvent.js';
import { describe, expect, it } from 'vitest';
import { LOG_STREAM, decodeMetadata, decodeRecordedEvent, toKurrentPosition, toProperties } from '../../src/events/kurrent-decode.js';
import { EventStoreUnavailableError, type EventMetadata } from '../../src/events/store.js';

const utf8 = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

interface RawRecord {
  stream?: string;
  type?: string;
  isJson?: boolean;
  data?: Uint8Array;
  metadata?: Uint8Array;
  position?: { commit: bigint; prepare: bigint } | undefined;
}

/** A record as the bridge delivers it, through the client's converter. */
function recorded(raw: RawRecord) {
  return convertRustRecord({
    streamId: raw.stream ?? 'plan-1',
    id: randomUUID(),
    type: raw.type ?? 'PlanCreated',
    isJson: raw.isJson ?? true,
    revision: 3n,
    created: Date.now(),
    data: raw.data ?? utf8('{"plan_id":"p1"}'),
    metadata: raw.metadata ?? new Uint8Array(0),
    position: 'position' in raw ? raw.position : { commit: 1234n, prepare: 1234n },
  });
}

const metadata: EventMetadata = {
  command_id: 'c1',
  correlation_id: 'c1',
  causation_id: 'c1',
  at: '2025-01-01T00:00:00.000Z',
  schema_version: 1,
};

describe('decoding KurrentDB records', () => {
  it('reads a Planline event back exactly as written', () => {
    const decoded = decodeRecordedEvent(recorded({ metadata: utf8(JSON.stringify(metadata)) }));
    expect(decoded).toEqual({
      event: expect.objectContaining({ stream: 'plan-1', revision: 3, position: 1234, type: 'PlanCreated', data: { plan_id: 'p1' }, metadata }),
    });
  });

  it('surfaces an event written without metadata, or with metadata that is not JSON, with empty metadata', () => {
    for (const raw of [new Uint8Array(0), utf8('not json'), utf8('[1,2]'), utf8('"text"'), new Uint8Array([0xff, 0x00, 0x13])]) {
      const decoded = decodeRecordedEvent(recorded({ metadata: raw }));
      expect(decoded).toEqual({ event: expect.objectContaining({ data: { plan_id: 'p1' }, metadata: {} }) });
    }
  });

  it('skips events whose data is not a JSON object, instead of throwing', () => {
    const cases: RawRecord[] = [
      { data: utf8('[1,2,3]') }, // JSON, but an array
      { data: utf8('42') },
      { data: utf8('null') },
      { data: utf8('{"broken": ') }, // malformed JSON: the client hands over the text
      { isJson: false, data: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }, // binary
      { isJson: false, data: new Uint8Array(0) },
    ];
    for (const raw of cases) expect(decodeRecordedEvent(recorded(raw))).toEqual({ skip: 'data-not-an-object' });
  });

  it('surfaces binary events whose bytes hold a JSON object', () => {
    const decoded = decodeRecordedEvent(recorded({ isJson: false, data: utf8('{"a":1}') }));
    expect(decoded).toEqual({ event: expect.objectContaining({ data: { a: 1 } }) });
  });

  it('skips system records: $-typed events, and $-prefixed streams even with ordinary event types', () => {
    expect(decodeRecordedEvent(recorded({ type: '$metadata' }))).toEqual({ skip: 'system' });
    expect(decodeRecordedEvent(recorded({ stream: '$projections-orders-result', type: 'Result' }))).toEqual({ skip: 'system' });
    expect(decodeRecordedEvent(recorded({ stream: LOG_STREAM, type: 'LogCreated' }))).toEqual({ skip: 'log-marker' });
  });

  it('skips events of legacy explicit transactions, whose commit position is shared', () => {
    expect(decodeRecordedEvent(recorded({ position: { commit: 2000n, prepare: 1500n } }))).toEqual({ skip: 'legacy-transaction' });
  });

  it('takes the commit position given beside a record that carries none, and refuses to guess without one', () => {
    const record = recorded({ position: undefined });
    expect(decodeRecordedEvent(record, 777n)).toEqual({ event: expect.objectContaining({ position: 777 }) });
    expect(() => decodeRecordedEvent(record)).toThrow(EventStoreUnavailableError);
  });

  it('refuses a commit position that a number cannot hold exactly', () => {
    const big = 2n ** 53n + 1n;
    expect(() => decodeRecordedEvent(recorded({ position: { commit: big, prepare: big } }))).toThrow(EventStoreUnavailableError);
  });

  it('maps a position back to the same commit and prepare', () => {
    expect(toKurrentPosition(1234)).toEqual({ commit: 1234n, prepare: 1234n });
  });
});

describe('metadata through a multi-stream append', () => {
  it('sends string values only, as the client demands', () => {
    const properties = toProperties({ ...metadata, request_fingerprint: 'abc' });
    expect(Object.values(properties).every((v) => typeof v === 'string')).toBe(true);
    expect(properties).toEqual({ ...metadata, schema_version: '1', request_fingerprint: 'abc' });
  });

  it('reads back what was written from the JSON the server synthesizes from properties', () => {
    // The server adds its own $schema.* entries to the properties it hands v1 readers.
    const synthesized = JSON.stringify({ ...toProperties(metadata), '$schema.name': 'PlanCreated', '$schema.format': 'Json' });
    const decoded = decodeRecordedEvent(recorded({ metadata: utf8(synthesized) }));
    expect('event' in decoded && decoded.event.metadata).toEqual(metadata);
    expect(decodeMetadata({ schema_version: 'v2' })).toEqual({ schema_version: 'v2' }); // not a number: left alone
  });
});
