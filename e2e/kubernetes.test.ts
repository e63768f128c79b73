// Fake API server: stands in for a cluster whose slices may point at 127.0.0.1 (a real one refuses loopback); the real-cluster run is e2e/serial/rolling-update.test.ts.
// The built CLI in Kubernetes mode, started as a user would: its own process with --kubernetes and a
// kubeconfig pointing at the fake API server, which knows WebSocketRoutes only from the chart's CRD
// (crds/wsgate.io_websocketroutes.yaml, POSTed as kubectl would). Real backends, a route applied by
// server-side apply, real clients, endpoints rolled (a new pod added, an old one Draining then Gone), status
// and /metrics read from outside, SIGTERM → paced 1012 to every client and exit 0.
import { activeConditions, podSlice, type EndpointConditions } from '../test/support/k8s-objects.ts';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as yaml from 'js-yaml';
import type { WebSocket } from 'ws';
import { loopbackListen, startCli } from '../test/support/cli-process.ts';
import { connectGreeted, startNamedBackend, type NamedBackend } from '../test/support/harness.ts';
import { FakeApiServer, waitUntil } from '../test/support/fake-apiserver/index.ts';

const root = join(import.meta.dirname, '..');
const crdPath = join(root, 'crds/wsgate.io_websocketroutes.yaml');

const startBackend = (name: string) => startNamedBackend(name);
type Backend = NamedBackend;

interface Client {
  readonly ws: WebSocket;
  readonly backend: string;
  close?: number;
}

let fake: FakeApiServer;
let dir: string;
let child: ChildProcess | undefined;
const backends = new Map<string, Backend>();
const clients: Client[] = [];

/** A request to the fake as any API client makes it (bearer token, JSON or apply-patch YAML). */
async function api(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${fake.url}${path}`, {
    method,
    headers: { authorization: 'Bearer fake-token', ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const slicePath = '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices';
const slice = (b: Backend, conditions: EndpointConditions) => podSlice('chat', b, conditions);
const active = activeConditions;

/** Samples of a metric from the Prometheus text at /metrics, with their labels. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

function metric(text: string, name: string, labels: Record<string, string>): number {
  return samples(text, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
}

async function connectClient(listen: string): Promise<Client> {
  const c: Client = await connectGreeted(`ws://${listen}/chat`);
  c.ws.once('close', (code: number) => (c.close = code));
  return c;
}

before(async () => {
  // The fake knows no WebSocketRoute until the chart's CRD is created, as on a fresh cluster.
  fake = await FakeApiServer.start({ registerWebSocketRoutes: false, bookmarkIntervalMs: 200 });
  dir = mkdtempSync(join(tmpdir(), 'wsgate-e2e-k8s-'));
  writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
  for (const n of ['a', 'b', 'c']) backends.set(n, await startBackend(n));
});

after(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  for (const c of clients) c.ws.terminate();
  for (const b of backends.values()) {
    for (const ws of b.wss.clients) ws.terminate();
    await new Promise((r) => b.wss.close(r));
  }
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('wsgate --kubernetes: CRD, route, status, traffic, rolled endpoints, /metrics, SIGTERM exit 0', async (t) => {
  // The CRD as kubectl sends it (the YAML's only document that is an object).
  const crd = (yaml.loadAll(readFileSync(crdPath, 'utf8')) as unknown[]).find((d) => d !== null && typeof d === 'object');
  assert.equal((await api('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).status, 201);
  assert.equal((await api('POST', '/api/v1/namespaces/default/services', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'chat', namespace: 'default' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws' }] },
  })).status, 201);
  for (const n of ['a', 'b']) assert.equal((await api('POST', slicePath, slice(backends.get(n)!, active))).status, 201);
  // kubectl apply --server-side.
  const routeYaml = [
    'apiVersion: wsgate.io/v1alpha1', 'kind: WebSocketRoute', 'metadata: { name: chat, namespace: default }',
    'spec:', '  drain: { windowSeconds: 1 }', '  rules:', '    - matches: [ { path: { type: PathPrefix, value: /chat } } ]', '      backendRefs: [ { name: chat, port: 80 } ]', '',
  ].join('\n');
  const applied = await api('PATCH', '/apis/wsgate.io/v1alpha1/namespaces/default/websocketroutes/chat?fieldManager=kubectl&force=true', routeYaml, 'application/apply-patch+yaml');
  assert.equal(applied.status, 201, JSON.stringify(applied.body));

  const gate = await startCli([
    '--kubernetes', '--kubeconfig', join(dir, 'kubeconfig'), ...loopbackListen,
    '--pod-name', 'e2e', '--lease-namespace', 'default', '--build-holdoff-ms', '10', '--shutdown-delay-seconds', '0', '--drain-seconds', '2',
  ]);
  child = gate.child;
  const { listen, admin } = gate;
  const metricsText = async (): Promise<string> => (await fetch(`http://${admin}/metrics`)).text();
  await waitUntil(async () => (await fetch(`http://${admin}/readyz`)).status === 200, 'readyz after the informers synced', 15_000);

  // Status from outside, as `kubectl get wsr chat -o yaml` shows it.
  type Served = { status?: { observedGeneration?: number; conditions?: { type: string; status: string; observedGeneration: number }[] } };
  const routeStatus = async (): Promise<Served['status']> => ((await api('GET', '/apis/wsgate.io/v1alpha1/namespaces/default/websocketroutes/chat')).body as Served).status;
  await waitUntil(async () => {
    const s = await routeStatus();
    return ['Accepted', 'ResolvedRefs', 'Programmed'].every((type) => s?.conditions?.some((c) => c.type === type && c.status === 'True' && c.observedGeneration === 1));
  }, 'Accepted, ResolvedRefs and Programmed True on the route', 15_000);

  // Real clients through the proxy, on both backends.
  for (let i = 0; i < 40; i++) clients.push(await connectClient(listen));
  const on = (name: string): Client[] => clients.filter((c) => c.backend === name);
  assert.ok(on('a').length > 0 && on('b').length > 0, 'clients spread over both backends');
  let m = await metricsText();
  assert.equal(metric(m, 'wsgate_connections_active', { namespace: 'default', route: 'chat' }), 40);
  assert.equal(metric(m, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Active' }), 2);

  // Roll: a new pod (c) becomes ready, the old one (b) terminates while still serving, then goes away.
  const rolled = on('b');
  assert.equal((await api('POST', slicePath, slice(backends.get('c')!, active))).status, 201);
  const bSlice = (await api('GET', `${slicePath}/chat-b`)).body;
  assert.equal((await api('PUT', `${slicePath}/chat-b`, { ...slice(backends.get('b')!, { ready: false, serving: true, terminating: true }), metadata: bSlice['metadata'] })).status, 200);
  await waitUntil(async () => {
    const text = await metricsText();
    return metric(text, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Draining' }) === 1
      && metric(text, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Active' }) === 2;
  }, 'b Draining, a and c Active in /metrics');
  const fresh = await connectClient(listen);
  clients.push(fresh);
  assert.notEqual(fresh.backend, 'b', 'a Draining pod takes no new client');
  // Terminating starts the paced drain at once, while the endpoint is still in the slice (a real pod is still
  // running then: the kubelet removes the endpoint only after the container is gone).
  await waitUntil(() => rolled.every((c) => c.close !== undefined), 'the terminating pod\'s clients closed before its endpoint left the slice', 10_000);
  assert.deepEqual([...new Set(rolled.map((c) => c.close))], [1012], 'paced 1012, never 1006');
  assert.equal((await api('DELETE', `${slicePath}/chat-b`)).status, 200);
  await waitUntil(async () => metric(await metricsText(), 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Draining' }) === 0, 'the removed endpoint leaves /metrics');
  m = await metricsText();
  assert.equal(metric(m, 'wsgate_drain_closes_total', { namespace: 'default', route: 'chat' }), rolled.length);
  for (let i = 0; i < rolled.length; i++) {
    const again = await connectClient(listen);
    clients.push(again);
    assert.notEqual(again.backend, 'b', 'reconnects land on the remaining pods');
  }
  const open = clients.filter((c) => c.close === undefined);
  await waitUntil(async () => metric(await metricsText(), 'wsgate_connections_active', { namespace: 'default', route: 'chat' }) === open.length, 'active gauge follows the drain and the reconnects');

  // SIGTERM: every open client gets 1012 within the drain, and the process exits 0.
  const t0 = Date.now();
  const [code, signal] = await gate.stop();
  assert.equal(signal, null, gate.stderr());
  assert.equal(code, 0, gate.stderr());
  // Each client's own close listener (connectClient) ran before these: c.close is set once they resolve.
  await Promise.all(open.map((c) => (c.close !== undefined ? undefined : once(c.ws, 'close'))));
  assert.deepEqual([...new Set(open.map((c) => c.close))], [1012]);
  t.diagnostic(`SIGTERM to exit: ${Date.now() - t0} ms with ${open.length} clients`);
});
