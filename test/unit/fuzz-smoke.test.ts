// A small share of `npm run fuzz` in every test run: the frame scanner and the live handshake path, each with
// a seed of its own so successive runs do not all cover the same inputs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzFrames } from '../fuzz/frame-fuzz.ts';
import { fuzzHandshakes } from '../fuzz/handshake-fuzz.ts';
import { fuzzInflate } from '../fuzz/inflate-fuzz.ts';

test('frame scanner: 20,000 fuzzed inputs', () => {
  const r = fuzzFrames(20_000, 11);
  assert.equal(r.iterations, 20_000);
});

test('handshake path: 1,500 fuzzed inputs end in a documented status or close, none hangs', async () => {
  const r = await fuzzHandshakes(1_500, 11, 48);
  assert.deepEqual(r.failures, []);
  assert.equal(r.iterations, 1_500);
  assert.ok((r.byStatus['101'] ?? 0) > 0 && (r.byStatus['400'] ?? 0) > 0, JSON.stringify(r.byStatus));
});

test('inflate path: 300 fuzzed compressed streams', async () => {
  const r = await fuzzInflate(300, 11);
  assert.equal(r.iterations, 300);
  assert.ok(r.clean > 0 && r.rejected > 0, JSON.stringify(r));
});
