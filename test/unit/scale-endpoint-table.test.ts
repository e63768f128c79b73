// The snapshot's EndpointTable reads as the sorted Map a full build makes, and a table with some segments
// replaced shares every other segment with the one it came from (the same object).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { EndpointTable, endpointSegment } from '../../src/model/endpoint-table.ts';
import type { Endpoint } from '../../src/model/snapshot.ts';

const endpoint = (key: string): Endpoint => {
  const address = key.slice(key.indexOf('|') + 1);
  return { key, address, host: address.split(':')[0]!, port: 8080, state: 'Active' };
};

// Service names chosen so that plain string order of the whole keys differs from the order of the names alone
// ("a" < "a-b" but "svc:ns/a-b|…" < "svc:ns/a|…").
const segmentName = fc.constantFrom<string>('svc:ns/a|', 'svc:ns/a-b|', 'svc:ns/ab|', 'svc:nt/a|', 'static|');
const key = fc.tuple(segmentName, fc.integer({ min: 1, max: 30 })).map(([s, n]) => `${s}10.0.0.${n}:8080`);

const sortedMap = (keys: Iterable<string>): Map<string, Endpoint> => new Map([...new Set(keys)].sort().map((k) => [k, endpoint(k)]));

test('endpoint table: reads and iterates as the sorted Map of its endpoints', () => {
  fc.assert(
    fc.property(fc.array(key, { maxLength: 40 }), fc.array(key, { maxLength: 10 }), (keys, probes) => {
      const want = sortedMap(keys);
      const got = EndpointTable.from([...want].reverse());
      assert.deepEqual([...got], [...want]);
      assert.deepEqual([...got.keys()], [...want.keys()]);
      assert.equal(got.size, want.size);
      for (const k of [...keys, ...probes]) {
        assert.equal(got.has(k), want.has(k));
        assert.equal(got.get(k), want.get(k));
      }
      assert.deepEqual([...EndpointTable.ofSegments(got.segments())], [...want]);
    }),
    { numRuns: 300 },
  );
});

test('endpoint table: replacing segments gives the table of the new endpoints and shares the others', () => {
  fc.assert(
    fc.property(fc.array(key, { maxLength: 40 }), fc.array(fc.tuple(segmentName, fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 5 }))), (keys, changes) => {
      const before = EndpointTable.from(sortedMap(keys));
      const replaced = new Map(changes.map(([s, ns]) => [s, [...new Set(ns)].map((n) => `${s}10.0.0.${n}:8080`).map((k) => [k, endpoint(k)] as const)]));
      const after = before.withSegments(replaced);
      const want = new Map([...before].filter(([k]) => !replaced.has(endpointSegment(k))));
      for (const list of replaced.values()) for (const [k, e] of list) want.set(k, e);
      assert.deepEqual([...after], [...sortedMap(want.keys())]);
      assert.equal(after.size, want.size);
      for (const [s, seg] of before.segments()) if (!replaced.has(s)) assert.equal(after.segment(s), seg, `${s} not shared`);
      // The same replacement given as ready segments (what the receiving side of the build thread holds).
      const asMaps = new Map([...replaced].map(([s, list]) => [s, list.length > 0 ? new Map([...list].sort(([a], [b]) => (a < b ? -1 : 1))) : undefined]));
      const viaMaps = before.withSegmentMaps(asMaps);
      assert.deepEqual([...viaMaps], [...after]);
      assert.equal(viaMaps.size, after.size);
      const diff = after.segmentsChangedFrom(before);
      assert.deepEqual(new Set([...diff.changed.map(([s]) => s), ...diff.removed]), new Set([...replaced.keys()].filter((s) => before.segment(s) || after.segment(s))));
    }),
    { numRuns: 300 },
  );
});
