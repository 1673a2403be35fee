// Composition root: config → running Planline → graceful shutdown on SIGTERM/SIGINT. Nothing else.
import { ConfigError, describeConfig, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { onShutdown } from './lifecycle.js';
import { startPlanline } from './runtime.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  log.info('starting planline', describeConfig(config));
  const planline = await startPlanline(config, log);
  onShutdown(planline.shutdownSteps, { timeoutMs: config.shutdownTimeoutMs, log: (msg) => log.info(msg) });
}

main().catch((error: unknown) => {
  process.stderr.write(`planline failed to start: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
