// Fake API server: stands in for the EndpointSlice controller and the kubelet, so each rollout step can be taken on a manual clock; the real sequence is e2e/serial/rolling-update.test.ts.
// A rollout through the Kubernetes fake, step by step as the control plane and the kubelet take it, with each
// backend a real process and the drain scheduler on a manual clock. A deleted Pod's endpoint turns
// ready=false, serving=true, terminating=true at once; serving then follows its readiness probe; the endpoint
// leaves the slice only when the Pod object is removed, after its containers stopped
// (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions). On deletion the kubelet
// runs the preStop hook, then sends SIGTERM, and SIGKILL at the end of terminationGracePeriodSeconds
// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination). The test plays the
// EndpointSlice controller (slice updates) and the kubelet (signals), and lets a process exit only when it says.
//
// What it shows: a readiness flap closes nothing; a deleted pod's clients get 1012 paced over the route's drain
// window starting at the deletion, all before the process exits when a preStop sleep covers the window; a pod
// that fails readiness while terminating has its remaining clients closed at once with 1012; without preStop
// the process dies with the drain under way and the clients it had not reached yet see 1014.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/config.ts';
import { startControlPlane, type ControlPlane } from '../../src/control-plane.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { ConnectionRegistry } from '../../src/proxy/connections.ts';
import { ProxyServer } from '../../src/proxy/proxy-server.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { systemClock } from '../../src/util/clock.ts';
import { FakeApiServer, waitUntil, type KObject } from '../support/fake-apiserver/index.ts';
import { connectGreeted, metricValue, silentLog } from '../support/harness.ts';
import { activeConditions, podSlice, type EndpointConditions } from '../support/k8s-objects.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { advanceByTenths, evenlyPaced, manualDrain } from '../support/manual-drain.ts';

const windowSeconds = 30;

interface Pod {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Event order of the process's exit (see `seq`), once it exited. */
  exitedAt?: number;
  readonly exited: Promise<unknown>;
}

interface Client {
  readonly ws: WebSocket;
  readonly backend: string;
  /** Close code and event order (see `seq`). */
  close?: { code: number; at: number };
}

/** Orders client closes against process exits without reading a clock. */
let seq = 0;
let fake: FakeApiServer;
let control: ControlPlane;
let proxy: ProxyServer;
const connections = new ConnectionRegistry();
let dir: string;
const holder = new SnapshotHolder();
const metrics = new Metrics({ defaultMetrics: false });
const clock = new ManualClock();
const pods = new Map<string, Pod>();
const live: Client[] = [];
const reconnects: Promise<void>[] = [];

/** A pod's container; onTerm says what it does on SIGTERM (see pod-process.ts). */
async function startPod(name: string, onTerm: 'exit' | 'serve'): Promise<Pod> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../support/pod-process.ts', import.meta.url).pathname, `chat-${name}`, onTerm], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const pod: Pod = { name: `chat-${name}`, port: Number(String(line).trim()), child, exited: once(child, 'exit') };
  void pod.exited.then(() => (pod.exitedAt = ++seq));
  return pod;
}

const pod = (name: string): Pod => pods.get(name)!;
const slice = (p: Pod, conditions: EndpointConditions) => podSlice('chat', { name: p.name.slice('chat-'.length), port: p.port }, conditions) as KObject;
const url = () => `ws://127.0.0.1:${(proxy.server.address() as AddressInfo).port}/chat`;

async function connect(): Promise<Client> {
  const c: Client = await connectGreeted(url());
  c.ws.once('close', (code: number) => {
    c.close = { code, at: ++seq };
    const i = live.indexOf(c);
    if (i >= 0) live.splice(i, 1);
    // 1012 says "restarting: come back"; a real client would wait a random moment first.
    if (code === 1012) reconnects.push(connect().then((r) => void live.push(r)));
  });
  return c;
}

async function connectMany(n: number): Promise<Client[]> {
  const out: Client[] = [];
  while (out.length < n) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - out.length) }, connect))));
  return out;
}

function endpointStates(): string[] {
  const r = holder.current()?.routes.get('default/chat');
  return (r?.rules ?? []).flatMap((rule) => rule.backends.flatMap((b) => b.endpoints.map((e) => `${e.podName} ${e.state}`))).sort();
}

const publishedAs = (p: Pod, state: string) => waitUntil(() => endpointStates().includes(`${p.name} ${state}`), `${p.name} published ${state}`, 10_000);

/** The EndpointSlice controller: the Pod object is removed, so its endpoint leaves the slice. */
async function removeEndpoint(p: Pod): Promise<void> {
  fake.update({ ...slice(p, activeConditions), endpoints: [] });
  await waitUntil(() => !endpointStates().some((s) => s.startsWith(`${p.name} `)), `${p.name} left the table`, 10_000);
}

/** The kubelet sends SIGTERM; resolves once the process has it. */
async function sigterm(p: Pod): Promise<void> {
  const got = new Promise<void>((resolve) => p.child.stdout!.on('data', (d: Buffer) => String(d).includes('SIGTERM') && resolve()));
  p.child.kill('SIGTERM');
  await got;
}

/** Opens 30 clients while `p` cannot take them: none lands there. They leave again at once. */
async function newcomersAvoid(p: Pod, why: string): Promise<void> {
  const before = live.length;
  const newcomers = await connectMany(30);
  for (const n of newcomers) assert.notEqual(n.backend, p.name, why);
  for (const n of newcomers) n.ws.terminate();
  await connections.whenAtMost(before);
}

const on = (p: Pod) => live.filter((c) => c.backend === p.name);
const alive = (p: Pod) => p.child.exitCode === null && p.child.signalCode === null;
const byCode = (cs: readonly Client[]) => {
  const m = new Map<number, number>();
  for (const c of cs) m.set(c.close!.code, (m.get(c.close!.code) ?? 0) + 1);
  return [...m].sort((x, y) => x[0] - y[0]);
};

before(async () => {
  fake = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
  dir = mkdtempSync(join(tmpdir(), 'wsgate-rollout-'));
  writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
  const started = await Promise.all([startPod('a', 'serve'), startPod('b', 'exit'), startPod('c', 'serve'), startPod('d', 'exit')]);
  for (const p of started) pods.set(p.name.slice('chat-'.length), p);
  fake.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'chat', namespace: 'default' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws' }] } });
  for (const p of started) fake.create(slice(p, activeConditions));
  fake.create({
    apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'chat', namespace: 'default' },
    spec: { drain: { windowSeconds }, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'chat', port: 80 }] }] },
  });
  const config = loadConfig([
    '--kubernetes', '--kubeconfig', join(dir, 'kubeconfig'), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--pod-name', 'rollout', '--build-holdoff-ms', '10', '--build-max-holdoff-ms', '200',
  ], {});
  // The control plane on real time (its hold-off coalesces slice updates, its lease renews, as in production);
  // the proxy's drain alone runs on the manual clock.
  control = await startControlPlane(config, silentLog, metrics, holder, systemClock());
  proxy = new ProxyServer({
    holder, log: silentLog, metrics, balancer: new BalancerState(), connections, handshakeTimeoutMs: 5000, maxHeaderBytes: 16384, maxHandshakesInFlight: 10000, closeTimeoutMs: 2000,
    ...manualDrain(clock),
  });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  await waitUntil(() => endpointStates().length === 4, 'four Active endpoints published', 10_000);
  live.push(...(await connectMany(160)));
  for (const p of started) assert.ok(on(p).length >= 30, `${p.name} got ${on(p).length} of 160 (least connections)`);
});

after(async () => {
  for (const c of live) c.ws.terminate();
  await proxy?.close();
  await control?.stop();
  for (const p of pods.values()) if (alive(p)) p.child.kill('SIGKILL');
  await Promise.all([...pods.values()].map((p) => p.exited));
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a readiness flap (not ready, not terminating) takes no new connections and closes none', async () => {
  const a = pod('a');
  const mine = on(a);
  fake.update(slice(a, { ready: false, serving: false, terminating: false }));
  await publishedAs(a, 'NotReady');
  assert.equal(await metricValue(metrics, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'NotReady' }), 1);
  await newcomersAvoid(a, 'a NotReady endpoint takes no new connection');
  clock.advance(windowSeconds * 1000 * 3);
  assert.deepEqual(mine.filter((c) => c.close !== undefined), [], 'a flap closes nothing, however long it lasts');
  assert.equal(await metricValue(metrics, 'wsgate_connections_draining', { route: 'chat' }), 0);
  await Promise.all(mine.slice(0, 10).map(async (c, i) => {
    const reply = new Promise<string>((resolve) => c.ws.once('message', (d: Buffer) => resolve(d.toString())));
    c.ws.send(`ping ${i}`);
    assert.equal(await reply, `ping ${i}`);
  }));
  fake.update(slice(a, activeConditions));
  await publishedAs(a, 'Active');
});

test('deleted with a preStop sleep as long as the window: every client gets 1012, paced, before the process exits', async () => {
  const b = pod('b');
  const doomed = on(b);
  const untouched = live.filter((c) => c.backend !== b.name);
  // kubectl delete pod: the endpoint turns terminating (still serving); the kubelet starts the preStop sleep.
  fake.update(slice(b, { ready: false, serving: true, terminating: true }));
  await publishedAs(b, 'Draining');
  assert.equal(await metricValue(metrics, 'wsgate_connections_draining', { route: 'chat' }), doomed.length, 'the drain starts at the deletion');
  await newcomersAvoid(b, 'a terminating endpoint takes no new connection while others are Active');
  // The preStop sleep: the drain runs its whole window while the process serves on.
  const per = await advanceByTenths({ clock, windowSeconds, tenths: 10, metrics, route: 'chat', closed: () => doomed.filter((c) => c.close).length });
  assert.ok(evenlyPaced(per, doomed.length), `closes per tenth of the window for ${doomed.length} clients: ${per.join(' ')}`);
  assert.deepEqual(byCode(doomed), [[1012, doomed.length]], 'every client of the deleted pod got 1012');
  assert.ok(alive(b), 'all of it while the backend process still runs');
  // preStop done: SIGTERM, the process exits, then the Pod object and its endpoint go.
  await sigterm(b);
  await b.exited;
  await removeEndpoint(b);
  assert.ok(doomed.every((c) => c.close!.at < b.exitedAt!), 'every close came before the process exited');
  await Promise.all(reconnects);
  assert.equal(on(b).length, 0, 'reconnects land on the other pods');
  assert.deepEqual(untouched.filter((c) => c.close !== undefined), [], 'clients of the other pods never noticed');
});

test('fails readiness while terminating: the drain starts at deletion, then the rest close at once with 1012', async () => {
  const c = pod('c');
  const doomed = on(c);
  const untouched = live.filter((x) => x.backend !== c.name);
  fake.update(slice(c, { ready: false, serving: true, terminating: true }));
  await publishedAs(c, 'Draining');
  const per = await advanceByTenths({ clock, windowSeconds, tenths: 4, metrics, route: 'chat', closed: () => doomed.filter((x) => x.close).length });
  assert.ok(evenlyPaced(per, doomed.length), `closes per tenth of the window for ${doomed.length} clients: ${per.join(' ')}`);
  // No preStop: SIGTERM now. This backend keeps serving but fails its readiness probe: serving=false.
  await sigterm(c);
  fake.update(slice(c, { ready: false, serving: false, terminating: true }));
  await waitUntil(() => doomed.every((x) => x.close !== undefined), 'the rest closed at once, the clock standing still', 10_000);
  assert.deepEqual(byCode(doomed), [[1012, doomed.length]]);
  assert.ok(alive(c), 'before the process exits');
  // The end of the grace period: SIGKILL; then the endpoint goes.
  c.child.kill('SIGKILL');
  await c.exited;
  await removeEndpoint(c);
  assert.ok(doomed.every((x) => x.close!.at < c.exitedAt!));
  await Promise.all(reconnects);
  assert.deepEqual(untouched.filter((x) => x.close !== undefined), []);
});

test('exits on SIGTERM without preStop: the clients the drain has not reached yet see the process die (1014)', async () => {
  const d = pod('d');
  const doomed = on(d);
  const untouched = live.filter((x) => x.backend !== d.name);
  fake.update(slice(d, { ready: false, serving: true, terminating: true }));
  await publishedAs(d, 'Draining');
  const per = await advanceByTenths({ clock, windowSeconds, tenths: 2, metrics, route: 'chat', closed: () => doomed.filter((x) => x.close).length });
  const paced = per.reduce((x, y) => x + y, 0);
  await sigterm(d);
  await d.exited;
  await waitUntil(() => doomed.every((x) => x.close !== undefined), 'every client of the dead process closed', 10_000);
  assert.deepEqual(byCode(doomed), [[1012, paced], [1014, doomed.length - paced]], 'paced 1012 until the process died, 1014 for the rest');
  await removeEndpoint(d);
  await Promise.all(reconnects);
  assert.deepEqual(untouched.filter((x) => x.close !== undefined), []);
  assert.ok(live.length > 0 && live.every((x) => x.backend === pod('a').name), 'everyone reconnected ends on the pod left');
});
