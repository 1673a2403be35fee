// Cutting a task's text where people cut it: list items, sentences, "then", "A, B and C". Shared by
// the heuristic classifier (two or more pieces make a plan) and the heuristic planner (each piece
// becomes a subtask).

export const ACTION_VERBS = [
  'add', 'build', 'change', 'check', 'clean', 'configure', 'connect', 'convert', 'create', 'debug', 'delete',
  'deploy', 'design', 'document', 'extract', 'fix', 'generate', 'implement', 'improve', 'install', 'integrate',
  'investigate', 'make', 'migrate', 'modify', 'move', 'optimize', 'refactor', 'remove', 'rename', 'replace',
  'review', 'rewrite', 'run', 'set up', 'setup', 'split', 'test', 'update', 'upgrade', 'validate', 'verify',
  'wire', 'write',
] as const;

export const STARTS_WITH_VERB = new RegExp(`^(?:please\\s+|also\\s+|then\\s+)?(?:${ACTION_VERBS.join('|')})\\b`);

export interface Piece {
  text: string;
  /** The text orders it after the piece before it ("then", a numbered list). */
  afterPrevious: boolean;
}

/** The task cut into pieces of work, in the order written. */
export function splitTask(text: string): Piece[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const listLines = lines.filter((l) => LIST_ITEM.test(l));
  if (listLines.length >= 2) {
    const numbered = listLines.every((l) => /^\d+[.)]/.test(l));
    // "Build a todo app:" above "- data model" gives the bare items their context.
    const preamble = cleanPiece(lines.slice(0, lines.indexOf(listLines[0]!)).join(' '));
    return listLines
      .map((line) => cleanPiece(line.replace(LIST_ITEM, '')))
      .filter(Boolean)
      .map((piece, index) => ({
        text: preamble && !leadingVerb(piece) ? `${preamble}: ${piece[0]!.toLowerCase()}${piece.slice(1)}` : piece,
        afterPrevious: numbered && index > 0,
      }));
  }

  const pieces: Piece[] = [];
  for (const sentence of text.split(/(?<=[.!?;])\s+|\r?\n+/)) {
    const steps = sentence.split(SEQUENCE);
    steps.forEach((step, stepIndex) => {
      enumerate(step).forEach((part, partIndex) => {
        const piece = cleanPiece(part);
        if (piece) pieces.push({ text: piece, afterPrevious: stepIndex > 0 && partIndex === 0 && pieces.length > 0 });
      });
    });
  }
  return pieces.length > 0 ? pieces : [{ text: cleanPiece(text) || text.trim(), afterPrevious: false }];
}

const LIST_ITEM = /^(?:[-*•]|\d+[.)])\s+/;
const SEQUENCE = /,?\s*\b(?:and then|then|after that|afterwards|finally|once (?:that|this) is done)\b[,:]?\s*/i;
const CLAUSE_START = /^(?:which|that|so|because|where|when|while|but|using|with|without|including|if|unless|as)\b/i;

/** "Add X, Y and Z" → "Add X", "Add Y", "Add Z"; "add X and write tests" → two pieces. */
export function enumerate(step: string): string[] {
  const text = step.trim();
  if (!text) return [];
  const verb = leadingVerb(text);
  if (text.includes(',')) {
    const fragments = text.split(/,\s*(?:and\s+)?/).flatMap((f, i, all) =>
      // The last comma-item may carry the final "and": "A, B and C".
      i === all.length - 1 ? f.split(/\s+and\s+(?=\S)/) : [f],
    );
    const merged: string[] = [];
    for (const fragment of fragments.map((f) => f.trim()).filter(Boolean)) {
      // "Add a form, which validates input" is one piece: a clause is not an item.
      if (merged.length && CLAUSE_START.test(fragment)) merged[merged.length - 1] += `, ${fragment}`;
      else merged.push(fragment);
    }
    if (merged.length > 1 && verb) {
      return merged.map((f, i) => (i === 0 || leadingVerb(f) ? f : `${verb} ${f}`));
    }
    if (merged.length > 1 && merged.every((f) => leadingVerb(f))) return merged;
    return [text];
  }
  // Split on "and" only where a new action starts: "add X and write tests for it".
  const parts = text.split(new RegExp(`\\s+and\\s+(?=(?:${ACTION_VERBS.join('|')})\\b)`, 'i'));
  return parts.length > 1 && verb ? parts : [text];
}

export function leadingVerb(text: string): string | undefined {
  const match = STARTS_WITH_VERB.exec(text.toLowerCase());
  return match ? text.slice(0, match[0].length).replace(/^(?:please|also|then)\s+/i, '') : undefined;
}

export function cleanPiece(text: string): string {
  const piece = text
    .trim()
    .replace(/^(?:please|also|and|first|second|third|next)[,:]?\s+/i, '')
    .replace(/[\s.;:,!]+$/, '')
    .trim();
  if (piece.length < 2) return '';
  return piece[0]!.toUpperCase() + piece.slice(1);
}

