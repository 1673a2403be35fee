// The event store a command works on: from the environment (EVENTSTORE_URL), always closed afterwards,
// so a CLI run never leaves a SQLite file locked or a gRPC channel open behind it.
import { openEventStore } from '../adapters.js';
import { loadConfig } from '../config.js';
import type { EventStore } from '../events/store.js';
import type { CliIo } from './io.js';

export async function withEventStore<T>(io: CliIo, work: (store: EventStore) => Promise<T>): Promise<T> {
  const store = await openEventStore(loadConfig(io.env).eventStore);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
