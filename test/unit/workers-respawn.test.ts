// The respawn backoff of `--workers N` (src/workers/respawn.ts) on the manual clock: quick deaths double the wait
// up to the ceiling, a worker that ran long enough resets it, and stop() cancels starts already waiting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Respawner } from '../../src/workers/respawn.ts';
import { ManualClock } from '../support/manual-clock.ts';

function setup() {
  const clock = new ManualClock();
  const forks: number[] = [];
  const r = new Respawner({ clock, fork: () => forks.push(clock.now()), baseMs: 500, maxMs: 4000, stableMs: 60_000 });
  return { clock, forks, r };
}

test('a worker that keeps dying at once waits 0.5, 1, 2, 4, 4 s before each start', () => {
  const { clock, forks, r } = setup();
  const waits: (number | undefined)[] = [];
  for (let i = 0; i < 5; i++) {
    const startedAt = clock.now();
    waits.push(r.died(startedAt));
    clock.advance(waits.at(-1)! - 1);
    const before = forks.length;
    clock.advance(1);
    assert.equal(forks.length, before + 1, `start ${i + 1} exactly when its wait is over`);
  }
  assert.deepEqual({ waits, forks }, { waits: [500, 1000, 2000, 4000, 4000], forks: [1500, 2500, 4500, 8500, 12500] });
});

test('a worker that ran for the stable time resets the backoff', () => {
  const { clock, r } = setup();
  const startedAt = clock.now();
  assert.deepEqual([r.died(startedAt), r.died(startedAt)], [500, 1000]);
  const longLived = clock.now();
  clock.advance(60_000);
  assert.deepEqual([r.died(longLived), r.died(clock.now())], [500, 1000]);
});

test('stop(): a start already waiting never happens, and later deaths start nothing', () => {
  const { clock, forks, r } = setup();
  r.died(clock.now());
  r.stop();
  assert.equal(r.died(clock.now()), undefined);
  clock.advance(60_000);
  assert.deepEqual({ forks, pending: clock.pending }, { forks: [], pending: 0 });
});
