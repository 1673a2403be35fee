// The read-model store contract: every ViewStore adapter runs this same suite.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaseLostError, type Doc, type FeedPage, type IndexMember, type ViewOp, type ViewStore } from '../../src/projections/views.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const put = (collection: string, id: string, doc: Doc): ViewOp => ({ op: 'put', collection, id, doc });
const del = (collection: string, id: string): ViewOp => ({ op: 'delete', collection, id });
const index = (name: string, id: string, score: number): ViewOp => ({ op: 'index', index: name, id, score });
const unindex = (name: string, id: string): ViewOp => ({ op: 'unindex', index: name, id });
const append = (feed: string, offset: number, entry: Doc = { n: offset }): ViewOp => ({ op: 'append', feed, offset, entry });
const trim = (feed: string, below: number): ViewOp => ({ op: 'trim', feed, below });
const appends = (feed: string, from: number, to: number): ViewOp[] => Array.from({ length: to - from + 1 }, (_, i) => append(feed, from + i));
const offsets = (page: FeedPage) => page.entries.map((e) => e.offset);

/** Reads a whole index page by page, newest first, the way a paginated query does. */
async function readAllPages(views: ViewStore, name: string, limit: number): Promise<IndexMember[]> {
  const all: IndexMember[] = [];
  let below: number | undefined;
  for (;;) {
    const page = await views.range(name, below === undefined ? { limit } : { limit, below });
    all.push(...page);
    if (page.length < limit) return all;
    below = page[page.length - 1]?.score;
  }
}

export function viewStoreContract(name: string, open: () => Promise<ViewStore>): void {
  describe(`ViewStore contract: ${name}`, () => {
    let views: ViewStore;
    beforeEach(async () => {
      views = await open();
    });
    afterEach(async () => {
      await views.close();
    });

    describe('documents', () => {
      it('reads nothing before anything is committed', async () => {
        expect(await views.get('plans', 'p1')).toBeUndefined();
        expect(await views.getMany('plans', ['p1', 'p2'])).toEqual([undefined, undefined]);
        expect(await views.getMany('plans', [])).toEqual([]);
        expect(await views.checkpoint('views')).toBeUndefined();
      });

      it('puts, overwrites and deletes documents through commit', async () => {
        await views.commit('views', [put('plans', 'p1', { goal: 'a' }), put('plans', 'p2', { goal: 'b' })], 1);
        expect(await views.get('plans', 'p1')).toEqual({ goal: 'a' });
        await views.commit('views', [put('plans', 'p1', { goal: 'a2' }), del('plans', 'p2')], 2);
        expect(await views.get('plans', 'p1')).toEqual({ goal: 'a2' });
        expect(await views.get('plans', 'p2')).toBeUndefined();
        expect(await views.checkpoint('views')).toEqual({ position: 2, version: 0 });
      });

      it('getMany answers in the order asked, undefined for the missing', async () => {
        await views.commit('views', [put('plans', 'a', { n: 1 }), put('plans', 'c', { n: 3 }), put('sessions', 'b', { n: 2 })], 1);
        expect(await views.getMany('plans', ['c', 'b', 'a', 'c'])).toEqual([{ n: 3 }, undefined, { n: 1 }, { n: 3 }]);
      });

      it('round-trips JSON faithfully and keeps collections apart', async () => {
        const doc: Doc = {
          text: 'héllo "quoted" \n ✓ 😀',
          big: 2 ** 53 - 1,
          float: 0.1 + 0.2,
          negative: -42,
          empty: [],
          emptyObject: {},
          nested: { list: [1, 'two', { three: [null, true, false] }] },
          nothing: null,
        };
        const oddId = 'id:with:colons/and spaces*?[x] ✓😀';
        await views.commit('views', [put('plans', oddId, doc), put('plans:archive', oddId, { other: true })], 1);
        expect(await views.get('plans', oddId)).toEqual(doc);
        expect(await views.get('plans:archive', oddId)).toEqual({ other: true });
        expect(await views.get('sessions', oddId)).toBeUndefined();
      });

      it('keeps stored state out of reach: mutating a read or a committed object does not change the store', async () => {
        const original: Doc = { list: [1] };
        await views.commit('views', [put('plans', 'p', original)], 1);
        (original.list as number[]).push(2); // the caller's own object stays the caller's
        const read = (await views.get('plans', 'p')) as { list: number[] };
        // A read is a copy (Redis) or frozen (memory): either way the attempt cannot reach the store.
        try {
          read.list.push(3);
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
        }
        expect(await views.get('plans', 'p')).toEqual({ list: [1] });
      });
    });

    describe('indexes', () => {
      it('ranges newest first (highest score first) with a limit, and counts', async () => {
        await views.commit('views', [index('plans:all', 'p1', 10), index('plans:all', 'p3', 30), index('plans:all', 'p2', 20)], 1);
        expect(await views.range('plans:all', { limit: 10 })).toEqual([
          { id: 'p3', score: 30 },
          { id: 'p2', score: 20 },
          { id: 'p1', score: 10 },
        ]);
        expect(await views.range('plans:all', { limit: 2 })).toEqual([
          { id: 'p3', score: 30 },
          { id: 'p2', score: 20 },
        ]);
        expect(await views.count('plans:all')).toBe(3);
        expect(await views.range('plans:none', { limit: 10 })).toEqual([]);
        expect(await views.count('plans:none')).toBe(0);
        expect(await views.range('plans:all', { limit: 0 })).toEqual([]);
      });

      it('below is an exclusive cursor', async () => {
        await views.commit('views', [10, 20, 30, 40].map((score) => index('ix', `m${score}`, score)), 1);
        expect(await views.range('ix', { limit: 10, below: 30 })).toEqual([
          { id: 'm20', score: 20 },
          { id: 'm10', score: 10 },
        ]);
        expect(await views.range('ix', { limit: 1, below: 35 })).toEqual([{ id: 'm30', score: 30 }]);
        expect(await views.range('ix', { limit: 10, below: 10 })).toEqual([]);
        expect(await views.range('ix', { limit: 10, below: 1_000 })).toHaveLength(4);
      });

      it('re-indexing moves a member, unindexing removes it, unknown members are ignored', async () => {
        await views.commit('views', [index('ix', 'a', 1), index('ix', 'b', 2)], 1);
        await views.commit('views', [index('ix', 'a', 3), unindex('ix', 'b'), unindex('ix', 'ghost'), unindex('nowhere', 'x')], 2);
        expect(await views.range('ix', { limit: 10 })).toEqual([{ id: 'a', score: 3 }]);
        expect(await views.count('ix')).toBe(1);
      });

      it('keeps large positions and fractional scores exact', async () => {
        const big = 2 ** 53 - 2;
        await views.commit('views', [index('ix', 'big', big), index('ix', 'half', 0.5), index('ix', 'neg', -7)], 1);
        expect(await views.range('ix', { limit: 10 })).toEqual([
          { id: 'big', score: big },
          { id: 'half', score: 0.5 },
          { id: 'neg', score: -7 },
        ]);
        expect(await views.range('ix', { limit: 10, below: big })).toEqual([
          { id: 'half', score: 0.5 },
          { id: 'neg', score: -7 },
        ]);
      });

      it('agrees with a plain model under random inserts, moves and removals anywhere in the order', async () => {
        // A deterministic shuffle of unique scores, so members land everywhere, not only on top.
        let seed = 42;
        const random = () => ((seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32);
        const scores = Array.from({ length: 6_000 }, (_, i) => i + 1);
        for (let i = scores.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [scores[i], scores[j]] = [scores[j]!, scores[i]!];
        }
        const model = new Map<string, number>();
        let next = 0;
        for (let round = 1; round <= 6; round++) {
          const ops: ViewOp[] = [];
          for (let i = 0; i < 700; i++) {
            const id = `m${Math.floor(random() * 2_500)}`;
            if (random() < 0.25 && model.has(id)) {
              ops.push(unindex('ix', id));
              model.delete(id);
            } else {
              const score = scores[next++]!;
              ops.push(index('ix', id, score));
              model.set(id, score);
            }
          }
          await views.commit('views', ops, round);
          const expected = [...model].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
          expect(await views.count('ix')).toBe(model.size);
          expect(await readAllPages(views, 'ix', 97)).toEqual(expected);
          const cursor = expected[Math.floor(expected.length / 3)]!.score;
          expect(await views.range('ix', { limit: 50, below: cursor })).toEqual(expected.filter((m) => m.score < cursor).slice(0, 50));
          expect(await views.range('ix', { limit: 5, below: cursor + 0.5 })).toEqual(expected.filter((m) => m.score < cursor + 0.5).slice(0, 5));
        }
      });

      it('pages with a cursor without duplicates or gaps while new members arrive on top', async () => {
        let position = 0;
        const commitMembers = async (count: number) => {
          const ops: ViewOp[] = [];
          for (let i = 0; i < count; i++) {
            position++;
            ops.push(index('feed', `m${position}`, position));
          }
          await views.commit('views', ops, position);
        };
        await commitMembers(95);
        const seen: IndexMember[] = [];
        let below: number | undefined;
        for (;;) {
          const page = await views.range('feed', below === undefined ? { limit: 10 } : { limit: 10, below });
          seen.push(...page);
          if (page.length < 10) break;
          below = page[page.length - 1]?.score;
          await commitMembers(3); // newer members land above the cursor and must not disturb it
        }
        expect(seen.map((m) => m.score)).toEqual(Array.from({ length: 95 }, (_, i) => 95 - i));
        expect(await views.count('feed')).toBe(95 + 3 * 9);
        const everything = await readAllPages(views, 'feed', 7);
        expect(new Set(everything.map((m) => m.id)).size).toBe(everything.length);
        expect(everything).toHaveLength(95 + 3 * 9);
      });
    });

    describe('feeds', () => {
      it('reads an absent feed as empty, with no bounds', async () => {
        expect(await views.readFeed('session:s1', { after: 0, limit: 10 })).toEqual({ entries: [], first: undefined, last: undefined });
      });

      it('reads entries after an offset, oldest first, page by page, with the retained bounds', async () => {
        await views.commit('feed', appends('session:s1', 1, 7), 1);
        await views.commit('feed', [append('session:s1', 8, { type: 'status', content: 'héllo ✓', metadata: { fsm_state: 'idle' } })], 2);
        const first = await views.readFeed('session:s1', { after: 0, limit: 3 });
        expect(first).toEqual({ entries: [1, 2, 3].map((n) => ({ offset: n, entry: { n } })), first: 1, last: 8 });
        expect(offsets(await views.readFeed('session:s1', { after: 3, limit: 3 }))).toEqual([4, 5, 6]);
        const tail = await views.readFeed('session:s1', { after: 6, limit: 3 });
        expect(tail.entries.at(-1)).toEqual({ offset: 8, entry: { type: 'status', content: 'héllo ✓', metadata: { fsm_state: 'idle' } } });
        expect(offsets(tail)).toEqual([7, 8]);
        expect(await views.readFeed('session:s1', { after: 8, limit: 3 })).toEqual({ entries: [], first: 1, last: 8 });
        expect(await views.readFeed('session:s1', { after: 100, limit: 3 })).toEqual({ entries: [], first: 1, last: 8 });
      });

      it('keeps feeds apart and offsets may skip numbers', async () => {
        await views.commit('feed', [append('session:a', 1), append('session:b', 5), append('session:a', 2), append('session:b', 9)], 1);
        expect(offsets(await views.readFeed('session:a', { after: 0, limit: 10 }))).toEqual([1, 2]);
        const b = await views.readFeed('session:b', { after: 5, limit: 10 });
        expect(b).toMatchObject({ first: 5, last: 9 });
        expect(offsets(b)).toEqual([9]);
      });

      it('trims below an offset: older entries are gone, the bounds move, newer appends go on', async () => {
        await views.commit('feed', appends('session:s1', 1, 10), 1);
        await views.commit('feed', [trim('session:s1', 7)], 2);
        const page = await views.readFeed('session:s1', { after: 0, limit: 100 });
        expect(page).toMatchObject({ first: 7, last: 10 });
        expect(offsets(page)).toEqual([7, 8, 9, 10]);
        // A trim in the same commit as the appends it bounds, as the feed projection writes them.
        await views.commit('feed', [...appends('session:s1', 11, 12), trim('session:s1', 10), trim('session:s1', 1)], 3);
        expect(offsets(await views.readFeed('session:s1', { after: 0, limit: 100 }))).toEqual([10, 11, 12]);
      });

      it('refuses a commit whose append does not move its feed forward, and applies none of it', async () => {
        await views.commit('feed', [append('session:s1', 1), append('session:s1', 2), put('frames', 'head', { offset: 2 })], 1);
        await views.commit('feed', [trim('session:s1', 3)], 2); // trimming everything still remembers offset 2
        for (const bad of [
          [append('session:s1', 3), put('frames', 'head', { offset: 3 }), append('session:s1', 3)],
          [put('frames', 'head', { offset: 9 }), append('session:s1', 2)],
          [append('session:s2', 1), append('session:s1', 1)],
          [append('session:s1', 4), append('session:s1', 0)],
          [append('session:s1', 4.5)],
          [append('session:s1', Number.NaN)],
        ]) {
          await expect(views.commit('feed', bad, 3)).rejects.toThrow();
        }
        expect(await views.readFeed('session:s1', { after: 0, limit: 10 })).toEqual({ entries: [], first: undefined, last: undefined });
        expect(await views.readFeed('session:s2', { after: 0, limit: 10 })).toEqual({ entries: [], first: undefined, last: undefined });
        expect(await views.get('frames', 'head')).toEqual({ offset: 2 });
        expect(await views.checkpoint('feed')).toEqual({ position: 2, version: 0 });
        await views.commit('feed', [append('session:s1', 3)], 3);
        expect(offsets(await views.readFeed('session:s1', { after: 0, limit: 10 }))).toEqual([3]);
      });

      it('ignores feed ops of a replayed commit', async () => {
        await views.commit('feed', appends('session:s1', 1, 3), 5);
        await views.commit('feed', [append('session:s1', 4), trim('session:s1', 3)], 5);
        await views.commit('feed', [append('session:s1', 9)], 4);
        const page = await views.readFeed('session:s1', { after: 0, limit: 10 });
        expect(page).toMatchObject({ first: 1, last: 3 });
      });

      it('takes a long feed with a bounded history in one commit, and pages through what is left', async () => {
        const ops: ViewOp[] = [];
        for (let offset = 1; offset <= 5_000; offset++) ops.push(append('session:big', offset, { offset, content: `frame ${offset}` }));
        ops.push(trim('session:big', 5_000 - 1_000 + 1));
        await views.commit('feed', ops, 1);
        const seen: number[] = [];
        let after = 0;
        for (;;) {
          const page = await views.readFeed('session:big', { after, limit: 333 });
          if (page.entries.length === 0) break;
          expect(page).toMatchObject({ first: 4_001, last: 5_000 });
          seen.push(...offsets(page));
          after = page.entries.at(-1)!.offset;
        }
        expect(seen).toEqual(Array.from({ length: 1_000 }, (_, i) => 4_001 + i));
      });

      it('reset removes the feeds named by its prefixes only', async () => {
        await views.commit('feed', [append('session:a', 1), append('session:b', 1), append('other:a', 1)], 1);
        await views.reset('feed', [], [], ['session:']);
        expect(await views.readFeed('session:a', { after: 0, limit: 10 })).toMatchObject({ entries: [], last: undefined });
        expect(await views.readFeed('session:b', { after: 0, limit: 10 })).toMatchObject({ entries: [], last: undefined });
        expect(offsets(await views.readFeed('other:a', { after: 0, limit: 10 }))).toEqual([1]);
        // Rebuilt from the start: offset 1 again.
        await views.commit('feed', [append('session:a', 1, { again: true })], 1);
        expect((await views.readFeed('session:a', { after: 0, limit: 10 })).entries).toEqual([{ offset: 1, entry: { again: true } }]);
      });
    });

    describe('commits and checkpoints', () => {
      it('ignores an older or equal checkpoint entirely: a replayed commit is a no-op', async () => {
        await views.commit('views', [put('plans', 'p', { v: 1 }), index('ix', 'p', 1)], 5);
        await views.commit('views', [put('plans', 'p', { v: 'older' }), put('plans', 'q', { v: 'older' }), index('ix', 'q', 2)], 3);
        await views.commit('views', [put('plans', 'p', { v: 'replayed' })], 5);
        expect(await views.get('plans', 'p')).toEqual({ v: 1 });
        expect(await views.get('plans', 'q')).toBeUndefined();
        expect(await views.count('ix')).toBe(1);
        expect(await views.checkpoint('views')).toEqual({ position: 5, version: 0 });
        await views.commit('views', [put('plans', 'p', { v: 2 })], 6);
        expect(await views.get('plans', 'p')).toEqual({ v: 2 });
      });

      it('an empty commit still moves the checkpoint', async () => {
        await views.commit('views', [], 9);
        expect(await views.checkpoint('views')).toEqual({ position: 9, version: 0 });
      });

      it('keeps checkpoints per projection', async () => {
        await views.commit('views', [], 10);
        await views.commit('feed', [], 3);
        expect(await views.checkpoint('views')).toEqual({ position: 10, version: 0 });
        expect(await views.checkpoint('feed')).toEqual({ position: 3, version: 0 });
        await views.commit('feed', [put('frames', 'f', { ok: true })], 4); // not fenced by the other's checkpoint
        expect(await views.get('frames', 'f')).toEqual({ ok: true });
      });

      it('is all or nothing: a commit with an invalid op applies nothing', async () => {
        await views.commit('views', [put('plans', 'p', { v: 1 })], 1);
        const bad: ViewOp[] = [put('plans', 'p', { v: 2 }), put('plans', 'q', { v: 2 }), index('ix', 'q', Number.NaN)];
        await expect(views.commit('views', bad, 2)).rejects.toThrow();
        expect(await views.get('plans', 'p')).toEqual({ v: 1 });
        expect(await views.get('plans', 'q')).toBeUndefined();
        expect(await views.count('ix')).toBe(0);
        expect(await views.checkpoint('views')).toEqual({ position: 1, version: 0 });
      });

      it('applies ops in order within a commit', async () => {
        await views.commit('views', [put('plans', 'p', { v: 1 }), del('plans', 'p'), put('plans', 'q', { v: 1 }), put('plans', 'q', { v: 2 })], 1);
        expect(await views.get('plans', 'p')).toBeUndefined();
        expect(await views.get('plans', 'q')).toEqual({ v: 2 });
      });

      it('records versions independently of positions', async () => {
        await views.setVersion('views', 3);
        expect(await views.checkpoint('views')).toEqual({ position: 0, version: 3 });
        await views.commit('views', [], 7);
        expect(await views.checkpoint('views')).toEqual({ position: 7, version: 3 });
        await views.setVersion('views', 4);
        expect(await views.checkpoint('views')).toEqual({ position: 7, version: 4 });
      });

      it('the first commit after setVersion applies even at a low position', async () => {
        await views.setVersion('views', 1);
        await views.commit('views', [put('plans', 'p', { v: 1 })], 1);
        expect(await views.get('plans', 'p')).toEqual({ v: 1 });
      });

      it('takes a large commit (10,000 ops) atomically', async () => {
        const ops: ViewOp[] = [];
        for (let i = 0; i < 5_000; i++) {
          ops.push(put('plans', `p${i}`, { i, goal: `goal ${i}`, subtasks: [{ id: `s${i}`, deps: [] }] }));
          ops.push(index('plans:all', `p${i}`, i + 1));
        }
        await views.commit('views', ops, 5_000);
        expect(await views.count('plans:all')).toBe(5_000);
        expect(await views.get('plans', 'p4999')).toEqual({ i: 4999, goal: 'goal 4999', subtasks: [{ id: 's4999', deps: [] }] });
        const many = await views.getMany('plans', ['p0', 'p2500', 'missing']);
        expect(many.map((d) => d?.i)).toEqual([0, 2500, undefined]);
        expect((await views.range('plans:all', { limit: 1 }))[0]).toEqual({ id: 'p4999', score: 5_000 });
      });
    });

    describe('reset', () => {
      it("removes only that projection's documents, indexes and checkpoint", async () => {
        await views.setVersion('views', 2);
        await views.commit('views', [put('plans', 'p', {}), put('sessions', 's', {}), index('plans:all', 'p', 1), index('sessions:all', 's', 1)], 1);
        await views.setVersion('feed', 5);
        await views.commit('feed', [put('frames', 'f', {}), index('frames:s1', 'f', 1), index('plansx', 'p', 1)], 1);
        await views.commit('other', [put('plansArchive', 'p', {}), index('pla', 'p', 1)], 1);

        await views.reset('views', ['plans', 'sessions'], ['plans:', 'sessions:']);

        expect(await views.get('plans', 'p')).toBeUndefined();
        expect(await views.get('sessions', 's')).toBeUndefined();
        expect(await views.count('plans:all')).toBe(0);
        expect(await views.count('sessions:all')).toBe(0);
        expect(await views.checkpoint('views')).toBeUndefined();

        expect(await views.get('frames', 'f')).toEqual({});
        expect(await views.count('frames:s1')).toBe(1);
        expect(await views.count('plansx')).toBe(1); // 'plansx' does not start with 'plans:'
        expect(await views.get('plansArchive', 'p')).toEqual({});
        expect(await views.count('pla')).toBe(1);
        expect(await views.checkpoint('feed')).toEqual({ position: 1, version: 5 });
        expect(await views.checkpoint('other')).toEqual({ position: 1, version: 0 });
      });

      it('lets the projection be rebuilt from position 0 and keeps its lease', async () => {
        const lease = { name: 'projection:views', owner: 'a' };
        expect(await views.acquireLease(lease, 10_000)).toBe(true);
        await views.commit('views', [put('plans', 'p', { v: 1 })], 100, lease);
        await views.reset('views', ['plans'], ['plans:']);
        await views.setVersion('views', 2);
        await views.commit('views', [put('plans', 'p', { v: 2 })], 1, lease);
        expect(await views.get('plans', 'p')).toEqual({ v: 2 });
        expect(await views.checkpoint('views')).toEqual({ position: 1, version: 2 });
      });

      it('removes many documents', async () => {
        const ops: ViewOp[] = [];
        for (let i = 0; i < 3_000; i++) ops.push(put('plans', `p${i}`, { i }), index(`plans:${i % 3}`, `p${i}`, i + 1));
        await views.commit('views', ops, 1);
        await views.reset('views', ['plans'], ['plans:']);
        expect(await views.getMany('plans', ['p0', 'p1500', 'p2999'])).toEqual([undefined, undefined, undefined]);
        expect(await views.count('plans:0')).toBe(0);
      });
    });

    describe('leases', () => {
      const lease = (owner: string) => ({ name: 'projection:views', owner });

      it('is exclusive, and extendable by its owner', async () => {
        expect(await views.acquireLease(lease('a'), 10_000)).toBe(true);
        expect(await views.acquireLease(lease('b'), 10_000)).toBe(false);
        expect(await views.acquireLease(lease('a'), 10_000)).toBe(true);
        expect(await views.acquireLease({ name: 'projection:feed', owner: 'b' }, 10_000)).toBe(true);
      });

      it('extending pushes the expiry out', async () => {
        expect(await views.acquireLease(lease('a'), 300)).toBe(true);
        await sleep(200);
        expect(await views.acquireLease(lease('a'), 300)).toBe(true);
        await sleep(200); // 400 ms after the first take: alive only because it was extended
        expect(await views.acquireLease(lease('b'), 300)).toBe(false);
      });

      it('expires after its ttl, then another owner can take it', async () => {
        expect(await views.acquireLease(lease('a'), 100)).toBe(true);
        await sleep(250);
        expect(await views.acquireLease(lease('b'), 10_000)).toBe(true);
        expect(await views.acquireLease(lease('a'), 10_000)).toBe(false);
      });

      it('is released only by its owner', async () => {
        expect(await views.acquireLease(lease('a'), 10_000)).toBe(true);
        await views.releaseLease(lease('b'));
        expect(await views.acquireLease(lease('b'), 10_000)).toBe(false);
        await views.releaseLease(lease('a'));
        expect(await views.acquireLease(lease('b'), 10_000)).toBe(true);
        await views.releaseLease(lease('a')); // releasing what one does not hold is a harmless no-op
        expect(await views.acquireLease(lease('a'), 10_000)).toBe(false);
      });

      it('fences commits: only the holder commits, a lapsed holder gets LeaseLostError', async () => {
        expect(await views.acquireLease(lease('a'), 150)).toBe(true);
        await views.commit('views', [put('plans', 'p', { by: 'a' })], 1, lease('a'));
        await expect(views.commit('views', [put('plans', 'p', { by: 'b' })], 2, lease('b'))).rejects.toBeInstanceOf(LeaseLostError);

        await sleep(300); // a paused past its lease…
        expect(await views.acquireLease(lease('b'), 10_000)).toBe(true);
        await views.commit('views', [put('plans', 'p', { by: 'b' })], 2, lease('b'));
        const refused = views.commit('views', [put('plans', 'p', { by: 'a, late' })], 3, lease('a'));
        await expect(refused).rejects.toBeInstanceOf(LeaseLostError);
        await expect(refused).rejects.toMatchObject({ lease: lease('a') });
        expect(await views.get('plans', 'p')).toEqual({ by: 'b' });
        expect(await views.checkpoint('views')).toEqual({ position: 2, version: 0 });
      });

      it('refuses a commit whose lease was never taken', async () => {
        await expect(views.commit('views', [put('plans', 'p', {})], 1, lease('nobody'))).rejects.toBeInstanceOf(LeaseLostError);
        expect(await views.get('plans', 'p')).toBeUndefined();
      });
    });

    it('answers ping', async () => {
      expect(await views.ping()).toBe(true);
    });
  });
}
