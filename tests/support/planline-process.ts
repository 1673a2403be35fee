// A Planline process started from the TypeScript sources (node --import ts-register.mjs), configured by
// its environment like `npm start` (NATS_PREFIX names its bus), plus what only start options set, from
// PLANLINE_TEST_* variables: the read models' key prefix, the jobs' ack wait and retry delays. Tests kill it.
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startPlanline } from '../../src/runtime.js';

const e = process.env;
const config = loadConfig();
const log = createLogger(config.logLevel);
const planline = await startPlanline(config, log, {
  ...(e.PLANLINE_TEST_VIEWS_PREFIX ? { viewsKeyPrefix: e.PLANLINE_TEST_VIEWS_PREFIX } : {}),
  ...(e.PLANLINE_TEST_JOB_ACK_WAIT_MS ? { jobAckWaitMs: Number(e.PLANLINE_TEST_JOB_ACK_WAIT_MS) } : {}),
  ...(e.PLANLINE_TEST_JOB_BACKOFF_MS ? { jobBackoffMs: e.PLANLINE_TEST_JOB_BACKOFF_MS.split(',').map(Number) } : {}),
});
process.stderr.write('planline-process: started\n');
const stop = () => void planline.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
