// A rollout seen through the Kubernetes fake (issue 4): 300 real clients over 3 backends of one Service; one
// backend's endpoint turns Draining (terminating, still serving), then Gone (its slice removed). Draining takes
// no new connections and keeps its own; on Gone its clients get 1012 spread over drain.windowSeconds, nobody
// sees 1006, reconnects land on the other backends, and the other backends' clients are left alone.
import { activeConditions, podSlice, type EndpointConditions } from '../support/k8s-objects.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/config.ts';
import { serve, type Running } from '../../src/main.ts';
import { FakeApiServer, waitUntil, type KObject } from '../support/fake-apiserver/index.ts';
import { connectGreeted, metricValue, silentLog, startNamedBackend, type NamedBackend } from '../support/harness.ts';

const windowSeconds = 2;
const clientsPerRound = 300;

const startBackend = (name: string) => startNamedBackend(name);
type Backend = NamedBackend;

interface Client {
  readonly ws: WebSocket;
  readonly backend: string;
  /** Set when the client sees its close: code and ms since the Gone snapshot was published. */
  close?: { code: number; at: number };
}

let fake: FakeApiServer;
let gate: Running;
let dir: string;
const backends: Backend[] = [];
const clients: Client[] = [];
let goneAt = 0;

const slice = (b: Backend, conditions: EndpointConditions) => podSlice('chat', b, conditions) as KObject;
const active = activeConditions;

async function connectClient(): Promise<Client> {
  const c: Client = await connectGreeted(`ws://127.0.0.1:${gate.proxyAddress.port}/chat`);
  c.ws.once('close', (code: number) => (c.close = { code, at: performance.now() - goneAt }));
  return c;
}

/** n clients, a few dozen handshakes at a time (a loaded machine still connects them all). */
async function connectMany(n: number): Promise<Client[]> {
  const out: Client[] = [];
  while (out.length < n) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - out.length) }, connectClient))));
  return out;
}

const count = (cs: readonly Client[], backend: string): number => cs.filter((c) => c.backend === backend).length;

function endpointStates(): string[] {
  const r = gate.holder.current()?.routes.get('default/chat');
  return (r?.rules ?? []).flatMap((rule) => rule.backends.flatMap((b) => b.endpoints.map((e) => `${e.port} ${e.state}`))).sort();
}

before(async () => {
  fake = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
  dir = mkdtempSync(join(tmpdir(), 'wsgate-rollout-'));
  writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
  for (const n of ['a', 'b', 'c']) backends.push(await startBackend(n));
  fake.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'chat', namespace: 'default' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws' }] } });
  for (const b of backends) fake.create(slice(b, active));
  fake.create({
    apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'chat', namespace: 'default' },
    spec: { drain: { windowSeconds }, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'chat', port: 80 }] }] },
  });
  gate = await serve(loadConfig([
    '--kubernetes', '--kubeconfig', join(dir, 'kubeconfig'), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--pod-name', 'rollout', '--build-holdoff-ms', '10', '--build-max-holdoff-ms', '200', '--shutdown-delay-seconds', '0', '--drain-seconds', '1',
  ], {}), silentLog);
  await waitUntil(() => endpointStates().length === 3, 'three Active endpoints published', 10_000);
});

after(async () => {
  for (const c of clients) c.ws.terminate();
  await gate?.close();
  for (const b of backends) {
    for (const ws of b.wss.clients) ws.terminate();
    await new Promise((r) => b.wss.close(r));
  }
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('rollout through EndpointSlices: Draining keeps its clients and takes no new ones; Gone closes them with paced 1012', async (t) => {
  clients.push(...(await connectMany(clientsPerRound)));
  for (const b of backends) assert.ok(count(clients, b.name) >= 50, `backend ${b.name} got ${count(clients, b.name)} of 300 (least connections)`);
  const [x] = backends.filter((b) => b.name === 'b');
  const onX = clients.filter((c) => c.backend === x!.name);
  const others = clients.filter((c) => c.backend !== x!.name);

  // Draining: terminating but serving.
  fake.update(slice(x!, { ready: false, serving: true, terminating: true }));
  await waitUntil(() => endpointStates().includes(`${x!.port} Draining`), 'Draining published');
  assert.equal(await metricValue(gate.metrics, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Draining' }), 1);
  const during = await connectMany(30);
  clients.push(...during);
  assert.equal(count(during, x!.name), 0, 'a Draining endpoint takes no new connection while others are Active');
  assert.ok(onX.every((c) => c.ws.readyState === WebSocket.OPEN && c.close === undefined), 'Draining keeps its connections');
  const probe = onX[0]!;
  const echoed = new Promise<string>((resolve) => probe.ws.once('message', (d: Buffer) => resolve(d.toString())));
  probe.ws.send('still relayed while draining');
  assert.equal(await echoed, 'still relayed while draining');

  // Gone: the slice is removed. Clock starts when the snapshot without the endpoint is published.
  // Reconnects start at once (a real client would wait a random moment); failures are kept, not thrown.
  const reconnects: Promise<Client | Error>[] = [];
  for (const c of onX) c.ws.once('close', (code: number) => code === 1012 && reconnects.push(connectClient().catch((err: Error) => err)));
  // A process starved of CPU for longer than a tenth of the window cannot pace anything: measured, so that the
  // per-tenth check below is only made when the timers could run.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const unsubscribe = gate.holder.onSwap((next) => {
    if (goneAt === 0 && ![...next.endpoints.values()].some((e) => e.port === x!.port)) goneAt = performance.now();
  });
  fake.delete('discovery.k8s.io/v1', 'EndpointSlice', 'default', `chat-${x!.name}`);
  await waitUntil(() => onX.every((c) => c.close !== undefined), `all ${onX.length} clients of the Gone backend closed`, (windowSeconds + 8) * 1000);
  unsubscribe();
  lag.disable();
  const stallMs = lag.max / 1e6;

  const codes = new Map<number, number>();
  for (const c of onX) codes.set(c.close!.code, (codes.get(c.close!.code) ?? 0) + 1);
  assert.deepEqual([...codes], [[1012, onX.length]], 'every client of the Gone backend got 1012 (none 1006)');

  // Spread over the window: no tenth of it holds more than a small share (uniform would be 10%).
  const times = onX.map((c) => c.close!.at).sort((p, q) => p - q);
  const tenth = (windowSeconds * 1000) / 10;
  const buckets = new Array<number>(10).fill(0);
  for (const t of times) buckets[Math.min(9, Math.max(0, Math.floor(t / tenth)))]!++;
  const worst = Math.max(...buckets) / times.length;
  if (stallMs < tenth) assert.ok(worst <= 0.3, `closes per tenth of the window: ${buckets.join(' ')}`);
  else t.diagnostic(`event loop stalled ${Math.round(stallMs)} ms (more than a tenth of the window): per-tenth check skipped`);
  assert.ok(times[times.length - 1]! - times[0]! >= windowSeconds * 1000 * 0.5, `closes spread over ${Math.round(times[times.length - 1]! - times[0]!)} ms`);
  assert.ok(times[times.length - 1]! < windowSeconds * 1000 + 2000, `last close at ${Math.round(times[times.length - 1]!)} ms`);
  assert.equal(await metricValue(gate.metrics, 'wsgate_drain_closes_total', { namespace: 'default', route: 'chat' }), onX.length);

  // Reconnects land on the remaining backends.
  await waitUntil(() => reconnects.length === onX.length, 'every drained client reconnected');
  const results = await Promise.all(reconnects);
  const again = results.filter((r): r is Client => !(r instanceof Error));
  clients.push(...again);
  assert.deepEqual(results.filter((r) => r instanceof Error).map((e) => e.message), [], 'every reconnect succeeded');
  assert.equal(count(again, x!.name), 0);
  assert.ok(count(again, 'a') > 0 && count(again, 'c') > 0, 'reconnects spread over both remaining backends');

  // Clients of the untouched backends never noticed.
  assert.ok(others.every((c) => c.close === undefined && c.ws.readyState === WebSocket.OPEN), 'untouched backends keep their connections');
  const sample = others.filter((_, i) => i % 20 === 0);
  await Promise.all(sample.map(async (c, i) => {
    const reply = new Promise<string>((resolve) => c.ws.once('message', (d: Buffer) => resolve(d.toString())));
    c.ws.send(`ping ${i}`);
    assert.equal(await reply, `ping ${i}`);
  }));
  t.diagnostic(`${onX.length} drained over ${Math.round(times[times.length - 1]! - times[0]!)} ms; per tenth: ${buckets.join(' ')}; max event loop delay ${Math.round(stallMs)} ms`);
});
