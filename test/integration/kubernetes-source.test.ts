// Fake API server: stands in for kube-apiserver's watch faults (dropped, silent, 410 after compaction, 500 on list) and counts requests; watches on a real server are in real-apiserver.test.ts.
// The Kubernetes source against the fake API server: sync, trimming, change signals, and recovery from every
// injected fault (dropped watch, watch hanging without bytes, 500 on list, compaction), with no stale cache.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeApiServer, waitUntil, within, type FakeApiServerOptions, type KObject } from '../support/fake-apiserver/index.ts';
import { KubeClient } from '../../src/kube/kube-client.ts';
import { KubernetesSource, secretFieldSelector } from '../../src/sources/kubernetes/source.ts';
import type { InformerTimings } from '../../src/sources/kubernetes/informer.ts';
import { requiredPermissions } from '../../src/sources/kubernetes/permissions.ts';
import type { SourceChange } from '../../src/sources/source.ts';
import { LeaderElector } from '../../src/status/leader-elector.ts';
import { selfSigned } from '../support/certs.ts';
import { ManualClock } from '../support/manual-clock.ts';

const fast: Partial<InformerTimings> = {
  backoff: { initialMs: 5, maxMs: 40, resetAfterMs: 120_000, fastMaxMs: 40, fastForMs: 0 }, watchdogMs: 400, watchTimeoutSeconds: [30, 31], relistIntervalMs: 0, requestTimeoutMs: 2000 };

interface Harness {
  fake: FakeApiServer;
  source: KubernetesSource;
  restarts: string[];
  changes: () => number;
  /** Resolves at the first change signal after which `pred` holds on the source's objects (at once if it holds
   *  now): the source's own event, bounded so that a missing signal fails with `what`. */
  reaches: (pred: () => boolean, what: string) => Promise<void>;
  signals: SourceChange[];
}

async function setup(t: TestContext, o: { fake?: FakeApiServerOptions; timings?: Partial<InformerTimings>; namespaces?: string[]; seed?: (f: FakeApiServer) => void } = {}): Promise<Harness> {
  // Bookmarks far more often than the watchdog period, so a slow machine never trips it by accident.
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 20, ...o.fake });
  t.after(() => fake.close());
  o.seed?.(fake);
  const restarts: string[] = [];
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } });
  const source = new KubernetesSource({
    client, log: pino({ level: 'silent' }), timings: { ...fast, ...o.timings },
    onRestart: (r, why) => restarts.push(`${r}:${why}`),
    ...(o.namespaces ? { watchNamespaces: o.namespaces } : {}),
  });
  let n = 0;
  const signals: SourceChange[] = [];
  source.onChange((c) => {
    n++;
    signals.push(c);
  });
  await source.start();
  t.after(() => source.stop());
  await within(source.whenSynced(), 'initial sync');
  const watches = 4 * (o.namespaces?.length ?? 1);
  await waitUntil(() => fake.activeWatches() === watches, `${watches} watches open`);
  const reaches = (pred: () => boolean, what: string): Promise<void> =>
    pred()
      ? Promise.resolve()
      : within(
          new Promise<void>((resolve) => {
            const off = source.onChange(() => {
              if (!pred()) return;
              off();
              resolve();
            });
          }),
          what,
          10_000,
        );
  return { fake, source, restarts, changes: () => n, reaches, signals };
}

const service = (name: string, ns = 'default'): KObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws' }] } });
const slice = (name: string, svc: string, addrs: string[], ns = 'default'): KObject => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4', ports: [{ name: 'ws', port: 8080 }], endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `pod-${a}` } })),
});
const route = (name: string, ns = 'default'): KObject => ({ apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name, namespace: ns }, spec: { rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }] } });
const secret = (name: string): KObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, type: 'Opaque', data: { k: 'dg==' } });

const addresses = (s: KubernetesSource): string[] => s.current().endpointSlices.flatMap((e) => (e.endpoints ?? []).flatMap((x) => x.addresses)).sort();

function slicesGet(fake: FakeApiServer, name: string): KObject {
  return fake.get('discovery.k8s.io/v1', 'EndpointSlice', 'default', name);
}

test('syncs every resource, trims objects to the builder shapes, and signals changes only when they matter', async (t) => {
  const h = await setup(t, {
    seed: (f) => {
      f.create(service('chat'));
      f.create(slice('chat-a', 'chat', ['10.0.0.1']));
      f.create({ ...slice('orphan', 'x', ['10.0.0.2']), metadata: { name: 'orphan', namespace: 'default' } });
      f.create(route('chat'));
      f.create(secret('tls'));
      // Types no route can use stay on the server (a field selector): Helm releases are big, tokens sensitive.
      f.create({ ...secret('sh.helm.release.v1.app.v1'), type: 'helm.sh/release.v1' });
      f.create({ ...secret('default-token'), type: 'kubernetes.io/service-account-token' });
    },
  });
  const input = h.source.current();
  assert.deepEqual(input.services, [{ metadata: { namespace: 'default', name: 'chat' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws', protocol: 'TCP' }] } }]);
  assert.deepEqual(input.endpointSlices, [{
    metadata: { namespace: 'default', name: 'chat-a', labels: { 'kubernetes.io/service-name': 'chat' } }, addressType: 'IPv4',
    ports: [{ name: 'ws', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true }, targetRef: { name: 'pod-10.0.0.1' } }],
  }], 'slices without the service-name label are not watched');
  assert.deepEqual(input.secrets, [{ metadata: { namespace: 'default', name: 'tls' }, type: 'Opaque', data: { k: 'dg==' } }]);
  const secretRequests = h.fake.requests.filter((r) => r.resource === 'secrets');
  assert.deepEqual([...new Set(secretRequests.map((r) => r.verb))].sort(), ['list', 'watch']);
  for (const r of secretRequests) assert.equal(r.query['fieldSelector'], secretFieldSelector);
  assert.equal(input.routes.length, 1);
  assert.equal(input.routes[0]!.metadata.generation, 1);
  assert.deepEqual(input.routes[0]!.spec, { rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }] });
  assert.ok(input.routes[0]!.metadata.creationTimestamp);
  assert.equal(h.source.synced(), true);

  const before = h.changes();
  h.fake.create(slice('chat-b', 'chat', ['10.0.0.3']));
  await h.reaches(() => addresses(h.source).length === 2, 'new slice');
  assert.ok(h.changes() > before);
  // The signal names the object and carries it trimmed, so the controller can tell whether it matters.
  const added = h.source.current().endpointSlices.find((s) => s.metadata.name === 'chat-b');
  assert.deepEqual(h.signals.at(-1), { objects: [{ kind: 'endpointslices', key: 'default/chat-b', after: added }] });

  // A status write changes resourceVersion but nothing the builder reads: no signal, but the status is observed.
  const r = h.fake.get('wsgate.io/v1alpha1', 'WebSocketRoute', 'default', 'chat');
  const quiet = h.changes();
  h.fake.updateStatus({ ...r, status: { conditions: [{ type: 'Accepted', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }] } });
  await waitUntil(() => h.source.observedStatus('default/chat')?.conditions?.[0]?.type === 'Accepted', 'status observed');
  assert.equal(h.changes(), quiet);

  const was = h.source.current().routes[0];
  h.fake.delete('wsgate.io/v1alpha1', 'WebSocketRoute', 'default', 'chat');
  await h.reaches(() => h.source.current().routes.length === 0, 'route deleted');
  assert.deepEqual(h.signals.at(-1), { objects: [{ kind: 'websocketroutes', key: 'default/chat', before: was }] });
  assert.equal(h.source.observedStatus('default/chat'), undefined);
  assert.deepEqual(h.restarts, []);
});

test('a watch dropped mid-stream is restarted and the changes made meanwhile arrive', async (t) => {
  const h = await setup(t, { seed: (f) => f.create(slice('s', 'chat', ['10.0.0.1'])) });
  const watches = h.fake.watchesStarted('endpointslices');
  assert.equal(h.fake.faults.dropWatches('endpointslices'), 1);
  const s = slicesGet(h.fake, 's');
  h.fake.update({ ...s, endpoints: [{ addresses: ['10.0.0.9'], conditions: { ready: true } }] });
  await h.fake.waitForWatch('endpointslices', watches);
  await h.reaches(() => addresses(h.source).join() === '10.0.0.9', 'update after reconnect');
  assert.deepEqual(h.restarts, ['endpointslices:error']);
});

test('a watch that hangs without a byte is ended by the watchdog, after headers or before them', async (t) => {
  for (const beforeHeaders of [false, true]) {
    const h = await setup(t, { timings: { watchdogMs: 200 }, fake: { bookmarkIntervalMs: 10 } });
    h.fake.faults.hangNextWatches({ resource: 'services', beforeHeaders });
    // Force a new watch, which hangs.
    h.fake.faults.endWatches('services');
    h.fake.create(service('late'));
    await h.reaches(() => h.source.current().services.length === 1, `service seen after the hang (beforeHeaders=${beforeHeaders})`);
    assert.deepEqual(h.restarts, ['services:watchdog']);
    await waitUntil(() => h.fake.activeWatches('services') === 1, 'the hung request was closed');
  }
});

test('a stream that goes silent mid-watch is restarted by the watchdog; bookmarks keep a quiet watch alive', async (t) => {
  const h = await setup(t, { timings: { watchdogMs: 200 }, fake: { bookmarkIntervalMs: 10 } });
  // Quiet but healthy: bookmarks arrive for longer than the watchdog period, and nothing restarts.
  await waitUntil(() => h.fake.bookmarksSent('secrets') >= 40, 'forty bookmarks (two watchdog periods)');
  assert.deepEqual(h.restarts, []);
  const watches = h.fake.watchesStarted('secrets');
  h.fake.faults.stallWatches('secrets');
  h.fake.create(secret('after-stall'));
  await h.fake.waitForWatch('secrets', watches);
  await h.reaches(() => h.source.current().secrets.length === 1, 'secret after stall');
  assert.deepEqual(h.restarts, ['secrets:watchdog']);
});

test('500 on list is retried with backoff until it succeeds', async (t) => {
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 20 });
  t.after(() => fake.close());
  fake.faults.failNextLists(3, 'websocketroutes');
  fake.create(route('r'));
  const restarts: string[] = [];
  const source = new KubernetesSource({
    client: new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } }),
    log: pino({ level: 'silent' }), timings: fast, onRestart: (r, why) => restarts.push(`${r}:${why}`),
  });
  await source.start();
  t.after(() => source.stop());
  await within(source.whenSynced(), 'sync after failed lists');
  assert.equal(source.current().routes.length, 1);
  assert.deepEqual(restarts, ['websocketroutes:error', 'websocketroutes:error', 'websocketroutes:error']);
  assert.equal(fake.requests.filter((r) => r.verb === 'list' && r.resource === 'websocketroutes' && r.status === 500).length, 3);
});

test('a compacted history makes the next watch 410: client-node relists, deletes missed meanwhile are seen', async (t) => {
  const h = await setup(t, { seed: (f) => ['a', 'b'].forEach((n) => f.create(slice(n, 'chat', [n === 'a' ? '10.0.0.1' : '10.0.0.2']))) });
  h.fake.faults.stallWatches('endpointslices');
  h.fake.delete('discovery.k8s.io/v1', 'EndpointSlice', 'default', 'a');
  h.fake.faults.compact();
  h.fake.faults.endWatches('endpointslices');
  await h.reaches(() => addresses(h.source).join() === '10.0.0.2', 'relist after 410');
  assert.deepEqual(h.restarts, [], 'a 410 is handled without a restart');
});

test('server-side watch timeouts just re-watch, and a periodic relist heals a cache without restarts', async (t) => {
  const h = await setup(t, { fake: { watchSecondMs: 2 }, timings: { relistIntervalMs: 100 } });
  const lists = (): number => h.fake.requests.filter((r) => r.verb === 'list' && r.resource === 'services').length;
  const l0 = lists();
  const w0 = h.fake.watchesStarted('services');
  await waitUntil(() => h.fake.watchesStarted('services') > w0 + 3 && lists() > l0, 're-watches and a relist');
  h.fake.create(service('x'));
  await h.reaches(() => h.source.current().services.length === 1, 'event after re-watch');
  const watchReq = h.fake.requests.find((r) => r.verb === 'watch' && r.resource === 'services')!;
  assert.equal(watchReq.query['allowWatchBookmarks'], 'true');
  assert.equal(watchReq.query['timeoutSeconds'], '30');
  assert.deepEqual(h.restarts, []);
});

test('a watch namespace scopes every call, and every call is one that permissions.ts grants', async (t) => {
  const h = await setup(t, {
    namespaces: ['team'],
    seed: (f) => {
      f.create(service('in', 'team'));
      f.create(service('out', 'other'));
    },
  });
  assert.deepEqual(h.source.current().services.map((s) => s.metadata.name), ['in']);
  const resourceCalls = h.fake.requests.filter((r) => r.verb !== 'discovery');
  assert.ok(resourceCalls.length >= 8);
  for (const r of resourceCalls) {
    assert.equal(r.namespace, 'team', r.path);
    const rule = requiredPermissions.find((p) => p.apiGroup === r.group && p.resource === r.resource);
    assert.ok(rule?.verbs.includes(r.verb), `${r.verb} ${r.group}/${r.resource} is not granted`);
  }
  await h.source.stop();
  await waitUntil(() => h.fake.activeWatches() === 0, 'watches closed on stop');
});

test('--watch-namespaces: one list and one watch per resource and namespace, only on namespaced paths, and nothing from elsewhere', async (t) => {
  const h = await setup(t, {
    namespaces: ['team', 'ops'],
    seed: (f) => {
      for (const ns of ['team', 'ops', 'other']) {
        f.create(service(`svc-${ns}`, ns));
        f.create(route(`route-${ns}`, ns));
        f.create(slice(`slice-${ns}`, `svc-${ns}`, ['10.0.0.1'], ns));
        f.create({ ...secret(`secret-${ns}`), metadata: { name: `secret-${ns}`, namespace: ns } });
      }
    },
  });
  const input = h.source.current();
  const names = (xs: readonly { metadata: { name?: string } }[]): string[] => xs.map((x) => x.metadata.name ?? '').sort();
  assert.deepEqual(names(input.services), ['svc-ops', 'svc-team']);
  assert.deepEqual(names(input.routes), ['route-ops', 'route-team']);
  assert.deepEqual(names(input.endpointSlices), ['slice-ops', 'slice-team']);
  assert.deepEqual(names(input.secrets), ['secret-ops', 'secret-team']);
  h.fake.create(service('late', 'ops'));
  h.fake.create(service('late', 'other'));
  await h.reaches(() => h.source.current().services.length === 3, 'a new Service in a watched namespace');

  // What a Role in each of the two namespaces allows, and nothing a ClusterRole alone would.
  const calls = h.fake.requests.filter((r) => r.verb !== 'discovery').map((r) => `${r.verb} ${r.path}`);
  const expected = ['team', 'ops'].flatMap((ns) => [
    `/apis/wsgate.io/v1alpha1/namespaces/${ns}/websocketroutes`, `/api/v1/namespaces/${ns}/services`,
    `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, `/api/v1/namespaces/${ns}/secrets`,
  ]);
  assert.deepEqual([...new Set(calls)].sort(), expected.flatMap((p) => [`list ${p}`, `watch ${p}`]).sort());
  assert.equal(calls.filter((c) => c.startsWith('list ')).length, 8, 'one list per resource and namespace');
  for (const r of h.fake.requests.filter((x) => x.verb !== 'discovery')) {
    const rule = requiredPermissions.find((p) => p.apiGroup === r.group && p.resource === r.resource);
    assert.ok(rule?.scope === 'cluster' && rule.verbs.includes(r.verb), `${r.verb} ${r.group}/${r.resource} is not granted by the per-namespace Role`);
  }
  const informers = ['team', 'ops'].flatMap((ns) => ['websocketroutes', 'services', 'endpointslices', 'secrets'].map((r) => `${r}/${ns}`));
  assert.deepEqual(Object.keys(h.source.informerStates()).sort(), informers.sort());
  assert.deepEqual(h.restarts, []);
});

test('connections to the API server are kept alive: hundreds of watches and lease calls over a handful of TLS sessions', async (t) => {
  // Watches end every 60 ms (timeoutSeconds 30 at 2 ms a second) and are re-opened; the Lease is read and
  // renewed every 10 ms. Without keep-alive each of these requests was one TLS handshake (measured: 304 of 304).
  const fake = await FakeApiServer.start({ tls: selfSigned(['127.0.0.1']), watchSecondMs: 2, bookmarkIntervalMs: 20 });
  t.after(() => fake.close());
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } });
  const log = pino({ level: 'silent' });
  const restarts: string[] = [];
  const source = new KubernetesSource({ client, log, timings: { ...fast, watchdogMs: 60_000 }, onRestart: (r, why) => restarts.push(`${r}:${why}`) });
  await source.start();
  await within(source.whenSynced(), 'initial sync over TLS');
  const elector = new LeaderElector({
    client, namespace: 'default', name: 'wsgate', identity: 'a', log,
    leaseDurationMs: 1000, renewDeadlineMs: 100, retryPeriodMs: 10, onStartedLeading: () => {}, onStoppedLeading: () => {},
  });
  elector.start();
  const count = (verb: string): number => fake.requests.filter((r) => r.verb === verb && r.status === 200).length;
  await waitUntil(() => count('watch') >= 100 && count('update') >= 50, 'a hundred watches and fifty lease renewals', 30_000);
  await elector.stop();
  await source.stop();
  client.close();
  assert.equal(count('list'), 4);
  // At most one connection per request in flight at once: four watches and one lease call.
  assert.ok(fake.tlsSessions <= 5, `${fake.tlsSessions} TLS sessions for ${fake.requests.length} requests`);
  assert.equal(fake.tlsSessions, fake.connectionsAccepted, 'every connection was TLS');
  assert.deepEqual(restarts, []);
});

/**
 * An outage on injected time. `clock` drives every informer timer; each tick moves it and then waits (real
 * time, on events) until no list is in flight, so a retry that fires in a tick has its answer before the next.
 */
async function outageHarness(t: TestContext) {
  const clock = new ManualClock(0);
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 20 });
  t.after(() => fake.close());
  fake.create(service('before'));
  fake.create(secret('old'));
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } });
  const restarts: string[] = [];
  // Production backoff and watchdog; no periodic relist, so every list after the sync is a recovery.
  const source = new KubernetesSource({ client, log: pino({ level: 'silent' }), clock, timings: { relistIntervalMs: 0 }, onRestart: (r, why) => restarts.push(`${r}:${why}`) });
  await source.start();
  t.after(() => source.stop());
  await within(source.whenSynced(), 'initial sync');
  await waitUntil(() => fake.activeWatches() === 4, 'four watches open');
  const states = (): string[] => Object.values(source.informerStates());
  const relisted = new Map<string, number>();
  let seen = fake.requests.length;
  const tick = async (ms: number): Promise<void> => {
    clock.advance(ms);
    await waitUntil(() => !states().includes('listing'), 'no list in flight');
    for (const r of fake.requests.slice(seen)) if (r.verb === 'list' && r.status === 200 && !relisted.has(r.resource)) relisted.set(r.resource, clock.now());
    seen = fake.requests.length;
  };
  const run = async (ms: number, step = 100, until?: () => boolean): Promise<void> => {
    for (let spent = 0; spent < ms && !until?.(); spent += step) await tick(step);
  };
  const down = async (): Promise<void> => {
    fake.faults.down();
    await waitUntil(() => states().every((s) => s === 'backoff'), 'every informer backing off');
  };
  return { clock, fake, source, restarts, relisted, run, down };
}

test('after an API server outage (down 30 s, then 403 for 1 s) every informer relists within 3 s of the server answering', async (t) => {
  const h = await outageHarness(t);
  await h.down();
  // Changes the informers can only learn by relisting.
  h.fake.create(service('during'));
  h.fake.delete('v1', 'Secret', 'default', 'old');
  await h.run(30_000);
  // A restarting kube-apiserver answers 403 until its RBAC authorizer has loaded the (Cluster)RoleBindings.
  h.fake.faults.up();
  h.fake.faults.answerAll(403);
  const answering = h.clock.now();
  await h.run(1000);
  assert.equal(h.relisted.size, 0, 'nothing lists during the 403s');
  h.fake.faults.up();
  await h.run(10_000, 100, () => h.relisted.size === 4);
  const delays = Object.fromEntries([...h.relisted].map(([r, at]) => [r, at - answering]));
  t.diagnostic(`relisted after the server answered again (ms, 100 ms steps): ${JSON.stringify(delays)}; ${h.restarts.length} failed attempts`);
  assert.deepEqual(Object.keys(delays).sort(), ['endpointslices', 'secrets', 'services', 'websocketroutes']);
  for (const [r, d] of Object.entries(delays)) assert.ok(d <= 3000, `${r} relisted ${d} ms after the server answered`);
  await waitUntil(() => h.fake.activeWatches() === 4, 'four watches open again');
  assert.deepEqual(h.source.current().services.map((s) => s.metadata.name).sort(), ['before', 'during']);
  assert.deepEqual(h.source.current().secrets, []);
  // Retries stayed at least half a second apart (the fast cap's floor): at most 63 failed attempts each in 31 s.
  for (const r of ['websocketroutes', 'services', 'endpointslices', 'secrets']) {
    const n = h.restarts.filter((x) => x === `${r}:error`).length;
    assert.ok(n >= 2 && n <= 63, `${r}: ${n} failed attempts`);
  }
});

test('after a long outage the backoff has grown, but the first informer to list again brings the others forward', async (t) => {
  const h = await outageHarness(t);
  await h.down();
  h.fake.create(service('during'));
  // Five minutes: past the fast window, the retries are 30-60 s apart (client-go's cap and jitter).
  await h.run(300_000, 500);
  h.fake.faults.up();
  await h.run(120_000, 100, () => h.relisted.size > 0);
  const first = Math.min(...h.relisted.values());
  await h.run(2000, 100, () => h.relisted.size === 4);
  const after = Object.fromEntries([...h.relisted].map(([r, at]) => [r, at - first]));
  t.diagnostic(`relisted after the first informer did (ms): ${JSON.stringify(after)}`);
  assert.equal(h.relisted.size, 4, JSON.stringify(after));
  for (const [r, d] of Object.entries(after)) assert.ok(d <= 1100, `${r} relisted ${d} ms after the first`);
  assert.deepEqual(h.source.current().services.map((s) => s.metadata.name).sort(), ['before', 'during']);
});
