// A minimal Prometheus registry: counters and histograms with labels, rendered as text format 0.0.4.
// Enough for request rates, latencies and command outcomes without another dependency.

type Labels = Record<string, string>;
const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
const render = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}` : '';
};

export interface Counter {
  inc(labels?: Labels, by?: number): void;
}
export interface Histogram {
  observe(value: number, labels?: Labels): void;
}

export function createMetrics() {
  const lines: Array<() => string[]> = [];
  const gauges = new Map<string, { help: string; read: () => number | Promise<number> }>();

  function counter(name: string, help: string): Counter {
    const values = new Map<string, { labels: Labels; value: number }>();
    lines.push(() => [
      `# HELP ${name} ${help}`,
      `# TYPE ${name} counter`,
      ...[...values.values()].map(({ labels, value }) => `${name}${render(labels)} ${value}`),
    ]);
    return {
      inc(labels = {}, by = 1) {
        const k = key(labels);
        const entry = values.get(k) ?? { labels, value: 0 };
        entry.value += by;
        values.set(k, entry);
      },
    };
  }

  function histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
    lines.push(() => [
      `# HELP ${name} ${help}`,
      `# TYPE ${name} histogram`,
      ...[...series.values()].flatMap(({ labels, counts, sum, count }) => [
        ...buckets.map((le, i) => `${name}_bucket${render({ ...labels, le: String(le) })} ${counts[i]}`),
        `${name}_bucket${render({ ...labels, le: '+Inf' })} ${count}`,
        `${name}_sum${render(labels)} ${sum}`,
        `${name}_count${render(labels)} ${count}`,
      ]),
    ]);
    return {
      observe(value, labels = {}) {
        const k = key(labels);
        let entry = series.get(k);
        if (!entry) series.set(k, (entry = { labels, counts: buckets.map(() => 0), sum: 0, count: 0 }));
        for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!) entry.counts[i]!++;
        entry.sum += value;
        entry.count++;
      },
    };
  }

  /** A value read when scraped (log head, projector position, …). */
  function gauge(name: string, help: string, read: () => number | Promise<number>): void {
    gauges.set(name, { help, read });
  }

  async function text(): Promise<string> {
    const out = lines.flatMap((render) => render());
    for (const [name, { help, read }] of gauges) {
      let value: number;
      try {
        value = await read();
      } catch {
        value = Number.NaN;
      }
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    }
    return `${out.join('\n')}\n`;
  }

  const http = {
    requests: counter('planline_http_requests_total', 'HTTP requests by method, route and status.'),
    duration: histogram('planline_http_request_duration_seconds', 'HTTP request duration in seconds.', [
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    ]),
  };
  const commands = counter('planline_commands_total', 'Commands by name and outcome (applied, unchanged, refused, failed).');

  return { counter, histogram, gauge, text, http, commands };
}

export type Metrics = ReturnType<typeof createMetrics>;
