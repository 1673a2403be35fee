// A Planline server for benchmarks against shared Redis and NATS: main.ts, plus the key and subject
// namespaces (BENCH_VIEWS_PREFIX, BENCH_BUS_PREFIX) that keep a benchmark's data apart from anyone
// else's on the same services.
import { loadConfig } from '../src/config.js';
import { onShutdown } from '../src/lifecycle.js';
import { createLogger } from '../src/log.js';
import { startPlanline } from '../src/runtime.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const planline = await startPlanline(config, log, {
  ...(process.env.BENCH_VIEWS_PREFIX ? { viewsKeyPrefix: process.env.BENCH_VIEWS_PREFIX } : {}),
  ...(process.env.BENCH_BUS_PREFIX ? { busPrefix: process.env.BENCH_BUS_PREFIX } : {}),
});
onShutdown(planline.shutdownSteps, { timeoutMs: config.shutdownTimeoutMs, log: (msg) => log.info(msg) });
