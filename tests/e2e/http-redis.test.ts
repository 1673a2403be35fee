// The core HTTP suite with Redis read models (REDIS_URL). Each server gets its own key prefix, deleted
// when it is disposed. Skipped (and said so) when Redis is unreachable, except under CI=true.
import { describe } from 'vitest';
import { REDIS_URL, serviceAvailable } from '../support/services.js';
import { coreSuite } from './core-suite.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);

describe.skipIf(!redisUp)('redis read models', () => {
  coreSuite({ label: 'redis', env: { REDIS_URL } });
});
