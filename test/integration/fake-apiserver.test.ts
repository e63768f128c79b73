// Fake API server: stands in for kube-apiserver's list/watch wire behaviour; this file checks the fake itself.
// The fake API server, checked through the real @kubernetes/client-node: if these pass, the controller's tests
// against the fake exercise client-node's real list/watch/error paths.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { FakeApiServer, waitUntil, within, type FakeApiServerOptions, type KObject } from '../support/fake-apiserver/index.ts';

const G = 'wsgate.io';
const V = 'v1alpha1';
const P = 'websocketroutes';

async function setup(t: TestContext, opts: FakeApiServerOptions = {}): Promise<{ fake: FakeApiServer; kc: k8s.KubeConfig }> {
  const fake = await FakeApiServer.start(opts);
  t.after(() => fake.close());
  const kc = new k8s.KubeConfig();
  kc.loadFromString(fake.kubeconfig());
  return { fake, kc };
}

function slice(name: string, service: string, addresses: string[], extra: Partial<KObject> = {}): KObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4', ports: [{ name: 'ws', port: 8080, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    ...extra,
  };
}

function route(name: string, spec: Record<string, unknown> = { rules: [] }): KObject {
  return { apiVersion: `${G}/${V}`, kind: 'WebSocketRoute', metadata: { name, namespace: 'default' }, spec };
}

function apiCode(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

test('an informer lists, then watches adds, updates and deletes, filtered by label selector', async (t) => {
  const { fake, kc } = await setup(t);
  fake.create(slice('chat-1', 'chat', ['10.0.0.1']));
  fake.create({ ...slice('unlabelled', 'x', ['10.0.0.9']), metadata: { name: 'unlabelled', namespace: 'default' } });
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const sel = 'kubernetes.io/service-name';
  const inf = k8s.makeInformer(kc, '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces({ labelSelector: sel }), sel);
  // The informer's events, and a wait for the n-th of them (the informer's own event, bounded).
  const seen: string[] = [];
  const waiters: { readonly n: number; readonly resolve: () => void }[] = [];
  const record = (e: string) => {
    seen.push(e);
    for (const w of waiters.filter((x) => seen.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const events = (n: number, what: string): Promise<void> => (seen.length >= n ? Promise.resolve() : within(new Promise<void>((resolve) => waiters.push({ n, resolve })), what));
  inf.on('add', (o) => record(`add ${o.metadata?.name}`));
  inf.on('update', (o) => record(`update ${o.metadata?.name}`));
  inf.on('delete', (o) => record(`delete ${o.metadata?.name}`));
  const watches = fake.watchesStarted('endpointslices');
  await inf.start();
  t.after(() => inf.stop());
  await fake.waitForWatch('endpointslices', watches);
  assert.deepEqual(inf.list().map((o) => o.metadata?.name), ['chat-1']);

  fake.create(slice('chat-2', 'chat', ['10.0.0.2']));
  const s1 = fake.get('discovery.k8s.io/v1', 'EndpointSlice', 'default', 'chat-1');
  fake.update({ ...s1, endpoints: [{ addresses: ['10.0.0.3'], conditions: { ready: false } }] });
  fake.delete('discovery.k8s.io/v1', 'EndpointSlice', 'default', 'chat-2');
  await events(4, 'four events');
  assert.deepEqual(seen, ['add chat-1', 'add chat-2', 'update chat-1', 'delete chat-2']);
  assert.equal(inf.get('chat-1', 'default')?.endpoints[0]?.conditions?.ready, false);

  // An object whose labels stop matching leaves the watch as DELETED.
  const s1b = fake.get('discovery.k8s.io/v1', 'EndpointSlice', 'default', 'chat-1');
  fake.update({ ...s1b, metadata: { ...s1b.metadata, labels: {} } });
  await events(5, 'label change seen');
  assert.equal(seen[4], 'delete chat-1');
});

test('a watch gets bookmarks and is ended by the server at timeoutSeconds', async (t) => {
  const { fake, kc } = await setup(t, { watchSecondMs: 40, bookmarkIntervalMs: 10 });
  const rv = String(fake.resourceVersion());
  const events: string[] = [];
  const done = new Promise<unknown>((resolve) => {
    void new k8s.Watch(kc).watch('/api/v1/services', { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 2 }, (type, obj) => {
      events.push(type);
      if (type === 'BOOKMARK') assert.equal(obj.metadata.resourceVersion, String(fake.resourceVersion()));
    }, resolve);
  });
  assert.equal(await within(done, 'server-side timeout'), null);
  assert.ok(events.length >= 1 && events.every((e) => e === 'BOOKMARK'), events.join());
});

test('a watch from a compacted resourceVersion gets 410 (ERROR event or HTTP) and the informer relists', async (t) => {
  for (const goneAs of ['event', 'http'] as const) {
    const { fake, kc } = await setup(t, { goneAs });
    fake.create(route('old'));
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const inf = k8s.makeInformer<KObject & k8s.KubernetesObject>(kc, `/apis/${G}/${V}/${P}`,
      () => custom.listCustomObjectForAllNamespaces({ group: G, version: V, plural: P }) as Promise<k8s.KubernetesListObject<KObject & k8s.KubernetesObject>>);
    const deleted: string[] = [];
    const errors: unknown[] = [];
    inf.on('delete', (o) => deleted.push(o.metadata.name ?? ''));
    inf.on('error', (e) => errors.push(e));
    let watches = fake.watchesStarted(P);
    await inf.start();
    t.after(() => inf.stop());
    await fake.waitForWatch(P, watches);

    // The informer misses these events (stalled stream), then the history is compacted away.
    fake.faults.stallWatches(P);
    fake.create(route('new'));
    fake.delete(`${G}/${V}`, 'WebSocketRoute', 'default', 'old');
    fake.faults.compact();
    const lists = fake.requests.filter((r) => r.verb === 'list').length;
    watches = fake.watchesStarted(P);
    fake.faults.endWatches(P);
    await fake.waitForWatch(P, watches); // the re-watch from the old version: 410
    await waitUntil(() => inf.list().map((o) => o.metadata.name).join() === 'new', `relist (${goneAs})`);
    assert.deepEqual(deleted, ['old'], goneAs);
    assert.ok(fake.requests.filter((r) => r.verb === 'list').length > lists, 'relisted');
    assert.deepEqual(errors, [], goneAs);
  }
});

test('a failed list and a dropped watch stop a bare client-node informer with an error (what the supervisor is for)', async (t) => {
  const { fake, kc } = await setup(t);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  fake.faults.failNextLists(1, 'services');
  const inf = k8s.makeInformer(kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
  const errored = new Promise<unknown>((resolve) => inf.on('error', resolve));
  await inf.start();
  t.after(() => inf.stop());
  assert.equal(apiCode(await within(errored, 'list error')), 500);

  const inf2 = k8s.makeInformer(kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
  const errored2 = new Promise<unknown>((resolve) => inf2.on('error', resolve));
  const watches = fake.watchesStarted('services');
  await inf2.start();
  t.after(() => inf2.stop());
  await fake.waitForWatch('services', watches);
  assert.equal(fake.faults.dropWatches('services'), 1);
  assert.ok(await within(errored2, 'watch error'));
});

test('a hung watch sends headers and then nothing, until the client gives up', async (t) => {
  const { fake, kc } = await setup(t);
  fake.faults.hangNextWatches({ resource: 'secrets' });
  const events: string[] = [];
  let done = false;
  const req = await new k8s.Watch(kc).watch('/api/v1/secrets', { resourceVersion: '0' }, (type) => events.push(type), () => (done = true));
  fake.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' }, data: { a: 'YQ==' } });
  await waitUntil(() => fake.activeWatches('secrets') === 1, 'hung watch registered');
  assert.deepEqual(events, []);
  assert.equal(done, false);
  req.abort();
  await waitUntil(() => fake.activeWatches('secrets') === 0, 'hung watch closed by the client');
});

test('leases: create, 409 on an update with a stale resourceVersion, MicroTime needs six fraction digits', async (t) => {
  const { kc } = await setup(t);
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  const namespace = 'default';
  await assert.rejects(
    coord.createNamespacedLease({ namespace, body: { metadata: { name: 'bad' }, spec: { holderIdentity: 'a', renewTime: new Date() as k8s.V1MicroTime } } }),
    (err) => apiCode(err) === 400,
  );
  const created = await coord.createNamespacedLease({ namespace, body: { metadata: { name: 'wsgate' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: new k8s.V1MicroTime() } } });
  assert.match(String(created.spec?.renewTime), /\.\d{6}Z$/);
  const first = await coord.replaceNamespacedLease({ name: 'wsgate', namespace, body: { ...created, spec: { ...created.spec, holderIdentity: 'b' } } });
  assert.notEqual(first.metadata?.resourceVersion, created.metadata?.resourceVersion);
  await assert.rejects(
    coord.replaceNamespacedLease({ name: 'wsgate', namespace, body: { ...created, spec: { ...created.spec, holderIdentity: 'c' } } }),
    (err) => apiCode(err) === 409,
  );
  await assert.rejects(coord.createNamespacedLease({ namespace, body: { metadata: { name: 'wsgate' }, spec: {} } }), (err) => apiCode(err) === 409);
  await assert.rejects(coord.readNamespacedLease({ name: 'missing', namespace }), (err) => apiCode(err) === 404);
});

test('status subresource: main writes ignore status, /status writes ignore spec, generation counts spec changes only', async (t) => {
  const { kc } = await setup(t);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const base = { group: G, version: V, namespace: 'default', plural: P };
  const created = (await custom.createNamespacedCustomObject({ ...base, body: { ...route('chat'), status: { observedGeneration: 9 } } })) as KObject;
  assert.equal(created.metadata.generation, 1);
  assert.equal(created['status'], undefined, 'status dropped on create');
  await assert.rejects(custom.replaceNamespacedCustomObject({ ...base, name: 'chat', body: { ...created, metadata: { ...created.metadata, resourceVersion: undefined } } }), (e) => apiCode(e) === 422);

  const specChanged = (await custom.replaceNamespacedCustomObject({ ...base, name: 'chat', body: { ...created, spec: { rules: [{}] }, status: { observedGeneration: 5 } } })) as KObject;
  assert.equal(specChanged.metadata.generation, 2);
  assert.equal(specChanged['status'], undefined, 'status ignored on the main resource');

  const labelled = (await custom.replaceNamespacedCustomObject({ ...base, name: 'chat', body: { ...specChanged, metadata: { ...specChanged.metadata, labels: { a: 'b' } } } })) as KObject;
  assert.equal(labelled.metadata.generation, 2, 'metadata changes do not bump generation');

  const statusWrite = (await custom.replaceNamespacedCustomObjectStatus({ ...base, name: 'chat', body: { ...labelled, spec: { rules: [] }, status: { observedGeneration: 2 } } })) as KObject;
  assert.deepEqual(statusWrite['status'], { observedGeneration: 2 });
  assert.deepEqual(statusWrite['spec'], { rules: [{}] }, 'spec ignored on /status');
  assert.equal(statusWrite.metadata.generation, 2);
});

test('server-side apply on /status: fieldManager required, conflicts unless force, no-op applies change nothing', async (t) => {
  const { fake, kc } = await setup(t);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const base = { group: G, version: V, namespace: 'default', plural: P, name: 'chat' };
  const ssa = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);
  fake.create(route('chat'));
  const cond = (type: string, status: string): Record<string, unknown> => ({ type, status, reason: 'R', message: '', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' });
  const body = (conditions: unknown[], spec?: unknown, name = 'chat'): unknown => ({ apiVersion: `${G}/${V}`, kind: 'WebSocketRoute', metadata: { name, namespace: 'default' }, ...(spec ? { spec } : {}), status: { conditions } });

  await assert.rejects(custom.patchNamespacedCustomObjectStatus({ ...base, body: body([cond('Accepted', 'True')]) }, ssa), (e) => apiCode(e) === 400);
  const applied = (await custom.patchNamespacedCustomObjectStatus({ ...base, body: body([cond('Accepted', 'True'), cond('Programmed', 'True')], { rules: [{}] }), fieldManager: 'wsgate', force: true }, ssa)) as KObject;
  assert.deepEqual((applied['status'] as { conditions: { type: string }[] }).conditions.map((c) => c.type), ['Accepted', 'Programmed']);
  assert.deepEqual(applied['spec'], { rules: [] }, 'spec in an apply to /status is ignored');

  const rv = fake.resourceVersion();
  await custom.patchNamespacedCustomObjectStatus({ ...base, body: body([cond('Accepted', 'True'), cond('Programmed', 'True')]), fieldManager: 'wsgate', force: true }, ssa);
  assert.equal(fake.resourceVersion(), rv, 'a no-op apply does not write');

  await assert.rejects(
    custom.patchNamespacedCustomObjectStatus({ ...base, body: body([cond('Accepted', 'False')]), fieldManager: 'other' }, ssa),
    (e) => apiCode(e) === 409,
  );
  // Dropping a condition from the apply removes it: the manager owned it.
  const shrunk = (await custom.patchNamespacedCustomObjectStatus({ ...base, body: body([cond('Accepted', 'False')]), fieldManager: 'wsgate', force: true }, ssa)) as KObject;
  assert.deepEqual((shrunk['status'] as { conditions: { type: string; status: string }[] }).conditions.map((c) => `${c.type}=${c.status}`), ['Accepted=False']);
  await assert.rejects(custom.patchNamespacedCustomObjectStatus({ ...base, name: 'missing', body: body([], undefined, 'missing'), fieldManager: 'wsgate', force: true }, ssa), (e) => apiCode(e) === 404);
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const merged = (await custom.patchNamespacedCustomObjectStatus({ ...base, body: { status: { observedGeneration: 1 } } }, merge)) as KObject;
  assert.equal((merged['status'] as { observedGeneration: number }).observedGeneration, 1);
});

test('EndpointSlices are validated like the real server, except that loopback addresses are allowed', async (t) => {
  const { kc } = await setup(t);
  const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
  const create = (s: KObject): Promise<unknown> => discovery.createNamespacedEndpointSlice({ namespace: 'default', body: s as unknown as k8s.V1EndpointSlice });
  const ok = (await create(slice('loop', 'chat', ['127.0.0.1']))) as KObject;
  assert.equal((ok['endpoints'] as { addresses: string[] }[])[0]!.addresses[0], '127.0.0.1');
  for (const [name, bad] of [
    ['link-local', slice('a', 'chat', ['169.254.1.1'])],
    ['not-ipv4', slice('b', 'chat', ['::1'])],
    ['no-address-type', { ...slice('c', 'chat', ['10.0.0.1']), addressType: undefined }],
    ['duplicate-port-names', slice('d', 'chat', ['10.0.0.1'], { ports: [{ name: 'ws', port: 1 }, { name: 'ws', port: 2 }] })],
    ['bad-port', slice('e', 'chat', ['10.0.0.1'], { ports: [{ name: 'ws', port: 70000 }] })],
    ['bad-label', { ...slice('f', 'chat', ['10.0.0.1']), metadata: { name: 'f', labels: { 'bad key!': 'x' } } }],
  ] as const) {
    await assert.rejects(create(bad as KObject), (e) => apiCode(e) === 422, name);
  }
  const empty = (await create({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'empty' }, addressType: 'IPv6' })) as KObject;
  assert.equal(empty['endpoints'], null);
});

test('discovery, auth, and namespaced vs all-namespace paths', async (t) => {
  const { fake, kc } = await setup(t);
  const apis = kc.makeApiClient(k8s.ApisApi);
  const groups = await apis.getAPIVersions();
  assert.ok(groups.groups.some((g) => g.name === G));
  const core = kc.makeApiClient(k8s.CoreV1Api);
  fake.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'one' }, spec: { ports: [{ port: 80 }] } });
  fake.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'b', namespace: 'two' }, spec: { ports: [{ port: 80 }] } });
  assert.equal((await core.listServiceForAllNamespaces()).items.length, 2);
  const one = await core.listNamespacedService({ namespace: 'one' });
  assert.deepEqual(one.items.map((s) => s.metadata?.name), ['a']);
  assert.equal(one.items[0]?.spec?.ports?.[0]?.targetPort, 80, 'defaulted like the real server');

  const wrong = new k8s.KubeConfig();
  wrong.loadFromString(fake.kubeconfig().replace('fake-token', 'nope'));
  await assert.rejects(wrong.makeApiClient(k8s.CoreV1Api).listServiceForAllNamespaces(), (e) => apiCode(e) === 401);
});

test('lists in chunks: limit and continue page through one snapshot; a token from before a compaction gets 410 Expired', async (t) => {
  const { fake, kc } = await setup(t);
  const api = kc.makeApiClient(k8s.DiscoveryV1Api);
  for (const n of ['a', 'b', 'c', 'd', 'e']) fake.create(slice(n, 'svc', ['10.0.0.1']));
  const first = await api.listNamespacedEndpointSlice({ namespace: 'default', limit: 2 });
  assert.deepEqual(first.items.map((i) => i.metadata?.name), ['a', 'b']);
  assert.equal(first.metadata?.remainingItemCount, 3);
  // Made after the first page: not in the list's later pages, which are of the first page's snapshot.
  fake.create(slice('bb', 'svc', ['10.0.0.2']));
  const second = await api.listNamespacedEndpointSlice({ namespace: 'default', limit: 2, _continue: first.metadata!._continue! });
  assert.deepEqual(second.items.map((i) => i.metadata?.name), ['c', 'd']);
  assert.equal(second.metadata?.resourceVersion, first.metadata?.resourceVersion);
  const third = await api.listNamespacedEndpointSlice({ namespace: 'default', limit: 2, _continue: second.metadata!._continue! });
  assert.deepEqual(third.items.map((i) => i.metadata?.name), ['e']);
  assert.equal(third.metadata?._continue, undefined);
  // A list begun before a compaction cannot be continued after it.
  const again = await api.listNamespacedEndpointSlice({ namespace: 'default', limit: 2 });
  fake.update(slice('a', 'svc', ['10.0.0.3']));
  fake.faults.compact();
  const err = await api.listNamespacedEndpointSlice({ namespace: 'default', limit: 2, _continue: again.metadata!._continue! }).then(() => undefined, (e: unknown) => e);
  assert.equal(apiCode(err), 410);
  assert.match(String((err as k8s.ApiException<string>).body), /"reason":"Expired"/);
});
