// Fake API server: stands in for kube-apiserver's 410 after compaction and the relist that follows, at scale.
// wsgate in Kubernetes mode (serve(), the build thread on, as by default) over 1,000 routes with 10 endpoints
// each, plus 500 EndpointSlices of Services no route names, with one live WebSocket through it to a real echo
// backend. Changes to the unreferenced slices start no build, whether a watch or a relist after 410 brings
// them; a relist that finds a missed change to a referenced slice starts exactly one, and the live connection
// echoes every message sent meanwhile. Lists are read in pages. (How long the loop may stall is a figure for the bench, bench/scale-churn.ts: a test on a
// shared machine cannot hold a wall-clock bound.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { serve } from '../../src/main.ts';
import { FakeApiServer, waitUntil, type KObject } from '../support/fake-apiserver/index.ts';
import { connect, metricValue, silentLog, startEcho } from '../support/harness.ts';

const routes = 1000;
const ns = 'default';

const service = (name: string): KObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws' }] } });
const slice = (svc: string, port: number, ips: readonly string[]): KObject => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${svc}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port, protocol: 'TCP' }],
  endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: `${svc}-${ip}` } })),
});
const route = (name: string, svc: string): KObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: { name, namespace: ns },
  spec: { hostnames: [`${name}.example`], rules: [{ backendRefs: [{ name: svc, port: 80 }] }] },
});
const ips = (i: number, n = 10): string[] => Array.from({ length: n }, (_, j) => `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`);

test('at 1,000 routes: changes to unreferenced slices, by watch or by relist, start no build, a relist with a missed change one, and a live connection loses nothing', async (t) => {
  const echo = await startEcho();
  t.after(() => echo.close());
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 200, historyLimit: 100_000 });
  t.after(() => fake.close());
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-scale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, fake.kubeconfig());
  fake.create(service('live'));
  fake.create(slice('live', echo.port, ['127.0.0.1']));
  fake.create(route('live', 'live'));
  for (let i = 1; i < routes; i++) {
    fake.create(service(`svc-${i}`));
    fake.create(slice(`svc-${i}`, 8080, ips(i)));
    fake.create(route(`route-${i}`, `svc-${i}`));
  }
  for (let i = 0; i < 500; i++) fake.create(slice(`other-${i}`, 8080, ips(2000 + i, 4)));
  const running = await serve(
    loadConfig([
      '--kubernetes', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--pod-name', 'scale',
      '--build-holdoff-ms', '10', '--build-max-holdoff-ms', '200', '--shutdown-delay-seconds', '0', '--drain-seconds', '0',
      // The first status write of all 1,000 routes is waited for: paced, but not at the default 20 a second.
      '--kube-api-qps', '2000', '--kube-api-burst', '200',
    ], {}),
    silentLog,
  );
  t.after(() => running.close());
  const first = await running.holder.waitForGeneration(1);
  assert.equal(first.routes.size, routes);
  // Lists are read in pages of 100, each parsed on its own: 1,000 routes are ten requests, each after the first
  // continuing the one before; 1,499 slices are fifteen.
  const pages = (resource: string) => fake.requests.filter((r) => r.verb === 'list' && r.resource === resource).map((r) => `${r.query['limit']}${r.query['continue'] ? '+' : ''}`);
  const paged = (n: number) => ['100', ...Array.from({ length: n - 1 }, () => '100+')];
  assert.deepEqual(pages('websocketroutes'), paged(10));
  assert.deepEqual(pages('endpointslices'), paged(15));
  assert.equal(first.endpoints.size, (routes - 1) * 10 + 1);
  const builds = async (): Promise<number> =>
    (await metricValue(running.metrics, 'wsgate_snapshot_builds_total', { result: 'published' })) + (await metricValue(running.metrics, 'wsgate_snapshot_builds_total', { result: 'unchanged' }));

  // The live connection echoes throughout; every message sent must come back.
  const ws = await connect(`ws://127.0.0.1:${running.proxyAddress.port}/`, { headers: { host: 'live.example' } });
  let sent = 0;
  let echoed = 0;
  ws.on('message', () => echoed++);
  const ping = setInterval(() => {
    sent++;
    ws.send(Buffer.alloc(64));
  }, 5);
  t.after(() => clearInterval(ping));
  await waitUntil(() => echoed >= 10, 'the live connection echoes');

  // The leader writes every route's status once; those writes change nothing the builder reads.
  await waitUntil(() => fake.requests.filter((r) => r.verb === 'patch' && r.resource === 'websocketroutes/status').length >= routes, 'first status writes', 60_000);
  const before = await builds();
  const generation = running.holder.current()!.generation;

  // 1. 200 changes to slices of Services no route names: no build.
  for (let k = 0; k < 200; k++) fake.update(slice(`other-${k % 500}`, 8080, ips(2000 + (k % 500), 3 + (k % 2))));
  // 2. A relist after 410 that finds only a missed change to an unreferenced slice: no build either.
  const sliceLists = (): number => fake.requests.filter((r) => r.verb === 'list' && r.resource === 'endpointslices').length;
  const lists = sliceLists();
  const watches = fake.watchesStarted();
  fake.faults.stallWatches('endpointslices');
  fake.update(slice('other-3', 8080, ips(2003, 2)));
  fake.faults.compact();
  fake.faults.endWatches('endpointslices');
  await waitUntil(() => sliceLists() > lists && fake.watchesStarted() > watches && fake.activeWatches() >= 4, 'slices relisted and watched again', 30_000);
  // 3. A change to a referenced slice, as a marker: it is the next build, so nothing above built.
  fake.update(slice('svc-7', 8080, ips(7, 9)));
  const marked = await running.holder.waitForGeneration(generation + 1);
  assert.equal(marked.routes.get(`${ns}/route-7`)?.rules[0]?.backends[0]?.endpoints.length, 9);
  await waitUntil(async () => (await builds()) === before + 1, 'the marker build counted');

  // 4. A relist after 410 that finds a change it missed: exactly one build, which has it.
  const lists2 = sliceLists();
  fake.faults.stallWatches('endpointslices');
  fake.update(slice('svc-9', 8080, ips(9, 8)));
  fake.faults.compact();
  fake.faults.endWatches('endpointslices');
  const relisted = await running.holder.waitForGeneration(generation + 2);
  assert.equal(relisted.routes.get(`${ns}/route-9`)?.rules[0]?.backends[0]?.endpoints.length, 8);
  assert.ok(sliceLists() > lists2, 'the change arrived by a relist');
  await waitUntil(async () => (await builds()) === before + 2, 'the relist build counted');
  // Unchanged routes are the previous snapshot's objects: only the changed route was rebuilt on this side.
  const shared = [...relisted.routes].filter(([k, r]) => marked.routes.get(k) === r).length;
  assert.equal(shared, routes - 1);

  clearInterval(ping);
  await waitUntil(() => echoed === sent, `all ${sent} echoes back`);
  assert.equal(await builds(), before + 2);
  ws.close();
});
