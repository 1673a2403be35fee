// The HTTP API end to end, embedded: a SQLite log in a temp dir and in-process read models rebuilt
// from it. The same suite runs against Redis read models in http-redis.test.ts.
import { coreSuite } from './core-suite.js';

coreSuite({ label: 'embedded', env: { REDIS_URL: undefined } });
