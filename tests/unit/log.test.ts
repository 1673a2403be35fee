import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from '../../src/log.js';

const AT = new Date('2025-01-02T03:04:05.678Z');

function capture(level: LogLevel) {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line) => lines.push(line), now: () => AT });
  const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, entries };
}

describe('createLogger', () => {
  it('writes one JSON line per entry with time, level, msg and fields', () => {
    const { logger, lines, entries } = capture('info');
    logger.info('plan approved', { plan_id: 'p1', revision: 2 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(entries()).toEqual([{ time: AT.toISOString(), level: 'info', msg: 'plan approved', plan_id: 'p1', revision: 2 }]);
  });

  it('drops entries below its level', () => {
    const { logger, entries } = capture('warn');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    expect(entries().map((entry) => entry.level)).toEqual(['warn', 'error']);
  });

  it('writes everything at debug', () => {
    const { logger, entries } = capture('debug');
    logger.debug('d');
    logger.info('i');
    expect(entries().map((entry) => entry.msg)).toEqual(['d', 'i']);
  });

  it('child loggers add their fields to every entry; entry fields win', () => {
    const { logger, entries } = capture('info');
    const worker = logger.child({ role: 'worker', worker_id: 'w1' });
    worker.info('job taken', { worker_id: 'w2', job: 'j1' });
    expect(entries()[0]).toMatchObject({ msg: 'job taken', role: 'worker', worker_id: 'w2', job: 'j1' });
  });

  it('keeps fields named like its own keys without letting them replace time, level or msg', () => {
    const { logger, entries } = capture('info');
    logger.info('real', { msg: 'fake', level: 'debug' });
    expect(entries()[0]).toMatchObject({ msg: 'real', level: 'info', 'field.msg': 'fake', 'field.level': 'debug' });
  });

  it('serialises errors, bigints and cycles instead of throwing or printing {}', () => {
    const { logger, entries } = capture('info');
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.error('failed', { error: new Error('boom'), position: 12n, cyclic });
    const entry = entries()[0];
    expect(entry).toMatchObject({ error: { name: 'Error', message: 'boom' }, position: '12', cyclic: { name: 'loop', self: '[Circular]' } });
    expect((entry?.error as { stack?: string }).stack).toContain('boom');
  });

  it('writes to stderr by default', () => {
    const logger = createLogger('info');
    expect(typeof logger.info).toBe('function');
  });
});
