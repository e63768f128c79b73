// The write loop both status writers share: never more than `concurrency` writes in flight (the client-side
// bound on the API server's load), nothing while not leading, equal values not written again, a failure
// retried when the injected clock passes the delay, and every key rewritten when leadership is won.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
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
