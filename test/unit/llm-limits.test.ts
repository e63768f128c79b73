// Per-principal limits on the manual clock: the retry hint is the moment enough of the window expires, and idle
// principals are swept so distinct principals do not accumulate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrincipalLimits } from '../../src/llm/limits.ts';
import { ManualClock } from '../support/manual-clock.ts';

const base = { concurrentPerConnection: 10, concurrentPerPrincipal: 10, requestsPerMinute: 1000, tokensPerMinute: 100 };

test('tokens/min: the hint waits for as many old charges as must expire to get under the limit', () => {
  const clock = new ManualClock(0);
  const l = new PrincipalLimits(base, clock);
  const spend = (n: number) => {
    const a = l.admit('p');
    assert.ok(a.ok);
    a.release(n);
  };
  spend(40); // t=0
  clock.advance(10_000);
  spend(40); // t=10s
  clock.advance(10_000);
  spend(30); // t=20s: 110 in the window
  clock.advance(5_000);
  // 110 ≥ 100: the t=0 charge leaving (at 60 s) brings it to 70 < 100.
  assert.deepEqual(l.admit('p'), { ok: false, reason: 'tokens_per_minute', retryAfterMs: 35_000 });
  clock.advance(35_000);
  assert.equal(l.admit('p').ok, true);
  l.close();
});

test('a released admission frees its concurrency slot once, however often release is called', () => {
  const clock = new ManualClock(0);
  const l = new PrincipalLimits({ ...base, concurrentPerPrincipal: 1 }, clock);
  const a = l.admit('p');
  assert.ok(a.ok);
  assert.deepEqual(l.admit('p'), { ok: false, reason: 'concurrent_per_principal', retryAfterMs: 1000 });
  a.release(0);
  a.release(0);
  const b = l.admit('p');
  assert.ok(b.ok);
  assert.deepEqual(l.admit('p'), { ok: false, reason: 'concurrent_per_principal', retryAfterMs: 1000 });
  l.close();
});

test('principals with nothing in flight and nothing in the window are swept', () => {
  const clock = new ManualClock(0);
  const l = new PrincipalLimits(base, clock);
  for (let i = 0; i < 500; i++) {
    const a = l.admit(`ip:${i}`);
    if (a.ok) a.release(1);
  }
  const held = l.admit('busy');
  assert.equal(l.size, 501);
  clock.advance(120_000);
  assert.equal(l.size, 1);
  if (held.ok) held.release(0);
  l.close();
  assert.equal(clock.pending, 0);
});
