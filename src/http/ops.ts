// Operations: liveness, readiness (store and read models reachable, projector caught up), metrics.
import { Hono } from 'hono';
import type { Metrics } from './metrics.js';
import { problem } from './problem.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string | number }>;
}
export type ReadinessCheck = () => Promise<Readiness>;

export function opsRoutes(metrics: Metrics, readiness: ReadinessCheck) {
  const app = new Hono();
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/ready', async (c) => {
    const report = await readiness();
    if (report.ready) return c.json({ status: 'ready', checks: report.checks });
    return c.body(JSON.stringify({ ...problem(503, 'not_ready', 'not ready to serve', { checks: report.checks }) }), 503, {
      'content-type': 'application/problem+json',
      'retry-after': '1',
    });
  });
  app.get('/metrics', async (c) => c.text(await metrics.text(), 200, { 'content-type': 'text/plain; version=0.0.4' }));
  return app;
}
