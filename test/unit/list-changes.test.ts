// listChanges, the identity pass the status writer and the controller make over each build's statuses, against
// the obvious answer from Maps: random lists sharing most objects with the list before, keys kept or not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listChanges } from '../../src/model/list-changes.ts';

interface Item {
  readonly key: string;
  readonly v: number;
}

/** A small deterministic generator (mulberry32), so that a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('listChanges: the objects that changed when the keys stay; undefined when a key comes or goes', () => {
  const r = rng(19);
  for (let round = 0; round < 300; round++) {
    const n = 1 + Math.floor(r() * 40);
    const prev: Item[] = Array.from({ length: n }, (_, i) => ({ key: `k${String(i).padStart(3, '0')}`, v: 0 }));
    const next = prev.map((it) => (r() < 0.2 ? { key: it.key, v: it.v + 1 } : it));
    const keysChange = r() < 0.3;
    if (keysChange) {
      if (r() < 0.5 && next.length > 1) next.splice(Math.floor(r() * next.length), 1);
      else next.splice(Math.floor(r() * (next.length + 1)), 0, { key: `k${String(n + round).padStart(3, '0')}x`, v: 0 });
    }
    const got = listChanges(next, prev, (it) => it.key);
    if (keysChange) {
      assert.equal(got, undefined, `round ${round}`);
      continue;
    }
    const before = new Map(prev.map((it) => [it.key, it]));
    assert.deepEqual(got, next.filter((it) => before.get(it.key) !== it).map((now) => ({ now, before: before.get(now.key) })), `round ${round}`);
  }
  assert.equal(listChanges([{ key: 'a', v: 0 }], undefined, (it) => it.key), undefined);
  // Same length, a key swapped for another: not the same keys.
  assert.equal(listChanges([{ key: 'a', v: 0 }, { key: 'c', v: 0 }], [{ key: 'a', v: 0 }, { key: 'b', v: 0 }], (it) => it.key), undefined);
});
