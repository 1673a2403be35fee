// The IDE's REST contract with Redis read models (REDIS_URL). Skipped (and said so) when Redis is
// unreachable, except under CI=true.
import { describe } from 'vitest';
import { REDIS_URL, serviceAvailable } from '../support/services.js';
import { ideSuite } from './ide-suite.js';

const redisUp = await serviceAvailable('redis', REDIS_URL);

describe.skipIf(!redisUp)('redis read models', () => {
  ideSuite({ label: 'redis', env: { REDIS_URL } });
});
