// The projector's cache of committed documents, valid only while it holds the lease: a rebuild or a
// catch-up reads each document from the store once, not once per event.
import type { Doc } from './views.js';

/** A document as known to the runner: null = known to be absent. */
export type Known = Doc | null;

/** Committed documents of one projection, bounded, least recently used evicted first. */
export interface DocumentCache {
  /** Doc or null when known, undefined when not cached (and the cache is not complete). */
  lookup(key: string): Known | undefined;
  remember(key: string, doc: Known): void;
  /** After a reset: the store holds nothing of the projection, so an empty cache is complete. */
  clearAsEmpty(): void;
  clear(): void;
}

export function documentCache(maxDocs: number): DocumentCache {
  // Two generations instead of a strict LRU: when the young map is full it becomes the old one and the
  // old one is dropped. Every operation stays O(1) (evicting one entry at a time from the front of a
  // Map degrades badly once it holds many deleted slots), and a document read again is promoted.
  const generation = Math.max(1, Math.floor(maxDocs / 2));
  let young = new Map<string, Known>();
  let old = new Map<string, Known>();
  // After a reset, a miss is an authoritative "absent" — except for documents we wrote and then
  // evicted. Those are remembered in a Bloom filter, so a rebuild larger than the cache still reads the
  // store only for documents it really evicted (and the odd false positive), never for new ones.
  let complete = false;
  let evicted = bloomFilter();

  function rotateIfFull(): void {
    if (young.size < generation) return;
    if (complete) {
      for (const key of old.keys()) {
        if (!young.has(key)) evicted.add(key);
      }
      if (evicted.saturated()) complete = false;
    }
    old = young;
    young = new Map();
  }

  return {
    lookup(key) {
      const doc = young.get(key);
      if (doc !== undefined) return doc;
      const older = old.get(key);
      if (older !== undefined) {
        young.set(key, older);
        rotateIfFull();
        return older;
      }
      return complete && !evicted.mightContain(key) ? null : undefined;
    },
    remember(key, doc) {
      young.set(key, doc);
      rotateIfFull();
    },
    clearAsEmpty() {
      young = new Map();
      old = new Map();
      evicted = bloomFilter();
      complete = true;
    },
    clear() {
      young = new Map();
      old = new Map();
      complete = false;
    },
  };
}

/** Set membership with false positives only; 2 MiB, about 1% false positives up to 1.7 million keys. */
function bloomFilter() {
  const BITS = 2 ** 24;
  const HASHES = 7;
  const CAPACITY = 1_700_000;
  const words = new Uint32Array(BITS / 32);
  let added = 0;
  // Two 32-bit FNV-1a hashes with different seeds, finished with murmur3's fmix; the k probes are
  // h1 + i·h2 (Kirsch–Mitzenmacher double hashing).
  function probes(key: string): [number, number] {
    let a = 0x811c9dc5;
    let b = 0x050c5d1f;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x01000193);
    }
    return [fmix(a), fmix(b) | 1];
  }
  return {
    add(key: string): void {
      const [h1, h2] = probes(key);
      for (let i = 0; i < HASHES; i++) {
        const bit = ((h1 + Math.imul(i, h2)) >>> 0) % BITS;
        words[bit >>> 5]! |= 1 << (bit & 31);
      }
      added++;
    },
    mightContain(key: string): boolean {
      if (added === 0) return false;
      const [h1, h2] = probes(key);
      for (let i = 0; i < HASHES; i++) {
        const bit = ((h1 + Math.imul(i, h2)) >>> 0) % BITS;
        if ((words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
      }
      return true;
    },
    saturated: () => added > CAPACITY,
  };
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
