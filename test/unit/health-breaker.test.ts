import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreakers, type BreakerConfig, type BreakerState } from '../../src/health/breaker.ts';
import { ManualClock } from '../support/manual-clock.ts';

function setup() {
  const clock = new ManualClock();
  const changes: BreakerState[] = [];
  const cb = new CircuitBreakers({ clock, onChange: (_g, s) => changes.push(s) });
  return { clock, cb, changes };
}

describe('circuit breaker: capacity', () => {
  it('refuses at maxPendingHandshakes and admits again as soon as one finishes', () => {
    const { cb } = setup();
    const cfg: BreakerConfig = { maxPendingHandshakes: 2, openMs: 10_000 };
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    const a1 = cb.started('g', 'b');
    cb.started('g', 'b');
    assert.equal(cb.admits('g', 'b', 0, cfg), false);
    // Capacity is per backend: another route (group) on the same backend is refused too.
    assert.equal(cb.admits('g2', 'b', 0, cfg), false);
    assert.equal(cb.admits('g', 'other', 0, cfg), true);
    cb.finished(a1, 'ok', cfg);
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    assert.equal(cb.state('g'), 'closed');
  });

  it('maxConnections counts open connections plus handshakes in flight', () => {
    const { cb } = setup();
    const cfg: BreakerConfig = { maxConnections: 3, openMs: 10_000 };
    assert.equal(cb.admits('g', 'b', 2, cfg), true);
    cb.started('g', 'b');
    assert.equal(cb.admits('g', 'b', 2, cfg), false);
    assert.equal(cb.admits('g', 'b', 1, cfg), true);
  });
});

describe('circuit breaker: failures and half-open', () => {
  const cfg: BreakerConfig = { consecutiveFailures: 3, openMs: 10_000 };
  const failOnce = (cb: CircuitBreakers) => cb.finished(cb.started('g', 'b'), 'failed', cfg);

  it('opens after consecutive failures, stays open for openMs, then lets exactly one probe through', () => {
    const { clock, cb, changes } = setup();
    failOnce(cb);
    failOnce(cb);
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    failOnce(cb);
    assert.equal(cb.state('g'), 'open');
    assert.equal(cb.admits('g', 'b', 0, cfg), false);
    clock.advance(9_999);
    assert.equal(cb.admits('g', 'b', 0, cfg), false);
    clock.advance(1);
    assert.equal(cb.state('g'), 'half-open');
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    const probe = cb.started('g', 'b');
    assert.equal(probe.probe, true);
    assert.equal(cb.admits('g', 'b', 0, cfg), false, 'one probe at a time');
    cb.finished(probe, 'ok', cfg);
    assert.equal(cb.state('g'), 'closed');
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    assert.deepEqual(changes, ['open', 'half-open', 'closed']);
  });

  it('a failed probe opens the circuit again for another openMs', () => {
    const { clock, cb, changes } = setup();
    for (let i = 0; i < 3; i++) failOnce(cb);
    clock.advance(10_000);
    const probe = cb.started('g', 'b');
    clock.advance(500);
    cb.finished(probe, 'failed', cfg);
    assert.equal(cb.state('g'), 'open');
    clock.advance(9_999);
    assert.equal(cb.admits('g', 'b', 0, cfg), false);
    clock.advance(1);
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    assert.deepEqual(changes, ['open', 'half-open', 'open']);
  });

  it('an abandoned probe frees the slot; late results of older attempts do not move the circuit', () => {
    const { clock, cb } = setup();
    const old = cb.started('g', 'b');
    for (let i = 0; i < 3; i++) failOnce(cb);
    clock.advance(10_000);
    const probe = cb.started('g', 'b');
    cb.finished(old, 'ok', cfg);
    assert.equal(cb.state('g'), 'half-open', 'a handshake from before the trip proves nothing');
    assert.equal(cb.admits('g', 'b', 0, cfg), false);
    cb.finished(probe, 'aborted', cfg);
    assert.equal(cb.admits('g', 'b', 0, cfg), true);
    assert.equal(cb.pending('b'), 0);
  });

  it('a success between failures resets the count; without consecutiveFailures only capacity applies', () => {
    const { cb } = setup();
    failOnce(cb);
    failOnce(cb);
    cb.finished(cb.started('g', 'b'), 'ok', cfg);
    failOnce(cb);
    failOnce(cb);
    assert.equal(cb.state('g'), 'closed');
    const capOnly: BreakerConfig = { maxConnections: 10, openMs: 1000 };
    for (let i = 0; i < 50; i++) cb.finished(cb.started('h', 'b'), 'failed', capOnly);
    assert.equal(cb.state('h'), 'closed');
  });
});
