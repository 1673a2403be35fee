// A scripted KurrentDB for the adapter's tests where no real server can run: a gRPC server on loopback
// speaking the same protocol (the client package's own service definitions and messages), whose
// answers each test scripts: what a real server does at the moments that matter (a dropped append,
// a subscription that drops or ends) without waiting for those moments to happen by chance. Only the
// calls the adapter makes over gRPC are served: server features, batch append and $all subscriptions
// (reads of streams and pages of $all go through the client's Rust bridge and are not scripted).
import { randomUUID } from 'node:crypto';
import { Socket, createServer as createTcpServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import serverFeaturesGrpc from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/serverfeatures_grpc_pb.js';
import serverFeatures from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/serverfeatures_pb.js';
import shared from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/shared_pb.js';
import status from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/status_pb.js';
import streamsGrpc from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/streams_grpc_pb.js';
import streams from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v1/streams_pb.js';
import streamsV2Errors from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/streams/errors_pb.js';
import streamsV2Grpc from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/streams/streams_grpc_pb.js';
import streamsV2 from '@kurrent/kurrentdb-client/generated/kurrentdb/protocols/v2/streams/streams_pb.js';
import { Any } from 'google-protobuf/google/protobuf/any_pb.js';

/** One append as the server received it (all of its batch messages put together). */
export interface ReceivedAppend {
  stream: string;
  /** 'any' | 'no_stream' | 'stream_exists' | a revision as text. */
  expected: string;
  ids: string[];
}

export type AppendAnswer =
  | { kind: 'success'; revision: number; position: number }
  /** What a server answers after dropping an append (IdempotentNotReady) and timing out. */
  | { kind: 'timeout' };

/** A subscription to $all as the server received it: where it starts, and a way to answer it. */
export interface ReceivedSubscription {
  /** The position it starts strictly after; undefined for the start of the log. */
  after: { commit: bigint; prepare: bigint } | undefined;
  send(event: ScriptedEvent): void;
  /** End the call cleanly, as a server shutting down a subscription does. */
  end(): void;
  /** Fail the call with a gRPC status (UNAVAILABLE: the node went away). */
  fail(code: grpc.status, details: string): void;
}

export interface ReceivedRead {
  /** '$all' or the stream's name. */
  stream: string;
  direction: 'forwards' | 'backwards';
  /** For $all: the position, 'start' or 'end'; for a stream: the revision, 'start' or 'end'. */
  from: { commit: bigint; prepare: bigint } | bigint | 'start' | 'end';
  maxCount: number;
}

export interface ScriptedEvent {
  stream: string;
  revision: number;
  position: number;
  /** Default: the same as position (every event written outside a legacy transaction). */
  prepare?: number;
  type?: string;
  /** JSON data (default `{ n: revision }`), or raw bytes written as application/octet-stream. */
  data?: unknown;
  /** Custom metadata bytes; default: Planline's metadata as JSON. */
  metadata?: Uint8Array;
}

export type ReadAnswer = { events: ScriptedEvent[] } | { streamNotFound: string } | { fail: grpc.status; details: string };

/** One stream of a multi-stream append (AppendSession) as the server received it. */
export interface ReceivedStreamAppend {
  stream: string;
  /** As sent: -1 no stream, -2 any, -4 stream exists, or a revision; undefined when not sent. */
  expectedRevision: string | undefined;
  records: { id: string; type: string; data: unknown; properties: Record<string, unknown> }[];
}

export type MultiAppendAnswer =
  | { position: number; revisions: number[] }
  /** A server's StreamRevisionConflict for the first stream whose expectation failed. */
  | { conflict: { stream: string; expectedRevision: string; actualRevision: string } };

export interface ScriptedKurrentDb {
  /** A connection string for the adapter, through a proxy that counts open connections. */
  readonly url: string;
  readonly appends: ReceivedAppend[];
  /** Decide the answer to each append, in order of arrival. */
  answerAppend: (append: ReceivedAppend, index: number) => AppendAnswer;
  /** Called for every $all subscription, in order. */
  onSubscribe: (subscription: ReceivedSubscription) => void;
  readonly multiAppends: ReceivedStreamAppend[][];
  answerMultiAppend: (append: ReceivedStreamAppend[]) => MultiAppendAnswer;
  /** Reads (not subscriptions) as received; the Rust bridge behind the client's reads sends these. */
  readonly reads: ReceivedRead[];
  answerRead: (read: ReceivedRead) => ReadAnswer;
  /** TCP connections from clients that are open right now. */
  openConnections(): number;
  close(): Promise<void>;
}

/** `multiStreamAppend`: list (and serve) the v2 AppendSession method, as KurrentDB 25.1+ does. */
export async function startScriptedKurrentDb(serverVersion = '24.10.0.0', multiStreamAppend = false): Promise<ScriptedKurrentDb> {
  const server = new grpc.Server();
  const scripted: ScriptedKurrentDb = {
    url: '',
    appends: [],
    answerAppend: (_append, index) => ({ kind: 'success', revision: 0, position: 1000 + index }),
    onSubscribe: () => undefined,
    multiAppends: [],
    answerMultiAppend: (append) => ({ position: 1000, revisions: append.map(() => 0) }),
    reads: [],
    answerRead: () => ({ events: [] }),
    openConnections: () => sockets.size,
    close,
  };

  server.addService(serverFeaturesGrpc.ServerFeaturesService, {
    getSupportedMethods(_call: unknown, callback: grpc.sendUnaryData<unknown>) {
      const method = new serverFeatures.SupportedMethod();
      method.setServiceName('event_store.client.streams.Streams');
      method.setMethodName('BatchAppend');
      const methods = new serverFeatures.SupportedMethods();
      methods.setEventStoreServerVersion(serverVersion);
      const appendSession = new serverFeatures.SupportedMethod();
      appendSession.setServiceName('kurrentdb.protocol.v2.streams.StreamsService');
      appendSession.setMethodName('AppendSession');
      methods.setMethodsList(multiStreamAppend ? [method, appendSession] : [method]);
      callback(null, methods);
    },
  });

  const unimplemented = (_call: unknown, callback?: grpc.sendUnaryData<unknown>) =>
    callback?.({ code: grpc.status.UNIMPLEMENTED, details: 'not scripted' } as grpc.ServiceError, null);
  server.addService(streamsGrpc.StreamsService, {
    append: unimplemented,
    delete: unimplemented,
    tombstone: unimplemented,
    batchAppend(call: grpc.ServerDuplexStream<InstanceType<typeof streams.BatchAppendReq>, unknown>) {
      const pending = new Map<string, ReceivedAppend>();
      call.on('data', (request: InstanceType<typeof streams.BatchAppendReq>) => {
        const correlation = request.getCorrelationId()!.getString();
        let append = pending.get(correlation);
        const options = request.getOptions();
        if (append === undefined && options !== undefined) {
          append = {
            stream: Buffer.from(options.getStreamIdentifier()!.getStreamName_asU8()).toString('utf8'),
            expected: options.hasStreamPosition() ? options.getStreamPosition() : options.hasNoStream() ? 'no_stream' : options.hasStreamExists() ? 'stream_exists' : 'any',
            ids: [],
          };
          pending.set(correlation, append);
        }
        if (append === undefined) return;
        append.ids.push(...request.getProposedMessagesList().map((m) => m.getId()!.getString()));
        if (!request.getIsFinal()) return;
        pending.delete(correlation);
        scripted.appends.push(append);
        const answer = scripted.answerAppend(append, scripted.appends.length - 1);
        const response = new streams.BatchAppendResp();
        response.setCorrelationId(request.getCorrelationId());
        response.setStreamIdentifier(options?.getStreamIdentifier() ?? streamIdentifier(append.stream));
        if (answer.kind === 'success') {
          const position = new shared.AllStreamPosition();
          position.setCommitPosition(String(answer.position));
          position.setPreparePosition(String(answer.position));
          const success = new streams.BatchAppendResp.Success();
          success.setCurrentRevision(String(answer.revision));
          success.setPosition(position);
          response.setSuccess(success);
        } else {
          const details = new Any();
          details.pack(new shared.Timeout().serializeBinary(), 'event_store.client.Timeout');
          const error = new status.Status();
          error.setCode(4);
          error.setMessage('Timeout');
          error.setDetails(details);
          response.setError(error);
        }
        call.write(response);
      });
      call.on('end', () => call.end());
    },
    read(call: grpc.ServerWritableStream<InstanceType<typeof streams.ReadReq>, unknown>) {
      const options = call.request.getOptions();
      if (options !== undefined && !options.hasSubscription()) {
        scripted.reads.push(describeRead(options));
        const answer = scripted.answerRead(scripted.reads[scripted.reads.length - 1]!);
        if ('fail' in answer) {
          call.emit('error', { code: answer.fail, details: answer.details });
          return;
        }
        if ('streamNotFound' in answer) {
          const notFound = new streams.ReadResp.StreamNotFound();
          notFound.setStreamIdentifier(streamIdentifier(answer.streamNotFound));
          const response = new streams.ReadResp();
          response.setStreamNotFound(notFound);
          call.write(response);
        } else {
          for (const event of answer.events) call.write(readEvent(event));
        }
        call.end();
        return;
      }
      if (options === undefined || !options.hasAll()) {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'only $all subscriptions are scripted' });
        return;
      }
      const all = options.getAll()!;
      const from = all.hasPosition() ? all.getPosition()! : undefined;
      const confirmation = new streams.ReadResp.SubscriptionConfirmation();
      confirmation.setSubscriptionId(randomUUID());
      const confirmed = new streams.ReadResp();
      confirmed.setConfirmation(confirmation);
      call.write(confirmed);
      scripted.onSubscribe({
        after: from ? { commit: BigInt(from.getCommitPosition()), prepare: BigInt(from.getPreparePosition()) } : undefined,
        send(event) {
          call.write(readEvent(event));
        },
        end() {
          call.end();
        },
        fail(code, details) {
          call.emit('error', { code, details });
        },
      });
    },
  });

  if (multiStreamAppend) {
    server.addService(streamsV2Grpc.StreamsServiceService, {
      appendRecords: unimplemented,
      appendSession(call: grpc.ServerReadableStream<InstanceType<typeof streamsV2.AppendRequest>, unknown>, callback: grpc.sendUnaryData<unknown>) {
        const received: ReceivedStreamAppend[] = [];
        call.on('data', (request: InstanceType<typeof streamsV2.AppendRequest>) => {
          received.push({
            stream: request.getStream(),
            expectedRevision: request.hasExpectedRevision() ? request.getExpectedRevision() : undefined,
            records: request.getRecordsList().map((record) => ({
              id: record.getRecordId() ?? '',
              type: record.getSchema()?.getName() ?? '',
              data: JSON.parse(Buffer.from(record.getData_asU8()).toString('utf8')) as unknown,
              properties: properties(record.getPropertiesMap()),
            })),
          });
        });
        call.on('end', () => {
          scripted.multiAppends.push(received);
          const answer = scripted.answerMultiAppend(received);
          if ('conflict' in answer) {
            const conflict = new streamsV2Errors.StreamRevisionConflictErrorDetails();
            conflict.setStream(answer.conflict.stream);
            conflict.setExpectedRevision(answer.conflict.expectedRevision);
            conflict.setActualRevision(answer.conflict.actualRevision);
            const details = new Any();
            details.pack(conflict.serializeBinary(), 'kurrentdb.protocol.v2.streams.errors.StreamRevisionConflictErrorDetails');
            const rich = new status.Status();
            rich.setCode(9 as never); // FAILED_PRECONDITION
            rich.setMessage('stream revision conflict');
            rich.setDetails(details);
            const metadata = new grpc.Metadata();
            metadata.set('grpc-status-details-bin', Buffer.from(rich.serializeBinary()));
            callback({ code: grpc.status.FAILED_PRECONDITION, details: 'stream revision conflict', metadata } as grpc.ServiceError, null);
            return;
          }
          const response = new streamsV2.AppendSessionResponse();
          response.setPosition(String(answer.position));
          response.setOutputList(
            received.map((part, i) => {
              const output = new streamsV2.AppendResponse();
              output.setStream(part.stream);
              output.setStreamRevision(String(answer.revisions[i]));
              return output;
            }),
          );
          callback(null, response);
        });
      },
    });
  }

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );

  // The adapter connects through this proxy, so a test can see whether it closed its connections.
  const sockets = new Set<Socket>();
  const proxy = createTcpServer((client) => {
    const upstream = new Socket();
    sockets.add(client);
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    upstream.connect(port, '127.0.0.1', () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  });
  const proxyPort = await new Promise<number>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve((proxy.address() as { port: number }).port)));
  (scripted as { url: string }).url = `kurrentdb://127.0.0.1:${proxyPort}?tls=false`;

  async function close(): Promise<void> {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    server.forceShutdown();
  }
  return scripted;
}

/** Property values as the server would see them (the client sends every value as a string). */
function properties(map: ReturnType<InstanceType<typeof streamsV2.AppendRecord>['getPropertiesMap']>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  map.forEach((value, key) => {
    result[key] = value.toJavaScript();
  });
  return result;
}

function streamIdentifier(stream: string) {
  const identifier = new shared.StreamIdentifier();
  identifier.setStreamName(Buffer.from(stream, 'utf8'));
  return identifier;
}

function describeRead(options: InstanceType<typeof streams.ReadReq.Options>): ReceivedRead {
  const direction = options.getReadDirection() === streams.ReadReq.Options.ReadDirection.BACKWARDS ? 'backwards' : 'forwards';
  const maxCount = Number(options.getCount());
  if (options.hasAll()) {
    const all = options.getAll()!;
    const position = all.getPosition();
    const from = all.hasStart() ? 'start' : all.hasEnd() ? 'end' : { commit: BigInt(position!.getCommitPosition()), prepare: BigInt(position!.getPreparePosition()) };
    return { stream: '$all', direction, from, maxCount };
  }
  const stream = options.getStream()!;
  const name = Buffer.from(stream.getStreamIdentifier()!.getStreamName_asU8()).toString('utf8');
  return { stream: name, direction, from: stream.hasStart() ? 'start' : stream.hasEnd() ? 'end' : BigInt(stream.getRevision()), maxCount };
}

function readEvent(event: ScriptedEvent) {
  const recorded = new streams.ReadResp.ReadEvent.RecordedEvent();
  const id = new shared.UUID();
  id.setString(randomUUID());
  recorded.setId(id);
  recorded.setStreamIdentifier(streamIdentifier(event.stream));
  recorded.setStreamRevision(String(event.revision));
  recorded.setCommitPosition(String(event.position));
  recorded.setPreparePosition(String(event.prepare ?? event.position));
  recorded.getMetadataMap().set('type', event.type ?? 'ThingHappened');
  const binary = event.data instanceof Uint8Array;
  recorded.getMetadataMap().set('content-type', binary ? 'application/octet-stream' : 'application/json');
  recorded.getMetadataMap().set('created', String(Date.now() * 10_000));
  recorded.setData(binary ? (event.data as Uint8Array) : Buffer.from(JSON.stringify(event.data ?? { n: event.revision }), 'utf8'));
  recorded.setCustomMetadata(
    event.metadata ?? Buffer.from(JSON.stringify({ command_id: 'c', correlation_id: 'c', causation_id: 'c', at: 'now', schema_version: 1 }), 'utf8'),
  );
  const read = new streams.ReadResp.ReadEvent();
  read.setEvent(recorded);
  read.setCommitPosition(String(event.position));
  const response = new streams.ReadResp();
  response.setEvent(read);
  return response;
}
