// Models asked for JSON answer with JSON most of the time, and otherwise with JSON in a ```json fence,
// JSON after "Here is the plan:", JSON followed by an explanation, Python's True/False/None (the seed
// replaced those too), or trailing commas. This finds the JSON value in such an answer, or says
// plainly why there is none, so the caller can fall back and record the reason.

export type JsonExtraction = { ok: true; value: unknown } | { ok: false; error: string };

/** Candidates tried before giving up: enough for any honest answer, bounded for a hostile one. */
const MAX_CANDIDATES = 20;

export function extractJson(text: string): JsonExtraction {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return { ok: false, error: 'the answer is empty' };

  for (const candidate of candidates(trimmed)) {
    const value = parseLenient(candidate);
    if (value !== undefined) return { ok: true, value };
  }
  return { ok: false, error: `no JSON object or array found in the answer: ${preview(trimmed)}` };
}

/** Like extractJson, but only an object (not an array or a scalar) counts. */
export function extractJsonObject(text: string): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  const extracted = extractJson(text);
  if (!extracted.ok) return extracted;
  const { value } = extracted;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, error: `expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}` };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

function* candidates(text: string): Generator<string> {
  let tried = 0;
  yield text;
  // Fenced blocks, ```json first (the seed's answers), then any fence.
  const fences = [...text.matchAll(/```[ \t]*([a-zA-Z]*)[ \t]*\r?\n?([\s\S]*?)```/g)];
  const sorted = [...fences.filter((f) => /^json$/i.test(f[1] ?? '')), ...fences.filter((f) => !/^json$/i.test(f[1] ?? ''))];
  for (const fence of sorted) {
    if (++tried > MAX_CANDIDATES) return;
    yield fence[2]!.trim();
  }
  // An unterminated fence (the answer was cut or the model forgot to close it).
  const open = /```[ \t]*[a-zA-Z]*[ \t]*\r?\n([\s\S]*)$/.exec(text);
  if (open && fences.length === 0) yield open[1]!.trim();
  // A balanced {...} or [...] anywhere, first opening bracket first.
  for (let start = 0; start < text.length && tried < MAX_CANDIDATES; start++) {
    const ch = text[start];
    if (ch !== '{' && ch !== '[') continue;
    const end = matchingBracket(text, start);
    if (end === -1) continue;
    tried++;
    yield text.slice(start, end + 1);
    // An object that parsed is returned by the caller; one that did not is skipped whole, so a
    // broken outer object does not make us return a fragment nested inside it.
    start = end;
  }
}

/** Index of the bracket closing the one at `start`, skipping strings; -1 when it never closes. */
function matchingBracket(text: string, start: number): number {
  const stack: string[] = [];
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') stack.push('}');
    else if (ch === '[') stack.push(']');
    else if (ch === '}' || ch === ']') {
      if (stack.pop() !== ch) return -1;
      if (stack.length === 0) return i;
    }
  }
  return -1;
}

function parseLenient(candidate: string): unknown {
  try {
    return JSON.parse(candidate);
  } catch {
    // fall through to the repairs
  }
  const repaired = repair(candidate);
  if (repaired === candidate) return undefined;
  try {
    return JSON.parse(repaired);
  } catch {
    return undefined;
  }
}

/** Outside strings: Python literals → JSON, trailing commas dropped, // line comments dropped. */
function repair(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      out += ch;
      if (ch === '\\') out += text[++i] ?? '';
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      out += ch;
      continue;
    }
    if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
      continue;
    }
    if (ch === ',') {
      const next = /^\s*([}\]])/.exec(text.slice(i + 1));
      if (next) continue;
    }
    const word = /^(True|False|None)\b/.exec(text.slice(i));
    if (word && !/[A-Za-z0-9_]/.test(text[i - 1] ?? '')) {
      out += word[1] === 'True' ? 'true' : word[1] === 'False' ? 'false' : 'null';
      i += word[1]!.length - 1;
      continue;
    }
    out += ch;
  }
  return out;
}

function preview(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
