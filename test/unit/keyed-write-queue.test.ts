// The write loop both status writers share: never more than `concurrency` writes in flight (the client-side
// bound on the API server's load), nothing while not leading, equal values not written again, a failure
// retried when the injected clock passes the delay (doubled per consecutive failure), a refusal for good not
// sent again until the value changes, and every key rewritten when leadership is won.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { KubeApiError } from '../../src/kube/api-error.ts';
import { KeyedWriteQueue } from '../../src/status/keyed-write-queue.ts';
import { ManualClock } from '../support/manual-clock.ts';

const log = pino({ level: 'silent' });

/** A write that completes only when the test releases it. */
function gatedWrites() {
  const pending: { key: string; value: number; done: (ok: boolean) => void; fail: (e: Error) => void }[] = [];
  const started: string[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const write = (key: string, value: number) =>
    new Promise<boolean>((resolve, reject) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      started.push(`${key}=${value}`);
      pending.push({ key, value, done: (ok) => (inFlight--, resolve(ok)), fail: (e) => (inFlight--, reject(e)) });
    });
  return { write, pending, started, max: () => maxInFlight };
}

/** Lets the queue's promise chains run until no write is waiting to start. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('at most `concurrency` writes in flight; a relist of many keys trickles through', async () => {
  const g = gatedWrites();
  const q = new KeyedWriteQueue<number>({ log, clock: new ManualClock(), concurrency: 3, write: g.write });
  q.set(new Map(Array.from({ length: 10 }, (_, i) => [`k${i}`, i])));
  q.setLeading(true);
  while (g.started.length < 10) {
    await settle();
    assert.ok(g.pending.length <= 3, `${g.pending.length} in flight`);
    for (const p of g.pending.splice(0)) p.done(true);
  }
  await q.idle();
  assert.equal(g.max(), 3);
  assert.deepEqual(g.started.sort(), Array.from({ length: 10 }, (_, i) => `k${i}=${i}`).sort());
});

test('follower writes nothing; equal values skipped; failure retried on the clock; leadership won rewrites all', async () => {
  const calls: string[] = [];
  let failNext = 0;
  const clock = new ManualClock();
  const q = new KeyedWriteQueue<{ v: number }>({
    log,
    clock,
    retryDelayMs: 500,
    write: async (key, value) => {
      calls.push(`${key}=${value.v}`);
      if (failNext > 0) {
        failNext--;
        throw new Error('injected');
      }
      return true;
    },
  });
  q.set(new Map([['a', { v: 1 }], ['b', { v: 1 }]]));
  await q.idle();
  assert.deepEqual(calls, []);
  q.setLeading(true);
  await q.idle();
  assert.deepEqual(calls.splice(0).sort(), ['a=1', 'b=1']);

  // New objects, equal JSON: nothing to write.
  q.set(new Map([['a', { v: 1 }], ['b', { v: 1 }]]));
  await q.idle();
  assert.deepEqual(calls, []);

  failNext = 1;
  q.set(new Map([['a', { v: 2 }], ['b', { v: 1 }]]));
  await q.idle();
  assert.deepEqual(calls.splice(0), ['a=2']);
  assert.equal(q.isWritten('a'), false);
  assert.equal(clock.nextAt, clock.now() + 500, 'the retry is armed on the clock');
  clock.advance(500);
  await q.idle();
  assert.deepEqual(calls.splice(0), ['a=2']);
  assert.equal(q.isWritten('a'), true);

  q.setLeading(false);
  q.setLeading(true);
  await q.idle();
  assert.deepEqual(calls.splice(0).sort(), ['a=2', 'b=1']);
});

test('replace() rewrites only the keys given and refuses a key never set', async () => {
  const calls: string[] = [];
  const q = new KeyedWriteQueue<{ v: number }>({ log, clock: new ManualClock(), write: async (key, value) => (calls.push(`${key}=${value.v}`), true) });
  const values = new Map(['a', 'b', 'c'].map((k) => [k, { v: 0 }]));
  q.set(values);
  q.setLeading(true);
  await q.idle();
  calls.length = 0;
  q.replace([['b', { v: 1 }]]);
  // An equal value (JSON) is not written again.
  q.replace([['c', { v: 0 }]]);
  await q.idle();
  assert.deepEqual(calls, ['b=1']);
  assert.equal(q.isWritten('a'), true);
  assert.equal(q.isWritten('b'), true);
  assert.throws(() => q.replace([['d', { v: 1 }]]), /status key d replaced but never set/);
});

/** A write that answers each call with the next outcome scripted for its key (true once the script runs out). */
function scriptedWrites() {
  const calls: string[] = [];
  const script = new Map<string, (number | 'ok')[]>();
  const write = async (key: string, value: { v: number }) => {
    calls.push(`${key}=${value.v}`);
    const next = script.get(key)?.shift() ?? 'ok';
    if (next === 'ok') return true;
    throw new KubeApiError(next, `injected ${next}`);
  };
  return { calls, script, write };
}

test('a 422 is written once, not again as time passes, again once its value changes', async () => {
  const clock = new ManualClock();
  const w = scriptedWrites();
  const refusals: string[] = [];
  const q = new KeyedWriteQueue<{ v: number }>({ log, clock, retryDelayMs: 500, write: w.write, onRefused: (key, err) => refusals.push(`${key} ${err.status}`) });
  w.script.set('a', [422, 422]);
  q.setLeading(true);
  q.set(new Map([['a', { v: 1 }], ['b', { v: 1 }]]));
  await q.idle();
  assert.deepEqual(w.calls.splice(0).sort(), ['a=1', 'b=1']);
  assert.deepEqual(refusals, ['a 422']);
  assert.equal(q.isWritten('a'), false);
  assert.equal(clock.pending, 0, 'no retry is armed for a refusal');
  clock.advance(60_000);
  await q.idle();
  // The next build with the same value (new objects, equal JSON) does not send it either.
  q.set(new Map([['a', { v: 1 }], ['b', { v: 1 }]]));
  await q.idle();
  assert.deepEqual(w.calls, []);

  q.set(new Map([['a', { v: 2 }], ['b', { v: 1 }]]));
  await q.idle();
  assert.deepEqual(w.calls.splice(0), ['a=2']);
  assert.deepEqual(refusals, ['a 422', 'a 422']);
  q.replace([['a', { v: 3 }]]);
  await q.idle();
  assert.deepEqual(w.calls.splice(0), ['a=3']);
  assert.equal(q.isWritten('a'), true);
  assert.deepEqual(refusals, ['a 422', 'a 422']);
});

test('a 500 is retried with doubling delays up to the cap, and the delay starts over after a success', async () => {
  const clock = new ManualClock();
  const w = scriptedWrites();
  const q = new KeyedWriteQueue<{ v: number }>({ log, clock, retryDelayMs: 500, maxRetryDelayMs: 3_000, write: w.write });
  w.script.set('a', [500, 500, 500, 500, 500]);
  q.setLeading(true);
  q.set(new Map([['a', { v: 1 }]]));
  await q.idle();
  const delays: number[] = [];
  for (;;) {
    await q.idle();
    const at = clock.nextAt;
    if (at === undefined) break;
    delays.push(at - clock.now());
    // Just short of the delay, nothing is sent.
    const sent = w.calls.length;
    clock.advance(at - clock.now() - 1);
    await q.idle();
    assert.equal(w.calls.length, sent);
    clock.advance(1);
  }
  assert.deepEqual(delays, [500, 1_000, 2_000, 3_000, 3_000]);
  assert.deepEqual(w.calls.splice(0), ['a=1', 'a=1', 'a=1', 'a=1', 'a=1', 'a=1']);
  assert.equal(q.isWritten('a'), true);

  w.script.set('a', [503]);
  q.set(new Map([['a', { v: 2 }]]));
  await q.idle();
  assert.equal(clock.nextAt, clock.now() + 500, 'reset by the success');
});

test('the transient codes are retried and the other 4xx are not', async () => {
  const codes = [0, 400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 502, 503, 504];
  const clock = new ManualClock();
  const w = scriptedWrites();
  const refused: number[] = [];
  // 404 is the writers' "object gone" before it reaches the queue; here it is a refusal like any other 4xx.
  const q = new KeyedWriteQueue<{ v: number }>({ log, clock, concurrency: 1, write: w.write, onRefused: (_, err) => refused.push(err.status) });
  for (const c of codes) w.script.set(`k${c}`, [c]);
  q.setLeading(true);
  q.set(new Map(codes.map((c) => [`k${c}`, { v: c }])));
  await q.idle();
  w.calls.length = 0;
  clock.advance(2_000);
  await q.idle();
  assert.deepEqual(refused.sort((a, b) => a - b), [400, 401, 403, 404, 405, 410, 413, 415, 422]);
  assert.deepEqual(w.calls.sort(), ['k0=0', 'k408=408', 'k409=409', 'k429=429', 'k500=500', 'k502=502', 'k503=503', 'k504=504']);
});

test('a 403 is sent again once leadership is won again, and once only', async () => {
  const clock = new ManualClock();
  const w = scriptedWrites();
  const q = new KeyedWriteQueue<{ v: number }>({ log, clock, write: w.write });
  w.script.set('a', [403, 403]);
  q.setLeading(true);
  q.set(new Map([['a', { v: 1 }]]));
  await q.idle();
  clock.advance(60_000);
  await q.idle();
  assert.deepEqual(w.calls.splice(0), ['a=1']);

  q.setLeading(false);
  q.setLeading(true);
  await q.idle();
  clock.advance(60_000);
  await q.idle();
  assert.deepEqual(w.calls.splice(0), ['a=1'], 'refused again: held again');

  q.setLeading(false);
  q.setLeading(true);
  await q.idle();
  assert.deepEqual(w.calls.splice(0), ['a=1']);
  assert.equal(q.isWritten('a'), true);
});
