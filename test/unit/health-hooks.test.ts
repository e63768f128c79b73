// The health module as the proxy sees it: admission veto, attempt/result reporting, 503 circuit_open — driven
// through the same calls the handshake path makes, with a fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { WsgateError } from '../../src/errors.ts';
import { Health } from '../../src/health/health.ts';
import { BalancerState, pickEndpoint, type Pick, type PickOptions } from '../../src/proxy/balance/balancer.ts';
import type { HandshakeContext } from '../../src/proxy/hooks.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { holderWith, route } from '../support/health-snapshot.ts';
import { ManualClock } from '../support/manual-clock.ts';

const log = pino({ level: 'silent' });

function setup(spec: Record<string, unknown>, addrs = ['127.0.0.1:1001', '127.0.0.1:1002']) {
  const clock = new ManualClock();
  const metrics = new Metrics({ defaultMetrics: false });
  const { holder } = holderWith([route('chat', { rules: [{ backendRefs: [{ endpoints: addrs }] }], ...spec })]);
  const open = new Map<string, number>();
  const health = new Health({ holder, log, metrics, clock, connections: (k) => open.get(k) ?? 0, prober: async () => ({ ok: true, detail: '' }) });
  health.start();
  metrics.onScrape(() => health.collect());
  const hooks = health.hooks();
  const balancer = new BalancerState();
  const snap = holder.current()!;
  const r = snap.routes.get('default/chat')!;
  /** One handshake as the proxy runs it; fails holds the endpoints that refuse. */
  const handshake = async (fails: ReadonlySet<string> = new Set(), opts: { abort?: boolean; hold?: boolean } = {}) => {
    const ctx = { match: { route: r, rule: r.rules[0] }, pick: {} } as unknown as HandshakeContext;
    const err = await hooks.admission(ctx);
    if (err) return { err };
    const tried = new Set<string>();
    const picks: Pick[] = [];
    for (let i = 0; i < 2; i++) {
      const pick = pickEndpoint(r.rules[0], 'RoundRobin', balancer, { ...ctx.pick, exclude: tried } as PickOptions);
      if (pick instanceof WsgateError) return picks.length ? { picks } : { err: pick };
      picks.push(pick);
      tried.add(pick.endpoint.key);
      hooks.upstreamAttempt(ctx, pick);
      if (opts.hold) return { picks, finish: (ok: boolean) => hooks.upstreamResult(pick.endpoint, ok, { ctx, backend: pick.backend, aborted: false }) };
      const ok = !fails.has(pick.endpoint.address);
      hooks.upstreamResult(pick.endpoint, ok, { ctx, backend: pick.backend, aborted: opts.abort ?? false });
      if (ok) return { picks };
    }
    return { picks };
  };
  return { clock, metrics, health, handshake, open, r };
}

describe('health hooks', () => {
  it('a failing endpoint is ejected after consecutiveFailures and skipped until its time is up', async () => {
    const t = setup({ outlierDetection: { consecutiveFailures: 2, baseEjectionSeconds: 10 } });
    const bad = new Set(['127.0.0.1:1001']);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(...((await t.handshake(bad)).picks ?? []).map((p) => p.endpoint.address));
    assert.equal(seen.filter((a) => a === '127.0.0.1:1001').length, 2, 'tried twice, then ejected');
    const m = await t.metrics.registry.getSingleMetric('wsgate_endpoint_ejections_total')!.get();
    assert.deepEqual(m.values.map((v) => [v.labels.backend, v.value]), [['static:default/chat/0/0', 1]]);
    assert.match(await t.metrics.registry.metrics(), /wsgate_endpoints_ejected\{namespace="default",route="chat",backend="static:default\/chat\/0\/0"\} 1/);
    t.clock.advance(10_000);
    const after: string[] = [];
    for (let i = 0; i < 4; i++) after.push(...((await t.handshake()).picks ?? []).map((p) => p.endpoint.address));
    assert.ok(after.includes('127.0.0.1:1001'), 'readmitted after the base ejection time');
    assert.doesNotMatch(await t.metrics.registry.metrics(), /wsgate_endpoints_ejected\{/);
  });

  it('a client that leaves mid-handshake does not count against the endpoint', async () => {
    const t = setup({ outlierDetection: { consecutiveFailures: 1, baseEjectionSeconds: 10, maxEjectionPercent: 100 } });
    for (let i = 0; i < 4; i++) await t.handshake(new Set(['127.0.0.1:1001', '127.0.0.1:1002']), { abort: true });
    assert.equal(t.health.outlier.ejectedCount('default/chat|static:default/chat/0/0'), 0);
  });

  it('failures open the circuit: 503 circuit_open at once with Retry-After, then one probe, then closed', async () => {
    const t = setup({ circuitBreaker: { consecutiveFailures: 4, openSeconds: 5 }, outlierDetection: { maxEjectionPercent: 0 } });
    const all = new Set(['127.0.0.1:1001', '127.0.0.1:1002']);
    await t.handshake(all);
    await t.handshake(all);
    const r = await t.handshake();
    assert.equal(r.err?.reason, 'circuit_open');
    assert.equal(r.err?.httpStatus, 503);
    assert.equal(r.err?.headers['Retry-After'], '5');
    assert.match(await t.metrics.registry.metrics(), /wsgate_circuit_breaker_state\{namespace="default",route="chat",backend="static:default\/chat\/0\/0"\} 1/);
    t.clock.advance(5_000);
    assert.match(await t.metrics.registry.metrics(), /wsgate_circuit_breaker_state\{[^}]*\} 2/);
    const probe = await t.handshake(new Set(), { hold: true });
    assert.equal(probe.picks?.length, 1);
    assert.equal((await t.handshake()).err?.reason, 'circuit_open', 'only one probe while half-open');
    probe.finish!(true);
    assert.equal((await t.handshake()).err, undefined);
    assert.doesNotMatch(await t.metrics.registry.metrics(), /wsgate_circuit_breaker_state\{/);
  });

  it('capacity: maxConnections counts the backend’s open connections; maxPendingHandshakes those in flight', async () => {
    const t = setup({ circuitBreaker: { maxConnections: 3, maxPendingHandshakes: 1 } });
    t.open.set('static|127.0.0.1:1001', 2);
    const held = await t.handshake(new Set(), { hold: true });
    assert.equal((await t.handshake()).err?.reason, 'circuit_open', 'one handshake pending');
    held.finish!(true);
    t.open.set('static|127.0.0.1:1002', 1);
    assert.equal((await t.handshake()).err?.reason, 'circuit_open', '3 open connections');
    t.open.set('static|127.0.0.1:1002', 0);
    assert.equal((await t.handshake()).err, undefined);
  });

  it('an endpoint failing its active check is vetoed; readiness stays the base', async () => {
    const t = setup({ healthCheck: { type: 'TCP', intervalSeconds: 5 } });
    const failing = new Set(['127.0.0.1:1002']);
    // Replace the probe with one that fails 1002 (Health wires the prober at construction: use the checker directly).
    assert.equal(t.health.active.size, 2);
    t.health.stop();
    const clock = new ManualClock();
    const { holder } = holderWith([route('chat', { rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:1001', '127.0.0.1:1002'] }] }], healthCheck: { type: 'TCP' } })]);
    const h = new Health({ holder, log, clock, prober: async (tg) => (await null, { ok: !failing.has(tg.authority), detail: '' }) });
    h.start();
    await new Promise((r) => setImmediate(r));
    const r = holder.current()!.routes.get('default/chat')!;
    const usable = (addr: string) => h.usable(r, r.rules[0].backends[0], r.rules[0].backends[0].endpoints.find((e) => e.address === addr)!);
    assert.equal(usable('127.0.0.1:1001'), true);
    assert.equal(usable('127.0.0.1:1002'), false);
    h.stop();
    assert.equal(clock.pending, 0);
  });
});
