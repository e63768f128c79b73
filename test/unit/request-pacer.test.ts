// The leader's writes are paced on the injected clock: a burst goes at once, then one request every 1/qps
// seconds, in the order they asked; a quiet spell refills the burst.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestPacer } from '../../src/kube/request-pacer.ts';
import { ManualClock } from '../support/manual-clock.ts';

test('request pacer: burst at once, then qps, in order; quiet time refills the burst', async () => {
  const clock = new ManualClock();
  const pacer = new RequestPacer({ qps: 10, burst: 3, clock });
  const t0 = clock.now();
  const sent: string[] = [];
  const ask = (name: string) => void pacer.take().then(() => sent.push(`${name}@${clock.now() - t0}`));
  for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) ask(n);
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(sent, ['a@0', 'b@0', 'c@0']);
  assert.equal(pacer.waiting, 3);
  for (let t = 0; t < 300; t += 10) {
    clock.advance(10);
    await new Promise<void>((r) => setImmediate(r));
  }
  assert.deepEqual(sent, ['a@0', 'b@0', 'c@0', 'd@100', 'e@200', 'f@300']);
  assert.equal(pacer.waiting, 0);
  // A second of quiet: three go at once again, the fourth waits its tenth of a second.
  clock.advance(1000);
  sent.length = 0;
  for (const n of ['g', 'h', 'i', 'j']) ask(n);
  await new Promise<void>((r) => setImmediate(r));
  assert.deepEqual(sent, ['g@1300', 'h@1300', 'i@1300']);
  clock.advance(100);
  await new Promise<void>((r) => setImmediate(r));
  assert.deepEqual(sent, ['g@1300', 'h@1300', 'i@1300', 'j@1400']);
});
