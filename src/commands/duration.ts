// Estimates travel two ways. Inputs (HTTP bodies, the architect model's JSON) carry either a number of
// seconds or the strings people and models write ("5 min", "90s", "1h 30m", "2 hours", "1.5 h"); the
// IDE reads them back as the seed's human strings ("10 min", "1 h 30 min"), because its plan dialog
// casts `estimated_time` with `as String?` and throws on a number. Seconds are what we store.
import { invalid, type DomainError } from './errors.js';

/** Longest estimate accepted for one subtask or plan: a week. Anything longer is a typo or a joke. */
export const MAX_DURATION_S = 7 * 24 * 3600;

const UNIT_SECONDS: ReadonlyArray<readonly [RegExp, number]> = [
  [/^(s|sec|secs|second|seconds)$/, 1],
  [/^(m|min|mins|minute|minutes)$/, 60],
  [/^(h|hr|hrs|hour|hours)$/, 3600],
  [/^(d|day|days)$/, 86_400],
];

const NUMBER = String.raw`\d+(?:\.\d+)?|\.\d+`;
/** One "amount unit" term: "5 min", "1.5h", "90s". */
const TERM = new RegExp(String.raw`^(${NUMBER})\s*([a-z]+)\s*(?:,|and\b)?\s*`);
/** A range written by a model: "5-10 min", "5 to 10 minutes" (the upper bound is taken). */
const RANGE = new RegExp(String.raw`^(${NUMBER})\s*(?:-|–|to)\s*(${NUMBER})\s*([a-z]+)$`);
const HEDGES = /^(?:~|≈|about|around|approx\.?|approximately|roughly|circa|ca\.|estimated:?|est\.?)\s*/;

/**
 * Seconds from a number of seconds or a written duration, case-insensitive:
 * "5 min", "5 mins", "5m", "90s", "90 sec", "1h 30m", "1 h 30 min", "2 hours", "1.5 h", "1 hour and 5 minutes",
 * "45" (a bare number is seconds, like a JSON number), "1:30:00" (h:mm:ss), "PT1H30M" (ISO 8601),
 * "~10 min" / "about 10 min" (hedges are ignored), "5-10 min" (a range: its upper bound).
 * "1:30" is refused: it reads as m:ss to some and h:mm to others.
 * Throws a 400 `validation_failed` DomainError naming `field` for anything else, negative values and
 * values above MAX_DURATION_S. The result is whole seconds (rounded).
 */
export function parseDuration(input: number | string, field = 'estimated_time'): number {
  const seconds = typeof input === 'number' ? input : parseDurationText(input, field);
  if (!Number.isFinite(seconds)) throw durationError(field, input, 'is not a finite number of seconds');
  if (seconds < 0) throw durationError(field, input, 'is negative');
  if (seconds > MAX_DURATION_S) {
    throw durationError(field, input, `is longer than the maximum of ${formatDuration(MAX_DURATION_S)}`);
  }
  return Math.round(seconds);
}

function parseDurationText(raw: string, field: string): number {
  const text = raw.trim().toLowerCase().replace(HEDGES, '').replace(/\.$/, '').trim();
  if (text === '') throw durationError(field, raw, 'is empty');
  if (/^-/.test(text)) throw durationError(field, raw, 'is negative');

  // A bare number is seconds, the same as a JSON number.
  if (new RegExp(`^(?:${NUMBER})$`).test(text)) return Number(text);

  const clock = /^(\d+):([0-5]\d):([0-5]\d)$/.exec(text);
  if (clock) return Number(clock[1]) * 3600 + Number(clock[2]) * 60 + Number(clock[3]);
  if (/^\d+:\d+$/.test(text)) {
    throw durationError(field, raw, 'is ambiguous (m:ss or h:mm?); write "1 h 30 min" or "1:30:00"');
  }

  const iso = /^p(?:(\d+(?:\.\d+)?)d)?(?:t(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?)?$/.exec(text);
  if (iso && text !== 'p' && text !== 'pt') {
    const [, d = '0', h = '0', m = '0', s = '0'] = iso;
    return Number(d) * 86_400 + Number(h) * 3600 + Number(m) * 60 + Number(s);
  }

  const range = RANGE.exec(text);
  if (range) {
    const unit = unitSeconds(range[3]!);
    if (unit !== undefined) return Math.max(Number(range[1]), Number(range[2])) * unit;
  }

  let rest = text;
  let total = 0;
  let terms = 0;
  while (rest.length > 0) {
    const term = TERM.exec(rest);
    const unit = term ? unitSeconds(term[2]!) : undefined;
    if (!term || unit === undefined) {
      throw durationError(field, raw, 'is not a duration; write seconds (90) or e.g. "5 min", "90s", "1h 30m", "2 hours", "1.5 h"');
    }
    total += Number(term[1]) * unit;
    terms += 1;
    rest = rest.slice(term[0].length);
  }
  if (terms === 0) throw durationError(field, raw, 'is not a duration');
  return total;
}

function unitSeconds(unit: string): number | undefined {
  return UNIT_SECONDS.find(([pattern]) => pattern.test(unit))?.[1];
}

function durationError(field: string, value: number | string, problem: string): DomainError {
  return invalid(`${field} ${JSON.stringify(value)} ${problem}`, { field, value });
}

/**
 * The seed's human string for a number of seconds: "0 min", "45 s", "10 min", "1 min 30 s", "2 h",
 * "1 h 30 min". Whole minutes read as minutes (as the seed wrote them); seconds appear only when
 * the duration is not a whole number of minutes, hours only from 60 minutes up.
 */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(Number.isFinite(seconds) ? seconds : 0));
  if (total === 0) return '0 min';
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts: string[] = [];
  if (h > 0) parts.push(`${h} h`);
  if (m > 0) parts.push(`${m} min`);
  if (s > 0) parts.push(`${s} s`);
  return parts.join(' ');
}
