// The shared timer wheel, driven by a manual clock: deadlines fire on the first tick at or after them, never
// before; disarm and re-arm work from inside callbacks; the interval runs only while something is armed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { ManualClock } from '../support/manual-clock.ts';

// The wheel's interval is the clock's repeat(): advance() fires it at every tick, as a real interval would.

test('a deadline fires on the first tick at or after it, once', () => {
  const clock = new ManualClock(10_000);
  const wheel = new TimerWheel({ tickMs: 100, clock });
  const fired: number[] = [];
  const t = wheel.timer(() => fired.push(clock.now()));
  t.arm(250);
  assert.equal(wheel.running, true);
  clock.advance(200);
  assert.deepEqual(fired, []);
  clock.advance(100);
  assert.deepEqual(fired, [10_300]);
  clock.advance(1000);
  assert.equal(fired.length, 1);
  assert.equal(t.armed, false);
  assert.equal(wheel.running, false);
});

test('many timers at many deadlines, some further than a whole round, fire in time and not before', () => {
  const clock = new ManualClock(10_000);
  const wheel = new TimerWheel({ tickMs: 100, slots: 16, clock });
  const start = clock.now();
  const got = new Map<number, number>();
  const delays = Array.from({ length: 200 }, (_, i) => (i * 37) % 5000);
  delays.forEach((d, i) => wheel.timer(() => got.set(i, clock.now())).arm(d));
  assert.equal(wheel.size, 200);
  clock.advance(5200);
  assert.equal(got.size, 200);
  delays.forEach((d, i) => {
    const at = got.get(i)! - start;
    assert.ok(at >= d && at < d + 200, `timer ${i} for ${d} ms fired at ${at}`);
  });
  assert.equal(wheel.size, 0);
});

test('disarm and re-arm, also from inside a callback; a disarmed due timer does not fire', () => {
  const clock = new ManualClock(10_000);
  const wheel = new TimerWheel({ tickMs: 100, clock });
  const log: string[] = [];
  const b = wheel.timer(() => log.push('b'));
  const a = wheel.timer(() => {
    log.push('a');
    b.disarm();
    a.arm(300);
  });
  // Same tick; the later armed fires first, so b is already due when a disarms it.
  b.arm(100);
  a.arm(100);
  clock.advance(100);
  assert.deepEqual(log, ['a']);
  b.arm(1000);
  b.arm(50); // re-arming moves the deadline
  clock.advance(100);
  assert.deepEqual(log, ['a', 'b']);
  a.disarm();
  clock.advance(1000);
  assert.deepEqual(log, ['a', 'b']);
  assert.equal(wheel.running, false);
});

test('a stalled clock (longer than a round) fires everything due in one tick', () => {
  const clock = new ManualClock(10_000);
  const wheel = new TimerWheel({ tickMs: 100, slots: 8, clock });
  let n = 0;
  for (let i = 0; i < 20; i++) wheel.timer(() => n++).arm(i * 100);
  clock.stall(5000);
  clock.advance(0);
  assert.equal(n, 20);
});

test('the interval starts on the first arm and stops when empty; stop() disarms everything', () => {
  const clock = new ManualClock(10_000);
  const wheel = new TimerWheel({ tickMs: 100, clock });
  let fired = 0;
  const t1 = wheel.timer(() => fired++);
  const t2 = wheel.timer(() => fired++);
  t1.arm(500);
  t2.arm(500);
  assert.equal(clock.pending, 1, 'one interval');
  t1.disarm();
  assert.equal(wheel.running, true);
  wheel.stop();
  assert.equal(wheel.running, false);
  assert.equal(t2.armed, false);
  clock.advance(1000);
  assert.equal(fired, 0);
  assert.equal(clock.pending, 0, 'the interval stopped');
  t1.arm(100);
  assert.equal(clock.pending, 1, 'and started again');
  clock.advance(100);
  assert.equal(fired, 1);
});

test('the real clock: an armed wheel does not keep the process alive', () => {
  const wheel = new TimerWheel();
  const t = wheel.timer(() => {});
  t.arm(60_000);
  assert.equal(wheel.running, true);
  t.disarm();
  assert.equal(wheel.running, false);
});
