// Active probes against real servers (HTTP, TCP, WebSocket), and health end to end through the proxy: an
// endpoint failing its check gets no new connections; a backend whose circuit is open answers 503 at once,
// and recovers through one half-open probe — breaker and ejection time from a fake clock, not sleeps.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { systemClock } from '../../src/util/clock.ts';
import { Health } from '../../src/health/health.ts';
import { createProber } from '../../src/health/probes.ts';
import type { ProxyHooks } from '../../src/proxy/hooks.ts';
import { closed, connect, type Echo, type Gate, nextMessage, rawExchange, startEcho, startGate, staticRoute, upgradeRequest } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';
import { ManualClock } from '../support/manual-clock.ts';

const log = pino({ level: 'silent' });
const prober = createProber(systemClock());
const target = (port: number) => ({ host: '127.0.0.1', port, authority: `127.0.0.1:${port}` });

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

/** Hooks that reach a Health made after the gate (it needs the gate's holder). */
function healthHooks(ref: { health?: Health }): ProxyHooks {
  const get = () => ref.health!;
  return {
    admission: [(ctx) => get().admission(ctx)],
    upstreamAttempt: (ctx, pick) => get().hooks().upstreamAttempt(ctx, pick),
    upstreamResult: (e, ok, info) => get().hooks().upstreamResult(e, ok, info),
  };
}

describe('probes against real servers', () => {
  let web: http.Server;
  let webPort: number;
  let echo: Echo;
  let mute: net.Server;
  let mutePort: number;
  const muted: net.Socket[] = [];
  before(async () => {
    web = http.createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? 200 : 503);
      res.end();
    });
    webPort = await listen(web);
    echo = await startEcho();
    mute = net.createServer((s) => muted.push(s.on('error', () => {})));
    mutePort = await listen(mute);
  });
  after(async () => {
    web.close();
    await echo.close();
    for (const s of muted) s.destroy();
    mute.close();
  });

  it('HTTP: 2xx/3xx healthy, anything else or a refused connect not', async () => {
    assert.deepEqual(await prober(target(webPort), { type: 'HTTP', path: '/healthz', timeoutMs: 1000 }), { ok: true, detail: 'HTTP 200' });
    assert.deepEqual(await prober(target(webPort), { type: 'HTTP', path: '/other', timeoutMs: 1000 }), { ok: false, detail: 'HTTP 503' });
    assert.deepEqual(await prober(target(await deadPort()), { type: 'HTTP', path: '/', timeoutMs: 1000 }), { ok: false, detail: 'ECONNREFUSED' });
  });

  it('TCP connect, and a WebSocket handshake that must get a valid 101', async () => {
    assert.equal((await prober(target(webPort), { type: 'TCP', path: '/', timeoutMs: 1000 })).ok, true);
    assert.equal((await prober(target(await deadPort()), { type: 'TCP', path: '/', timeoutMs: 1000 })).ok, false);
    const before = echo.wss.clients.size;
    assert.deepEqual(await prober(target(echo.port), { type: 'WebSocket', path: '/', timeoutMs: 1000 }), { ok: true, detail: '101' });
    assert.deepEqual(await prober(target(webPort), { type: 'WebSocket', path: '/healthz', timeoutMs: 1000 }), { ok: false, detail: 'HTTP 200 instead of 101' });
    // The probe says goodbye with a close frame: the backend does not keep it.
    await waitUntil(() => echo.wss.clients.size === before, 'probe connection closed by the backend');
  });

  it('a server that accepts and never answers fails at the timeout (manual clock)', async () => {
    const clock = new ManualClock();
    let outcome: unknown;
    const r = createProber(clock)(target(mutePort), { type: 'HTTP', path: '/', timeoutMs: 200 }).then((x) => (outcome = x));
    await clock.whenPending();
    clock.advance(199);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcome, undefined, 'not before the timeout');
    clock.advance(1);
    await r;
    assert.deepEqual(outcome, { ok: false, detail: 'timed out after 200 ms' });
  });
});

describe('health through the proxy', () => {
  let good: Echo;
  let sick: Echo;
  let sickHealth: http.Server;
  let goodHealth: http.Server;
  let sickConnections = 0;
  let goodConnections = 0;
  before(async () => {
    goodHealth = http.createServer((_q, s) => (s.writeHead(200), s.end()));
    await listen(goodHealth);
    good = await startEcho();
    // The sick backend still upgrades fine: only its health endpoint (a separate HTTP server here) says no.
    sick = await startEcho();
    sick.wss.on('connection', () => sickConnections++);
    good.wss.on('connection', () => goodConnections++);
    sickHealth = http.createServer((_q, s) => (s.writeHead(500), s.end()));
    await listen(sickHealth);
  });
  after(async () => {
    await good.close();
    await sick.close();
    sickHealth.close();
    goodHealth.close();
  });

  it('an endpoint failing its active check gets no new connections; readiness alone would have sent some', async () => {
    const ref: { health?: Health } = {};
    // Each echo's probe goes to its health server, as a pod's health port would answer.
    const healthPort = new Map([
      [sick.port, (sickHealth.address() as AddressInfo).port],
      [good.port, (goodHealth.address() as AddressInfo).port],
    ]);
    const realProber = createProber(systemClock());
    const gate: Gate = await startGate(
      [staticRoute('checked', [good.address, sick.address], { healthCheck: { type: 'HTTP', path: '/healthz', intervalSeconds: 1, timeoutSeconds: 1 }, loadBalancer: { policy: 'RoundRobin' } })],
      { hooks: healthHooks(ref) },
    );
    const health = (ref.health = new Health({
      holder: gate.holder,
      log,
      prober: (t, spec) => realProber({ ...t, port: healthPort.get(t.port) ?? t.port }, spec),
    }));
    health.start();
    try {
      await waitUntil(() => health.active.state('default/checked', `static|${sick.address}`) === 'unhealthy', 'sick endpoint found');
      for (let i = 0; i < 6; i++) {
        const ws = await connect(gate.url('/'));
        ws.close();
        await closed(ws);
      }
      assert.equal(sickConnections, 0);
      assert.equal(goodConnections, 6);
      assert.equal(health.active.state('default/checked', `static|${good.address}`), 'healthy');
    } finally {
      health.stop();
      await gate.close();
    }
  });

  it('failures open the circuit: 503 circuit_open at once, then one half-open probe closes it (fake clock)', async () => {
    const clock = new ManualClock();
    const ref: { health?: Health } = {};
    const port = await deadPort();
    const gate: Gate = await startGate(
      [staticRoute('fragile', [`127.0.0.1:${port}`], { circuitBreaker: { consecutiveFailures: 2, openSeconds: 5 }, upstream: { maxConnectAttempts: 1 } })],
      { hooks: healthHooks(ref) },
    );
    const health = (ref.health = new Health({ holder: gate.holder, log, clock, prober: async () => ({ ok: true, detail: '' }) }));
    health.start();
    try {
      assert.equal((await rawExchange(gate.port, upgradeRequest('/'))).status, 502);
      assert.equal((await rawExchange(gate.port, upgradeRequest('/'))).status, 502);
      const open = await rawExchange(gate.port, upgradeRequest('/'));
      assert.equal(open.status, 503);
      assert.equal(open.headers['wsgate-reason'], 'circuit_open');
      assert.equal(open.headers['retry-after'], '5');
      // The backend comes back, but the circuit stays open until its time is up.
      const back = await startEcho({ port });
      try {
        clock.advance(4_999);
        assert.equal((await rawExchange(gate.port, upgradeRequest('/'))).headers['wsgate-reason'], 'circuit_open');
        clock.advance(1);
        assert.equal(health.breakers.state('default/fragile|static:default/fragile/0/0'), 'half-open');
        const ws = await connect(gate.url('/'));
        ws.send('probe');
        assert.equal(String((await nextMessage(ws)).data), 'probe');
        assert.equal(health.breakers.state('default/fragile|static:default/fragile/0/0'), 'closed');
        ws.close();
        await closed(ws);
      } finally {
        await back.close();
      }
    } finally {
      health.stop();
      await gate.close();
    }
  });
});
