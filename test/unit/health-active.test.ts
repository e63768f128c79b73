import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActiveHealthChecker, type Transition } from '../../src/health/active.ts';
import type { ProbeSpec, ProbeTarget } from '../../src/health/probes.ts';
import { holderWith, route } from '../support/health-snapshot.ts';
import { ManualClock } from '../support/manual-clock.ts';

const flush = () => new Promise((r) => setImmediate(r));

function setup(addresses: string[], hc: Record<string, unknown> = {}) {
  const clock = new ManualClock();
  const healthy = new Map<string, boolean>();
  const calls: { target: ProbeTarget; spec: ProbeSpec; at: number }[] = [];
  const transitions: Transition[] = [];
  const checker = new ActiveHealthChecker({
    clock,
    prober: async (target, spec) => {
      calls.push({ target, spec, at: clock.now() });
      // Answer on a later turn, as a real probe does.
      await null;
      return { ok: healthy.get(target.authority) ?? true, detail: 'fake' };
    },
    onTransition: (t) => transitions.push(t),
  });
  const spec = (addrs: string[]) => ({ rules: [{ backendRefs: [{ endpoints: addrs }] }], healthCheck: { type: 'HTTP', path: '/healthz', intervalSeconds: 5, timeoutSeconds: 1, ...hc } });
  const h = holderWith([route('chat', spec(addresses))]);
  checker.sync(h.holder.current()!);
  const step = async (ms: number) => {
    clock.advance(ms);
    await flush();
  };
  const state = (addr: string) => checker.state('default/chat', `static|${addr}`);
  const publish = (addrs: string[]) => {
    h.publish([route('chat', spec(addrs))]);
    checker.sync(h.holder.current()!);
  };
  return { clock, healthy, calls, transitions, checker, step, state, publish };
}

describe('active health checks', () => {
  it('probes every endpoint at once, then every interval; the first result alone decides', async () => {
    const t = setup(['127.0.0.1:1001', '127.0.0.1:1002']);
    t.healthy.set('127.0.0.1:1002', false);
    assert.equal(t.state('127.0.0.1:1001'), 'pending');
    assert.equal(t.checker.healthy('default/chat', 'static|127.0.0.1:1002'), true, 'pending endpoints keep their readiness');
    await t.step(0);
    assert.equal(t.calls.length, 2);
    assert.deepEqual(t.calls[0].spec, { type: 'HTTP', path: '/healthz', timeoutMs: 1000 });
    assert.equal(t.state('127.0.0.1:1001'), 'healthy');
    assert.equal(t.state('127.0.0.1:1002'), 'unhealthy');
    assert.equal(t.checker.healthy('default/chat', 'static|127.0.0.1:1002'), false);
    await t.step(4_999);
    assert.equal(t.calls.length, 2);
    await t.step(1);
    assert.equal(t.calls.length, 4);
    assert.deepEqual(t.calls.map((c) => c.at), [1000, 1000, 6000, 6000]);
  });

  it('healthy → unhealthy after unhealthyThreshold failures, back after healthyThreshold successes', async () => {
    const t = setup(['127.0.0.1:1001'], { unhealthyThreshold: 3, healthyThreshold: 2 });
    await t.step(0);
    t.healthy.set('127.0.0.1:1001', false);
    await t.step(5_000);
    await t.step(5_000);
    assert.equal(t.state('127.0.0.1:1001'), 'healthy');
    await t.step(5_000);
    assert.equal(t.state('127.0.0.1:1001'), 'unhealthy');
    assert.equal(t.transitions.length, 1);
    assert.deepEqual({ ...t.transitions[0], result: undefined }, { endpoint: 'static|127.0.0.1:1001', address: '127.0.0.1:1001', state: 'unhealthy', routes: ['default/chat'], result: undefined });
    t.healthy.set('127.0.0.1:1001', true);
    await t.step(5_000);
    assert.equal(t.state('127.0.0.1:1001'), 'unhealthy');
    await t.step(5_000);
    assert.equal(t.state('127.0.0.1:1001'), 'healthy');
    assert.deepEqual(t.transitions.map((x) => x.state), ['unhealthy', 'healthy']);
  });

  it('follows snapshot swaps: probes start for new endpoints and stop for removed ones', async () => {
    const t = setup(['127.0.0.1:1001', '127.0.0.1:1002']);
    await t.step(0);
    t.publish(['127.0.0.1:1002', '127.0.0.1:1003']);
    assert.equal(t.checker.size, 2);
    await t.step(0);
    assert.equal(t.calls.at(-1)?.target.authority, '127.0.0.1:1003', 'the new endpoint is probed at once');
    const before = t.calls.length;
    await t.step(5_000);
    const probed = t.calls.slice(before).map((c) => c.target.authority).sort();
    assert.deepEqual(probed, ['127.0.0.1:1002', '127.0.0.1:1003']);
    assert.equal(t.state('127.0.0.1:1001'), undefined);
    t.checker.stop();
    assert.equal(t.clock.pending, 0, 'no timer left behind');
  });

  it('a route without healthCheck is not probed and never vetoes', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const checker = new ActiveHealthChecker({ clock, prober: async () => (calls++, { ok: false, detail: '' }) });
    checker.sync(holderWith([route('plain', { rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:1001'] }] }] })]).holder.current()!);
    clock.advance(60_000);
    await flush();
    assert.equal(calls, 0);
    assert.equal(checker.healthy('default/plain', 'static|127.0.0.1:1001'), true);
  });

  it('removing the check from a route stops its probes', async () => {
    const t = setup(['127.0.0.1:1001']);
    await t.step(0);
    const h = holderWith([route('chat', { rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:1001'] }] }] })]);
    t.checker.sync(h.holder.current()!);
    assert.equal(t.checker.size, 0);
    assert.equal(t.clock.pending, 0);
  });
});
