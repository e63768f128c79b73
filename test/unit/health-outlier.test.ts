import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutlierDetector, type EjectionEvent, type OutlierConfig } from '../../src/health/outlier.ts';
import { ManualClock } from '../support/manual-clock.ts';

const cfg: OutlierConfig = { consecutiveFailures: 3, baseEjectionMs: 30_000, maxEjectionMs: 100_000, maxEjectionPercent: 50 };
const members = ['a', 'b', 'c', 'd'];

function setup() {
  const clock = new ManualClock();
  const events: EjectionEvent[] = [];
  const od = new OutlierDetector({ clock, onEject: (e) => events.push(e) });
  const fail = (ep: string, n = 1) => {
    let ejected = false;
    for (let i = 0; i < n; i++) ejected = od.report('g', ep, false, members, cfg) || ejected;
    return ejected;
  };
  return { clock, od, events, fail };
}

describe('passive ejection', () => {
  it('ejects after N consecutive failures, for the base time, then readmits', () => {
    const { clock, od, fail, events } = setup();
    assert.equal(fail('a', 2), false);
    assert.equal(od.ejected('g', 'a'), false);
    assert.equal(fail('a'), true);
    assert.equal(od.ejected('g', 'a'), true);
    assert.deepEqual(events, [{ group: 'g', endpoint: 'a', durationMs: 30_000, streak: 1 }]);
    clock.advance(29_999);
    assert.equal(od.ejected('g', 'a'), true);
    clock.advance(1);
    assert.equal(od.ejected('g', 'a'), false);
  });

  it('a success resets the count: failures must be consecutive', () => {
    const { od, fail } = setup();
    fail('a', 2);
    od.report('g', 'a', true, members, cfg);
    assert.equal(fail('a', 2), false);
    assert.equal(fail('a'), true);
  });

  it('repeated ejections grow base × n up to the cap, and the streak decays while the endpoint behaves', () => {
    const { clock, od, fail, events } = setup();
    fail('a', 3);
    clock.advance(30_000);
    fail('a', 3);
    clock.advance(60_000);
    fail('a', 3);
    clock.advance(90_000);
    fail('a', 3);
    assert.deepEqual(events.map((e) => e.durationMs), [30_000, 60_000, 90_000, 100_000]);
    assert.equal(od.ejectedUntil('g', 'a'), clock.now() + 100_000);
    // Out of ejection for 3 base periods: the streak (4) drops by 3, so the next ejection is 2 × base.
    clock.advance(100_000 + 90_000);
    fail('a', 3);
    assert.equal(events.at(-1)?.durationMs, 60_000);
    assert.equal(events.at(-1)?.streak, 2);
  });

  it('never ejects more than maxEjectionPercent of the backend', () => {
    const { od, fail } = setup();
    assert.equal(fail('a', 3), true);
    assert.equal(fail('b', 3), true);
    // 50% of 4 is 2: c keeps taking traffic whatever it does.
    assert.equal(fail('c', 10), false);
    assert.equal(od.ejectedCount('g', members), 2);
    assert.equal(od.ejected('g', 'c'), false);
  });

  it('floor of the share: 50% of a single endpoint is none', () => {
    const clock = new ManualClock();
    const od = new OutlierDetector({ clock });
    for (let i = 0; i < 10; i++) od.report('g', 'solo', false, ['solo'], cfg);
    assert.equal(od.ejected('g', 'solo'), false);
    for (let i = 0; i < 3; i++) od.report('g', 'solo', false, ['solo'], { ...cfg, maxEjectionPercent: 100 });
    assert.equal(od.ejected('g', 'solo'), true);
  });

  it('failures that land during an ejection (handshakes started before it) do not extend it', () => {
    const { clock, od, fail, events } = setup();
    fail('a', 3);
    clock.advance(10_000);
    fail('a', 5);
    assert.equal(events.length, 1);
    assert.equal(od.ejectedUntil('g', 'a'), 1000 + 30_000);
  });

  it('forgets endpoints and groups that are no longer published', () => {
    const { od, fail } = setup();
    fail('a', 3);
    fail('b', 2);
    od.retain(new Map([['g', new Set(['b'])]]));
    assert.equal(od.ejected('g', 'a'), false);
    assert.equal(fail('b'), true, 'b is still published: its count carried over');
    od.retain(new Map());
    assert.equal(od.ejected('g', 'b'), false);
    assert.deepEqual([...od.groups()], []);
  });
});
