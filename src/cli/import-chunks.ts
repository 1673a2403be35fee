// An export file as the import sees it: its lines in chunks of about a mebibyte, each chunk with a
// digest of its bytes. Both passes of an import cut the file into the same chunks (the cuts depend on
// the bytes only); the second pass writes a chunk only if its digest is the one the first pass
// validated, so a file edited between the passes is caught before any of its changed lines is used,
// without validating every line twice. The digest covers the raw bytes, line breaks and blank lines
// included, so it also pins the line numbers that errors refer to.
//
// Each chunk is decoded once and split here: a million-line export goes through several times faster
// than with node:readline, which hands over one line per callback.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A chunk ends at the last line break within this many bytes (or, for a longer line, at its end). */
export const CHUNK_BYTES = 1 << 20;

export interface FileLine {
  /** 1-based, counting every line of the file, blank ones included. */
  number: number;
  /** Without its line break ("\n" or "\r\n"). */
  text: string;
}

export interface LineChunk {
  /** The chunk's non-blank lines, in file order. */
  lines: FileLine[];
  digest: string;
}

const NEWLINE = 0x0a;

export async function* lineChunks(file: string): AsyncGenerator<LineChunk> {
  let number = 0;
  const chunkOf = (bytes: Buffer): LineChunk => {
    const digest = createHash('sha1').update(bytes).digest('base64');
    const text = bytes.toString('utf8');
    const lines: FileLine[] = [];
    for (let start = 0; start < text.length; ) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      number += 1;
      const line = text.slice(start, end > start && text.charCodeAt(end - 1) === 0x0d ? end - 1 : end);
      if (!isBlank(line)) lines.push({ number, text: line });
      start = end + 1;
    }
    return { lines, digest };
  };
  let pending: Buffer = Buffer.alloc(0);
  for await (const read of createReadStream(file, { highWaterMark: CHUNK_BYTES })) {
    pending = pending.length === 0 ? (read as Buffer) : Buffer.concat([pending, read as Buffer]);
    while (pending.length >= CHUNK_BYTES) {
      let cut = pending.lastIndexOf(NEWLINE, CHUNK_BYTES - 1);
      if (cut === -1) cut = pending.indexOf(NEWLINE, CHUNK_BYTES); // one line longer than a chunk
      if (cut === -1) break; // … that has not ended yet
      yield chunkOf(pending.subarray(0, cut + 1));
      pending = pending.subarray(cut + 1);
    }
  }
  if (pending.length > 0) yield chunkOf(pending);
}

/** Blank lines (only whitespace) carry no event; they are skipped but still counted. */
function isBlank(text: string): boolean {
  if (text.length === 0) return true;
  const first = text.charCodeAt(0);
  // Only a line starting with whitespace can be blank: most lines start with '{' and cost one comparison.
  const space = first === 0x20 || (first >= 0x09 && first <= 0x0d) || first === 0xa0 || first > 0xff;
  return space && text.trim() === '';
}
