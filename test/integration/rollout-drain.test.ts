// A rollout seen from real clients on 3 backends, the drain scheduler on a manual clock. A pod that turns
// terminating (Draining) has the paced 1012 drain of its clients start at that moment, evenly over the route's
// drain window, while new connections go elsewhere; when it then stops serving or leaves, the clients it still
// has close at once, with 1012. A readiness flap (NotReady) takes no new connections and closes nothing.
// Clients of the other pods never notice. Once with Kubernetes objects (Service and EndpointSlices through the
// real builder) and once through the standalone file (an address moved to drainingEndpoints is terminating;
// deleted from the file, gone). The conditions follow
// https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions: a deleted pod is
// ready=false, serving=true, terminating=true until it fails readiness (serving=false) or its Pod object is
// removed, which happens only after its containers stopped
// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import type { EndpointSliceLite } from '../../src/dag/input.ts';
import { loadConfig } from '../../src/config/config.ts';
import { startControlPlane } from '../../src/control-plane.ts';
import { ConnectionRegistry } from '../../src/proxy/connections.ts';
import { ProxyServer } from '../../src/proxy/proxy-server.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { systemClock } from '../../src/util/clock.ts';
import { waitUntil } from '../support/fake-apiserver/index.ts';
import { metricValue, type NamedBackend, released, routeObject, silentLog, startGate, startNamedBackend } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { advanceByTenths, drainCloses, evenlyPaced, manualDrain } from '../support/manual-drain.ts';

const startPod = (name: string) => startNamedBackend(name, name);
type Pod = NamedBackend;

interface Client {
  readonly ws: WebSocket;
  readonly pod: string;
  end?: number;
}

async function open(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const [greeting] = (await once(ws, 'message')) as [Buffer];
  const c: Client = { ws, pod: greeting.toString() };
  ws.once('close', (code: number) => (c.end = code));
  return c;
}

async function openMany(url: string, n: number): Promise<Client[]> {
  const out: Client[] = [];
  // Batches keep the least-connections counts current while clients arrive.
  for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => open(url)))));
  return out;
}

const on = (clients: readonly Client[], pod: Pod) => clients.filter((c) => c.pod === pod.name);
const codes = (clients: readonly Client[]) => [...new Set(clients.map((c) => c.end))];

async function echoes(clients: readonly Client[]): Promise<void> {
  await Promise.all(
    clients.map(async (c, i) => {
      c.ws.send(`still here ${i}`);
      const [m] = (await once(c.ws, 'message')) as [Buffer];
      assert.equal(m.toString(), `still here ${i}`);
    }),
  );
}

type Gauges = Parameters<typeof metricValue>[0];
const drainingGauge = (m: Gauges) => metricValue(m, 'wsgate_connections_draining', { route: 'chat' });

/** Opens 30 clients, checks none landed on the pod, and closes them again, until the proxy has let them go. */
async function newcomersAvoid(o: { url: string; clients: readonly Client[]; pod: Pod; connections: ConnectionRegistry }, why: string): Promise<void> {
  const newcomers = await openMany(o.url, 30);
  for (const n of newcomers) assert.notEqual(n.pod, o.pod.name, why);
  for (const n of newcomers) n.ws.terminate();
  await o.connections.whenAtMost(o.clients.length);
}

/** A readiness flap: the pod takes no new connection while NotReady, and keeps every one it has however long. */
async function flapCheck(o: { url: string; clients: readonly Client[]; pod: Pod; clock: ManualClock; metrics: Gauges; connections: ConnectionRegistry }): Promise<void> {
  await newcomersAvoid(o, 'a NotReady endpoint takes no new connections');
  o.clock.advance(windowSeconds * 1000 * 3);
  assert.deepEqual(codes(o.clients), [undefined], 'a readiness flap closes nothing');
  assert.equal(await drainCloses(o.metrics, 'chat'), 0);
  assert.equal(await drainingGauge(o.metrics), 0);
  await echoes(on(o.clients, o.pod).slice(0, 10));
}

/**
 * The victim turns terminating: its clients close with 1012 from that moment, a tenth of them per tenth of the
 * window, and new connections go elsewhere. Six tenths in, it stops serving or leaves (goNow): the rest close
 * at once, with 1012, before the clock moves again. They reconnect to the other pods; the others' clients stay.
 */
async function rolloutCheck(o: {
  url: string;
  clients: readonly Client[];
  victim: Pod;
  clock: ManualClock;
  metrics: Gauges;
  connections: ConnectionRegistry;
  terminate: () => Promise<void>;
  goNow: () => Promise<void>;
}): Promise<{ paced: number[]; atOnce: number }> {
  const doomed = on(o.clients, o.victim);
  const others = o.clients.filter((c) => c.pod !== o.victim.name);
  assert.ok(doomed.length >= 30, `the victim holds ${doomed.length} clients`);
  const reconnected: Client[] = [];
  const reconnecting: Promise<void>[] = [];
  for (const c of doomed) {
    c.ws.once('close', (code: number) => {
      // 1012 says "restarting: come back"; a real client would wait a random moment.
      if (code === 1012) reconnecting.push(open(o.url).then((r) => void reconnected.push(r)));
    });
  }
  const closed = () => doomed.filter((c) => c.end !== undefined).length;

  await o.terminate();
  assert.equal(await drainingGauge(o.metrics), doomed.length, 'every client of the terminating pod is scheduled at once');
  assert.equal(closed(), 0, 'none closed before the clock moved');
  await newcomersAvoid({ ...o, pod: o.victim }, 'a terminating endpoint takes no new connections while others are Active');

  const paced = await advanceByTenths({ clock: o.clock, windowSeconds, tenths: 6, metrics: o.metrics, route: 'chat', closed });
  assert.ok(evenlyPaced(paced, doomed.length), `closes per tenth of the window for ${doomed.length} clients: ${paced.join(' ')}`);
  assert.equal(closed(), paced.reduce((a, b) => a + b, 0));

  await o.goNow();
  await waitUntil(() => closed() === doomed.length, 'the rest closed at once, the clock standing still');
  const atOnce = doomed.length - paced.reduce((a, b) => a + b, 0);
  assert.ok(atOnce > 0);
  assert.deepEqual(codes(doomed), [1012], 'every client of the terminating pod got 1012');
  assert.equal(await drainCloses(o.metrics, 'chat'), doomed.length);

  await waitUntil(() => reconnecting.length === doomed.length, 'every closed client started its reconnect');
  await Promise.all(reconnecting);
  for (const r of reconnected) assert.notEqual(r.pod, o.victim.name, 'reconnects land on the remaining pods');
  // The backend closes its TCP first (the proxy is its WebSocket client), a moment after its clients' closes.
  await released(o.victim.wss);
  assert.deepEqual(codes(others), [undefined], 'clients of the other pods stay');
  await echoes(others.slice(0, 20));
  await waitUntil(async () => (await drainingGauge(o.metrics)) === 0, 'draining gauge back to 0');
  for (const c of reconnected) c.ws.terminate();
  return { paced, atOnce };
}

let pods: Pod[] = [];
const windowSeconds = 30;
const dir = mkdtempSync(join(tmpdir(), 'wsgate-rollout-'));

before(async () => {
  pods = await Promise.all(['pod-a', 'pod-b', 'pod-c'].map(startPod));
});

after(async () => {
  for (const p of pods) {
    for (const c of p.wss.clients) c.terminate();
    p.wss.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

test('Kubernetes objects: a flap keeps its connections; terminating drains paced at once; not serving closes the rest', async () => {
  const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const route = routeObject('chat', { rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }], drain: { windowSeconds } });
  const service = { metadata: { namespace: 'default', name: 'chat' }, spec: { ports: [{ name: 'ws', port: 80 }] } };
  type Conditions = { ready?: boolean; serving?: boolean; terminating?: boolean };
  const slice = (p: Pod, conditions: Conditions): EndpointSliceLite => ({
    metadata: { namespace: 'default', name: `chat-${p.name}`, labels: { 'kubernetes.io/service-name': 'chat' } },
    addressType: 'IPv4',
    ports: [{ name: 'ws', port: p.port }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions, targetRef: { name: p.name } }],
  });
  const [a, b, c] = pods as [Pod, Pod, Pod];
  const ready = { ready: true, serving: true, terminating: false };
  const clock = new ManualClock();
  const gate = await startGate([], { ...manualDrain(clock) });
  const publish = (cb: Conditions, cc: Conditions) =>
    gate.holder.publish(build({ routes: [route], services: [service], endpointSlices: [slice(a, ready), slice(b, cb), slice(c, cc)], secrets: [] }).content);
  try {
    publish(ready, ready);
    const url = gate.url('/');
    const clients = await openMany(url, 150);
    for (const p of pods) assert.ok(on(clients, p).length >= 30, `${p.name}: ${on(clients, p).length}`);

    // A readiness flap on pod-b: not ready, not terminating.
    publish({ ready: false, serving: false, terminating: false }, ready);
    await flapCheck({ url, clients, pod: b, clock, metrics: gate.metrics, connections: gate.connections });
    publish(ready, ready);

    // pod-c deleted: terminating and still serving; then it fails readiness while terminating.
    const r = await rolloutCheck({
      url,
      clients,
      victim: c,
      clock,
      metrics: gate.metrics,
      connections: gate.connections,
      terminate: async () => void publish(ready, { ready: false, serving: true, terminating: true }),
      goNow: async () => void publish(ready, { ready: false, serving: false, terminating: true }),
    });
    process.stdout.write(`# kubernetes objects: per tenth ${r.paced.join(' ')}, then ${r.atOnce} at once\n`);
    for (const cl of clients) cl.ws.terminate();
  } finally {
    await gate.close();
  }
});

/** The standalone source and builder as wsgate runs them, in front of a proxy whose drain uses `clock`. */
async function startStandalone(file: string, clock: ManualClock) {
  const config = loadConfig(['--config', file, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--build-holdoff-ms', '5'], {});
  const holder = new SnapshotHolder();
  const metrics = new Metrics({ defaultMetrics: false });
  // The control plane on real time (its hold-off coalesces file events as in production); the proxy's drain
  // alone runs on the manual clock.
  const control = await startControlPlane(config, silentLog, metrics, holder, systemClock());
  const connections = new ConnectionRegistry();
  const proxy = new ProxyServer({
    holder, log: silentLog, metrics, balancer: new BalancerState(), connections, handshakeTimeoutMs: 5000, maxHeaderBytes: 16384, maxHandshakesInFlight: 10000, closeTimeoutMs: 2000,
    ...manualDrain(clock),
  });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  await waitUntil(() => holder.current() !== undefined, 'the first routing table');
  return {
    holder,
    metrics,
    connections,
    url: `ws://127.0.0.1:${(proxy.server.address() as AddressInfo).port}/`,
    async close() {
      await proxy.close();
      await control.stop();
    },
  };
}

test('standalone file: moved to drainingEndpoints drains paced at once; deleted from the file closes the rest', async () => {
  const file = join(dir, 'routes.yaml');
  const list = (ps: readonly Pod[]) => `[${ps.map((p) => `"127.0.0.1:${p.port}"`).join(', ')}]`;
  const write = (ps: readonly Pod[], draining: readonly Pod[] = []) =>
    writeFileSync(
      file,
      `apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: chat }\nspec:\n  drain: { windowSeconds: ${windowSeconds} }\n  rules:\n    - backendRefs:\n        - endpoints: ${list(ps)}\n          drainingEndpoints: ${list(draining)}\n`,
    );
  write(pods);
  const clock = new ManualClock();
  const gate = await startStandalone(file, clock);
  try {
    const clients = await openMany(gate.url, 150);
    const g = gate.holder.current()!.generation;
    const r = await rolloutCheck({
      url: gate.url,
      clients,
      victim: pods[2]!,
      clock,
      metrics: gate.metrics,
      connections: gate.connections,
      terminate: async () => {
        write(pods.slice(0, 2), [pods[2]!]);
        await gate.holder.waitForGeneration(g + 1);
      },
      goNow: async () => {
        write(pods.slice(0, 2));
        await gate.holder.waitForGeneration(g + 2);
      },
    });
    process.stdout.write(`# standalone file: per tenth ${r.paced.join(' ')}, then ${r.atOnce} at once\n`);
    for (const cl of clients) cl.ws.terminate();
  } finally {
    await gate.close();
  }
});

test('a deleted route drains its connections even when another route still uses the same address', async () => {
  const [a] = pods as [Pod];
  const addr = `127.0.0.1:${a.port}`;
  const mk = (name: string, path: string) =>
    routeObject(name, { rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ endpoints: [addr] }] }], drain: { windowSeconds: 1 } });
  const clock = new ManualClock();
  const gate = await startGate([mk('chat', '/chat'), mk('feed', '/feed')], { ...manualDrain(clock) });
  try {
    const chat = await openMany(gate.url('/chat'), 20);
    const feed = await openMany(gate.url('/feed'), 20);
    gate.publish([mk('feed', '/feed')]);
    clock.advance(1000);
    await waitUntil(() => chat.every((c) => c.end !== undefined), 'the deleted route\'s clients closed');
    assert.deepEqual(codes(chat), [1012]);
    assert.deepEqual(codes(feed), [undefined], 'the other route\'s clients stay');
    for (const c of feed) c.ws.terminate();
  } finally {
    await gate.close();
  }
});
