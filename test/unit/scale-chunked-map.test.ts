// The ChunkedMap (the snapshot's routes, the endpoint table's segments) reads as the sorted Map of its entries
// after any sequence of changes, shares the chunks a change does not touch, and mapChanges() finds exactly the
// entries that differ, whether it compares chunks or walks plain Maps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { ChunkedMap, mapChanges } from '../../src/model/chunked-map.ts';

// Up to 600 keys: enough for chunks (64 entries as built) to grow past twice their size and split.
const key = fc.integer({ min: 0, max: 599 }).map((n) => `ns/r${n}`);
const change = fc.tuple(key, fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }));
const batch = fc.array(change, { maxLength: 300 });

const sorted = (m: ReadonlyMap<string, unknown>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** Values are objects, compared by identity as the snapshot's routes are: one object per (key, version). */
const values = new Map<string, { v: number }>();
const value = (k: string, v: number) => {
  const id = `${k}#${v}`;
  let o = values.get(id);
  if (!o) values.set(id, (o = { v }));
  return o;
};

test('chunked map: any sequence of changes reads as the sorted Map, shares untouched chunks, and diffs exactly', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(key, fc.integer({ min: 0, max: 3 })), { maxLength: 400 }), fc.array(batch, { minLength: 1, maxLength: 6 }), (initial, batches) => {
      const want = new Map(initial.map(([k, v]) => [k, value(k, v)]));
      let got = ChunkedMap.from(initial.map(([k, v]) => [k, value(k, v)] as const));
      for (const b of batches) {
        const prevWant = new Map(want);
        for (const [k, v] of b) {
          if (v === undefined) want.delete(k);
          else want.set(k, value(k, v));
        }
        const prev = got;
        got = prev.with(b.map(([k, v]) => [k, v === undefined ? undefined : value(k, v)] as const));
        assert.deepEqual([...got], sorted(want));
        assert.equal(got.size, want.size);
        for (let n = 0; n < 600; n += 7) assert.equal(got.get(`ns/r${n}`), want.get(`ns/r${n}`));
        for (const c of got.chunks) assert.ok(c.size > 0 && c.size <= 128);
        // A chunk that no changed key falls in (the last chunk whose first key is not above it, or the first chunk)
        // is the previous map's object.
        const landed = new Set(b.map(([k]) => Math.max(0, prev.firsts.findLastIndex((f) => f <= k))));
        prev.chunks.forEach((c, i) => assert.ok(landed.has(i) || got.chunks.includes(c), `chunk ${i} untouched but not shared`));
        const naive = [...new Set([...want.keys(), ...prevWant.keys()])]
          .sort()
          .filter((k) => want.get(k) !== prevWant.get(k))
          .map((k) => ({ key: k, ...(want.has(k) ? { now: want.get(k) } : {}), ...(prevWant.has(k) ? { before: prevWant.get(k) } : {}) }));
        assert.deepEqual(mapChanges(got, prev), naive);
        assert.deepEqual(mapChanges(new Map(got), new Map(prev)), naive);
      }
    }),
    { numRuns: 60 },
  );
});

test('chunked map: a change that sets what is already there returns the same map', () => {
  const m = ChunkedMap.from<string, { v: number }>([...Array(200).keys()].map((i) => [`k${String(i).padStart(3, '0')}`, value(`k${i}`, 0)] as const));
  assert.equal(m.with([['k005', m.get('k005')], ['zzz', undefined]]), m);
  const one = m.with([['k005', value('k5', 1)]]);
  assert.equal(one.chunks.filter((c, i) => c !== m.chunks[i]).length, 1);
  assert.ok(Object.isFrozen(one) && Object.isFrozen(one.chunks) && Object.isFrozen(one.firsts));
});

// The primary sends the snapshot to its workers by structured clone (cluster IPC with 'advanced' serialization,
// which is v8.serialize: https://nodejs.org/api/child_process.html#advanced-serialization): a class instance
// arrives as a plain object of its own fields, which revive() makes a map again.
test('chunked map: revived from its structured clone reads the same', () => {
  const m = ChunkedMap.from([...Array(300).keys()].map((i) => [`k${i}`, { i }] as const));
  const clone: unknown = deserialize(serialize(m));
  assert.ok(!(clone instanceof ChunkedMap));
  const back = ChunkedMap.revive<string, { i: number }>(clone)!;
  assert.deepEqual([...back], [...m]);
  assert.deepEqual(back.get('k42'), { i: 42 });
  assert.equal(ChunkedMap.revive(new Map()), undefined);
});
