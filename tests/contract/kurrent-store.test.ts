// The KurrentDB adapter against a real server: the same contract as the embedded store. Runs only
// when KURRENTDB_URL is set (e.g. kurrentdb://127.0.0.1:2113?tls=false, see infra/compose.yaml);
// without it the suite is skipped, loudly.
import { describe, it } from 'vitest';
import { openKurrentEventStore } from '../../src/events/kurrent-store.js';
import { KURRENTDB_URL } from '../support/services.js';
import { eventStoreContract } from './event-store.contract.js';

if (KURRENTDB_URL !== undefined && KURRENTDB_URL !== '') {
  const url = KURRENTDB_URL;
  eventStoreContract('kurrentdb', async () => openKurrentEventStore(url));
} else {
  console.warn('[skipped] KurrentDB event store contract: set KURRENTDB_URL to run it against a server');
  describe.skip('EventStore contract: kurrentdb (KURRENTDB_URL not set)', () => {
    it('runs the shared contract against a KurrentDB server', () => undefined);
  });
}
