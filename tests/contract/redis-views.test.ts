import { Redis } from 'ioredis';
import { afterAll, describe } from 'vitest';
import { redisViewStore } from '../../src/projections/redis-views.js';
import { REDIS_URL, serviceAvailable, uniquePrefix, flushRedisKeys } from '../support/services.js';
import { viewStoreContract } from './view-store.contract.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);
const prefix = uniquePrefix('redis-views');

describe.skipIf(!redisUp)('redis view store', () => {
  let opened = 0;
  // Each test gets its own namespace under the file's prefix, so tests never see each other's keys.
  viewStoreContract('redis (json commits, the default)', async () =>
    redisViewStore(new Redis(REDIS_URL), { keyPrefix: `${prefix}${opened++}:` }),
  );
  viewStoreContract('redis (argv commits)', async () =>
    redisViewStore(new Redis(REDIS_URL), { keyPrefix: `${prefix}${opened++}:`, commitEncoding: 'argv' }),
  );

  afterAll(async () => {
    await flushRedisKeys(REDIS_URL, prefix);
  });
});
