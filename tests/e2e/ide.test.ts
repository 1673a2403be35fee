// The IDE's REST contract end to end, embedded: a SQLite log in a temp dir and in-process read models.
// The same suite runs against Redis read models in ide-redis.test.ts.
import { ideModelChecks, ideSuite } from './ide-suite.js';

ideModelChecks();
ideSuite({ label: 'embedded', env: { REDIS_URL: undefined } });
