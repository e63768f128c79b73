// The drain scheduler on a fake clock: stratified pacing, skipping connections whose endpoint came back, a
// shutdown window that pulls in closes a longer backend drain had scheduled later, and flushing one endpoint's
// pending closes at once while the others keep their turn.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DrainScheduler, type Drainable } from '../../src/proxy/drain.ts';
import type { Clock } from '../../src/util/clock.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { manualDrain } from '../support/manual-drain.ts';

interface Conn extends Drainable {
  readonly id: number;
  closedAt?: number;
  code?: number;
}

function conns(n: number, clock: Clock, from = 0): Conn[] {
  return Array.from({ length: n }, (_, i) => {
    const c: Conn = { id: from + i, draining: false, close: (code) => ((c.closedAt = clock.now()), (c.code = code)) };
    return c;
  });
}

test('N closes over W: one per slot of W/N, in random order', () => {
  const { clock, random } = manualDrain(new ManualClock(0));
  const d = new DrainScheduler<Conn>({ clock, random });
  const list = conns(100, clock);
  d.schedule(list, 10000, 1012, 'x');
  clock.advance(10001);
  const times = list.map((c) => c.closedAt!).sort((a, b) => a - b);
  times.forEach((t, i) => assert.ok(t >= i * 100 && t < (i + 1) * 100 + 1, `close ${i} at ${t}`));
  assert.notDeepEqual(list.map((c) => c.closedAt), times, 'the order of arrival does not decide');
  assert.equal(d.pending, 0);
});

test('a connection whose endpoint came back before its turn is kept', () => {
  const { clock, random } = manualDrain(new ManualClock(0));
  const back = new Set<number>([3, 4]);
  const skipped: number[] = [];
  const d = new DrainScheduler<Conn>({ clock, random, stillLeaving: (c) => !back.has(c.id), onSkipped: (c) => skipped.push(c.id) });
  const list = conns(10, clock);
  d.schedule(list, 1000, 1012, 'x');
  clock.advance(1001);
  assert.deepEqual(skipped.sort(), [3, 4]);
  assert.equal(list.filter((c) => c.code === 1012).length, 8);
  assert.equal(list[3].draining, false);
});

test('within: a shutdown window pulls in closes a longer backend drain scheduled later', () => {
  const { clock, random } = manualDrain(new ManualClock(0));
  const d = new DrainScheduler<Conn>({ clock, random });
  const backendDrain = conns(50, clock);
  d.schedule(backendDrain, 60000, 1012, 'backend restarting');
  clock.advance(1000);
  const early = backendDrain.filter((c) => c.closedAt !== undefined).length;
  const rest = conns(50, clock, 100);
  d.schedule([...rest, ...backendDrain.filter((c) => c.closedAt === undefined)], 3000, 1012, 'proxy restarting', { within: true });
  clock.advance(3001);
  assert.equal([...backendDrain, ...rest].filter((c) => c.closedAt === undefined).length, 0, 'everything closed inside the shutdown window');
  for (const c of [...backendDrain, ...rest]) assert.ok(c.closedAt! <= 4001);
  assert.ok(early <= 2);
  assert.equal(d.pending, 0);
});

test('flush(which): the selected pending closes happen now, in schedule order; the others keep their turn', () => {
  const { clock, random } = manualDrain(new ManualClock(0));
  const order: number[] = [];
  const d = new DrainScheduler<Conn>({ clock, random, onClosed: (c) => order.push(c.id) });
  const terminating = conns(20, clock);
  const other = conns(20, clock, 100);
  d.schedule(terminating, 10000, 1012, 'backend restarting');
  d.schedule(other, 10000, 1012, 'backend restarting');
  clock.advance(5000);
  // Stratified: exactly one close per slot of 500 ms, so half the window holds 10 of each group.
  assert.equal(terminating.filter((c) => c.closedAt !== undefined).length, 10);
  assert.equal(other.filter((c) => c.closedAt !== undefined).length, 10);
  order.length = 0;
  const mine = new Set(terminating);
  d.flush((c) => mine.has(c));
  assert.equal(order.length, 10, 'the ten remaining closes of the selected group');
  assert.ok(order.every((id) => id < 100), 'only the selected group');
  assert.deepEqual(new Set(terminating.map((c) => c.code)), new Set([1012]));
  assert.deepEqual(terminating.map((c) => c.closedAt! <= 5000), terminating.map(() => true), 'all closed by now');
  assert.equal(other.filter((c) => c.closedAt !== undefined).length, 10, 'the others were not touched');
  assert.equal(d.pending, 10);
  clock.advance(5001);
  const late = other.map((c) => c.closedAt!).filter((t) => t > 5000).sort((a, b) => a - b);
  assert.equal(late.length, 10);
  late.forEach((t, i) => assert.ok(t >= 5000 + i * 500 && t < 5000 + (i + 1) * 500 + 1, `close ${i} at ${t}: still one per slot`));
  assert.equal(d.pending, 0);
});

test('flush(which) skips a selected connection whose endpoint came back, as its turn would have', () => {
  const { clock, random } = manualDrain(new ManualClock(0));
  const skipped: number[] = [];
  const d = new DrainScheduler<Conn>({ clock, random, stillLeaving: (c) => c.id !== 2, onSkipped: (c) => skipped.push(c.id) });
  const list = conns(5, clock);
  d.schedule(list, 10000, 1012, 'x');
  d.flush();
  assert.deepEqual(list.map((c) => c.code), [1012, 1012, undefined, 1012, 1012]);
  assert.deepEqual(skipped, [2]);
  assert.equal(list[2]!.draining, false);
  assert.equal(d.pending, 0);
});
