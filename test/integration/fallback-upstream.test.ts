// HTTP fallback (long-polling) requests reach their upstream the way upgrades do, through the composition the
// CLI runs (serve): endpoints that passive health ejected are skipped, an open circuit answers 503 at once and
// fallback failures count toward it, affinity moves a session off a dead pod with a fresh cookie, and
// upstream.protocol wss means https with the route's CA bundle, server name and insecureSkipVerify. The
// half-open probe runs on a fake clock through the same hooks.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as yaml from 'js-yaml';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { loadConfig } from '../../src/config/config.ts';
import { Health } from '../../src/health/health.ts';
import { serve, type Running } from '../../src/main.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { affinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { selfSigned } from '../support/certs.ts';
import { rawExchange, silentLog, startGate, staticRoute, upgradeRequest, type Gate } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';

interface Pod {
  readonly name: string;
  readonly address: string;
  readonly server: http.Server;
  /** SNI names the pod saw (https pods). */
  readonly servernames: (string | false | null)[];
  stop(): Promise<void>;
}

async function listen(server: net.Server, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A pod answering every request with its name (over https with a certificate when given). */
async function startPod(name: string, cert?: { cert: string; key: string }, port = 0): Promise<Pod> {
  const servernames: (string | false | null)[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (cert) servernames.push((req.socket as TLSSocket).servername);
    req.resume();
    req.on('end', () => res.end(`from ${name}`));
  };
  const server = cert ? https.createServer({ cert: cert.cert, key: cert.key }, handler) : http.createServer(handler);
  const p = await listen(server, port);
  const stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { name, address: `127.0.0.1:${p}`, server, servernames, stop };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

const agent = new http.Agent({ keepAlive: false });

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
  });
}

function doc(name: string, path: string, endpoints: readonly string[], spec: Record<string, unknown> = {}): string {
  return yaml.dump({
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { name, namespace: 'default' },
    spec: { rules: [{ matches: [{ path: { value: path } }], backendRefs: [{ endpoints }] }], httpFallback: { enabled: true }, ...spec },
  });
}

describe('through serve (the CLI composition)', () => {
  let dir: string;
  let gate: Running;
  let pods: Pod[] = [];
  let dead: string;
  const upstreamCert = selfSigned(['backend.internal']);
  const otherCa = selfSigned(['backend.internal']);
  let tlsPod: Pod;
  let ejectLive: Pod;
  let upgradeLive: Pod;
  let stickyA: Pod;
  let stickyB: Pod;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wsgate-fallback-'));
    writeFileSync(join(dir, 'ca.crt'), upstreamCert.cert);
    writeFileSync(join(dir, 'other.crt'), otherCa.cert);
    dead = `127.0.0.1:${await deadPort()}`;
    tlsPod = await startPod('tls', upstreamCert);
    ejectLive = await startPod('eject-live');
    upgradeLive = await startPod('upgrade-live');
    stickyA = await startPod('a');
    stickyB = await startPod('b');
    pods = [tlsPod, ejectLive, upgradeLive, stickyA, stickyB];
    const oneShot = { outlierDetection: { consecutiveFailures: 1, baseEjectionSeconds: 3600, maxEjectionPercent: 100 } };
    const file = join(dir, 'routes.yaml');
    writeFileSync(
      file,
      [
        doc('tls-ca', '/tls-ca', [tlsPod.address], { upstream: { protocol: 'wss', tls: { caFile: join(dir, 'ca.crt'), serverName: 'backend.internal' } } }),
        doc('tls-wrong-ca', '/tls-wrong', [tlsPod.address], { upstream: { protocol: 'wss', tls: { caFile: join(dir, 'other.crt'), serverName: 'backend.internal' } } }),
        doc('tls-insecure', '/tls-insecure', [tlsPod.address], { upstream: { protocol: 'wss', tls: { insecureSkipVerify: true } } }),
        // The dead endpoint first: round robin starts with it.
        doc('eject', '/eject', [dead, ejectLive.address], { ...oneShot, loadBalancer: { policy: 'RoundRobin' } }),
        doc('eject-by-upgrade', '/by-upgrade', [dead, upgradeLive.address], { ...oneShot, loadBalancer: { policy: 'RoundRobin' }, upstream: { maxConnectAttempts: 1 } }),
        doc('fragile', '/fragile', [dead], { circuitBreaker: { consecutiveFailures: 2, openSeconds: 3600 }, upstream: { maxConnectAttempts: 1 } }),
        doc('sticky', '/sticky', [stickyA.address, stickyB.address], { ...oneShot, sessionAffinity: { type: 'Cookie', cookie: { name: 'aff' } } }),
      ].join('---\n'),
    );
    gate = await serve(loadConfig(['--config', file, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--affinity-secret', 'test'], {}), silentLog);
  });

  after(async () => {
    await gate.close();
    await Promise.all(pods.map((p) => p.stop()));
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('wss upstream: https with the route CA and serverName; a wrong CA is refused; insecureSkipVerify accepts', async () => {
    const ok = await get(gate.proxyAddress.port, '/tls-ca/poll');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'from tls');
    assert.equal(tlsPod.servernames.at(-1), 'backend.internal', 'SNI carries upstream.tls.serverName');
    const wrong = await get(gate.proxyAddress.port, '/tls-wrong/poll');
    assert.equal(wrong.status, 502);
    assert.equal(wrong.headers['wsgate-reason'], 'upstream_refused');
    const insecure = await get(gate.proxyAddress.port, '/tls-insecure/poll');
    assert.equal(insecure.status, 200);
    assert.equal(insecure.body, 'from tls');
    // No SNI for an IP address (RFC 6066), as on the upgrade path.
    assert.equal(tlsPod.servernames.at(-1), false);
  });

  it('a fallback failure ejects the endpoint; the request and every later one go to the live one', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await get(gate.proxyAddress.port, `/eject/poll?i=${i}`);
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.body, 'from eject-live');
    }
  });

  it('an endpoint the upgrades ejected gets no fallback requests', async () => {
    // Round robin: within two upgrades one goes to the dead endpoint (502) and ejects it.
    const statuses: number[] = [];
    for (let i = 0; i < 2 && !statuses.includes(502); i++) statuses.push((await rawExchange(gate.proxyAddress.port, upgradeRequest('/by-upgrade'))).status);
    assert.ok(statuses.includes(502), `statuses ${statuses.join(',')}`);
    for (let i = 0; i < 6; i++) {
      const r = await get(gate.proxyAddress.port, `/by-upgrade/poll?i=${i}`);
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.body, 'from upgrade-live');
    }
  });

  it('fallback failures open the circuit; then fallback and upgrades get 503 circuit_open at once', async () => {
    assert.equal((await get(gate.proxyAddress.port, '/fragile/poll')).status, 502);
    assert.equal((await get(gate.proxyAddress.port, '/fragile/poll')).status, 502);
    const open = await get(gate.proxyAddress.port, '/fragile/poll');
    assert.equal(open.status, 503);
    assert.equal(open.headers['wsgate-reason'], 'circuit_open');
    assert.equal(open.headers['retry-after'], '3600');
    const upgrade = await rawExchange(gate.proxyAddress.port, upgradeRequest('/fragile'));
    assert.equal(upgrade.status, 503);
    assert.equal(upgrade.headers['wsgate-reason'], 'circuit_open');
  });

  it('affinity: pinned by the cookie; when its pod dies the session moves with a fresh cookie and stays', async () => {
    const first = await get(gate.proxyAddress.port, '/sticky/poll');
    assert.equal(first.status, 200);
    const cookie = (first.headers['set-cookie']?.[0] ?? '').split(';')[0];
    assert.match(cookie, /^aff=/);
    const pinned = first.body;
    for (let i = 0; i < 3; i++) assert.equal((await get(gate.proxyAddress.port, '/sticky/poll', { cookie })).body, pinned);
    const [gone, other] = pinned === 'from a' ? [stickyA, stickyB] : [stickyB, stickyA];
    await gone.stop();
    const moved = await get(gate.proxyAddress.port, '/sticky/poll', { cookie });
    assert.equal(moved.status, 200);
    assert.equal(moved.body, `from ${other.name}`);
    const fresh = (moved.headers['set-cookie']?.[0] ?? '').split(';')[0];
    assert.match(fresh, /^aff=/);
    assert.notEqual(fresh, cookie);
    for (let i = 0; i < 3; i++) {
      const r = await get(gate.proxyAddress.port, '/sticky/poll', { cookie: fresh });
      assert.equal(r.body, `from ${other.name}`);
      assert.equal((r.headers['set-cookie']?.[0] ?? '').split(';')[0], fresh, 'renewed (sliding expiry), same pod');
    }
  });
});

describe('half-open on a fake clock', () => {
  it('after openSeconds one fallback request is the probe; its success closes the circuit', async () => {
    const clock = new ManualClock();
    const port = await deadPort();
    const ref: { health?: Health } = {};
    const security = createSecurity({ trustedProxies: [], log: silentLog });
    const health = () => ref.health!;
    const balancer = new BalancerState();
    const affinity = affinityHooks({
      secret: 's',
      className: 'wsgate',
      log: silentLog,
      balancer, clock: clock,
      fallback: {
        admission: [...security.fallbackAdmission, (ctx) => health().admission(ctx)],
        upstreamAttempt: (ctx, pick) => health().hooks().upstreamAttempt(ctx, pick),
        upstreamResult: (e, ok, info) => health().hooks().upstreamResult(e, ok, info),
      },
    });
    const gate: Gate = await startGate(
      [staticRoute('fragile', [`127.0.0.1:${port}`], { httpFallback: { enabled: true }, circuitBreaker: { consecutiveFailures: 1, openSeconds: 5 }, upstream: { maxConnectAttempts: 1 } })],
      { balancer, hooks: { httpFallback: affinity.httpFallback } },
    );
    ref.health = new Health({ holder: gate.holder, log: silentLog, clock, prober: async () => ({ ok: true, detail: '' }) });
    ref.health.start();
    const group = 'default/fragile|static:default/fragile/0/0';
    let back: Pod | undefined;
    try {
      assert.equal((await get(gate.port, '/')).status, 502);
      assert.equal(ref.health.breakers.state(group), 'open');
      assert.equal((await get(gate.port, '/')).headers['wsgate-reason'], 'circuit_open');
      back = await startPod('back', undefined, port);
      clock.advance(5_000);
      assert.equal(ref.health.breakers.state(group), 'half-open');
      const probe = await get(gate.port, '/');
      assert.equal(probe.status, 200);
      assert.equal(probe.body, 'from back');
      assert.equal(ref.health.breakers.state(group), 'closed');
    } finally {
      ref.health.stop();
      affinity.close();
      await gate.close();
      await back?.stop();
    }
  });
});
