// The Kubernetes side of wsgate against a REAL kube-apiserver (etcd + kube-apiserver 1.28, the envtest
// pattern; test/support/kube-env.ts): the chart's CRD installs and its CEL rules answer with their messages;
// wsgate runs with the chart's ServiceAccount token and RBAC (manifests/rbac.yaml), not as admin, with no 403;
// status is written by server-side apply and shows in managedFields; leader election on a real Lease; watches
// the server ends are resumed, periodic relists lose nothing. Skipped where the binaries are absent.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import * as yaml from 'js-yaml';
import { pino } from 'pino';
import { createBuilder } from '../../src/dag/build.ts';
import { loadConfig } from '../../src/config/config.ts';
import { serve, type Running } from '../../src/main.ts';
import { KubeClient } from '../../src/kube/kube-client.ts';
import { LeaderElector } from '../../src/status/leader-elector.ts';
import { KubernetesSource } from '../../src/sources/kubernetes/source.ts';
import { waitUntil } from '../support/fake-apiserver/index.ts';
import { kubeEnvMissing, startKubeEnv, type KubeApi, type KubeEnv } from '../support/kube-env.ts';

const root = join(import.meta.dirname, '..', '..');
const missing = kubeEnvMissing();
const silent = pino({ level: 'silent' });

let env: KubeEnv;
let dir: string;
/** The API as the chart's ServiceAccount (wsgate/wsgate), with a TokenRequest token. */
let asWsgate: KubeApi;
let saToken: string;

const docs = (file: string): Record<string, unknown>[] =>
  (yaml.loadAll(readFileSync(join(root, file), 'utf8')) as unknown[]).filter((d): d is Record<string, unknown> => d !== null && typeof d === 'object');

const route = (name: string, spec: Record<string, unknown>, namespace = 'default') => ({ apiVersion: 'wsgate.io/v1alpha1' as const, kind: 'WebSocketRoute' as const, metadata: { name, namespace }, spec });
const routesPath = (ns = 'default') => `/apis/wsgate.io/v1alpha1/namespaces/${ns}/websocketroutes`;

before(async () => {
  if (missing) return;
  env = await startKubeEnv();
  dir = mkdtempSync(join(tmpdir(), 'wsgate-real-api-'));
  // The CRD exactly as shipped, then wait for the server to serve it.
  for (const crd of docs('crds/wsgate.io_websocketroutes.yaml')) await env.api.must('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  await waitUntil(async () => {
    const crd = await env.api.request('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/websocketroutes.wsgate.io');
    const conds = ((crd.body['status'] as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []);
    return conds.some((c) => c.type === 'Established' && c.status === 'True') && (await env.api.request('GET', routesPath())).status === 200;
  }, 'CRD established and served', 30_000);
  // The chart's RBAC as rendered for namespace "wsgate" (manifests/rbac.yaml is generated from the same rules).
  await env.api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wsgate' } });
  for (const obj of docs('manifests/rbac.yaml')) await env.api.apply(obj as never);
  saToken = await env.tokenFor('wsgate', 'wsgate');
  asWsgate = env.api.withToken(saToken);
});

after(async () => {
  asWsgate?.close();
  await env?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the shipped CRD: CEL rules answer with their messages, unknown fields are refused, and wsgate\'s own validator agrees', async (t) => {
  if (missing) return t.skip(missing);
  // Every CEL rule is mirrored by the builder (a route that got past an older CRD still gets Accepted=False).
  const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'kubernetes' });
  const accepted = (spec: Record<string, unknown>): string | undefined => build({
    routes: [{ ...route('r', spec), metadata: { name: 'r', namespace: 'default', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' } }],
    services: [], endpointSlices: [], secrets: [],
  }).statuses[0]?.conditions.find((x) => x.type === 'Accepted')?.status;
  const cases: { spec: Record<string, unknown>; causes: string[] }[] = [
    {
      spec: { rules: [{ backendRefs: [{ name: 'chat', port: 80, endpoints: ['10.0.0.1:80'] }] }] },
      causes: ['spec.rules[0].backendRefs[0]: Invalid value: "object": exactly one of name (a Service) or endpoints must be set',
        'spec.rules[0].backendRefs[0]: Invalid value: "object": port is only for a Service reference'],
    },
    { spec: { rules: [{ backendRefs: [{ name: 'chat' }] }] }, causes: ['spec.rules[0].backendRefs[0]: Invalid value: "object": port is required with name'] },
    { spec: { sessionAffinity: { type: 'Header' }, rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }] }, causes: ['spec.sessionAffinity: Invalid value: "object": type Header needs header.name'] },
    { spec: { tls: { certFile: '/c.pem' }, rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }] }, causes: ['spec.tls: Invalid value: "object": set secretName, or both certFile and keyFile'] },
    {
      spec: { rules: [{ backendRefs: [{ name: 'chat', port: 80 }], requestHeaders: { set: [{ name: 'X-Fine', value: 'a' }, { name: 'Upgrade', value: 'h2c' }], add: [{ name: 'x-forwarded-for', value: 'b' }], remove: ['Sec-WebSocket-Key'] } }] },
      causes: [
        'spec.rules[0].requestHeaders.set[1].name: Invalid value: "string": is a header wsgate writes on the upgrade, which a route cannot rewrite (see the field description)',
        'spec.rules[0].requestHeaders.add[0].name: Invalid value: "string": is a header wsgate writes on the upgrade, which a route cannot rewrite (see the field description)',
        'spec.rules[0].requestHeaders.remove[0]: Invalid value: "string": is a header wsgate writes on the upgrade, which a route cannot rewrite (see the field description)',
      ],
    },
  ];
  const seen: string[][] = [];
  for (const [i, c] of cases.entries()) {
    const r = await env.api.request('POST', routesPath(), route(`bad-${i}`, c.spec));
    assert.equal(r.status, 422, JSON.stringify(r.body));
    const causes = ((r.body['details'] as { causes?: { field: string; message: string }[] }).causes ?? []).map((x) => `${x.field}: ${x.message}`);
    seen.push(causes.sort());
    assert.equal(accepted(c.spec), 'False', `wsgate's builder also refuses case ${i}`);
  }
  assert.deepEqual(seen, cases.map((c) => [...c.causes].sort()));
  // Strict field validation (kubectl's default since 1.27): an unknown field is an error, not silently pruned.
  const strict = await env.api.request('POST', `${routesPath()}?fieldValidation=Strict`, route('typo', { rules: [{ backendRef: [] }] }));
  assert.equal(strict.status, 400, JSON.stringify(strict.body));
  assert.match(String(strict.body['message']), /strict decoding error: unknown field "spec\.rules\[0\]\.backendRef"/);
  // A valid route is stored with the schema's defaults applied by the server.
  const ok = await env.api.must('POST', routesPath(), route('valid', { rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }] }));
  assert.equal((ok['spec'] as { loadBalancer?: { policy?: string } }).loadBalancer, undefined, 'no default invented for an absent object');
  await env.api.must('DELETE', `${routesPath()}/valid`);
});

/** A pino logger whose lines are kept, to assert on what wsgate logged. */
function capturingLog(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const stream = new Writable({ write: (chunk: Buffer, _enc, cb) => (out.push(...chunk.toString().split('\n').filter(Boolean)), cb()) });
  return { log: pino({ level: 'debug' }, stream), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const slice = (name: string, svc: string, ip: string, cond: { ready: boolean; serving: boolean; terminating: boolean }) => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4', ports: [{ name: 'ws', port: 8080, protocol: 'TCP' }],
  endpoints: [{ addresses: [ip], conditions: cond, targetRef: { kind: 'Pod', name: `${svc}-${ip}`, namespace: 'default' } }],
});

test('wsgate with the chart ServiceAccount token: RBAC is enough (no 403), it serves, and writes status by server-side apply', async (t) => {
  if (missing) return t.skip(missing);
  // RBAC is enforced: the same token without the chart's bindings would be refused.
  await env.api.apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'nobody', namespace: 'wsgate' } });
  const nobody = env.api.withToken(await env.tokenFor('wsgate', 'nobody'));
  t.after(() => nobody.close());
  assert.equal((await nobody.request('GET', '/apis/wsgate.io/v1alpha1/websocketroutes')).status, 403);
  assert.equal((await asWsgate.request('GET', '/apis/wsgate.io/v1alpha1/websocketroutes')).status, 200);
  // ... and it grants no more than it needs: no writes to routes, no reading pods.
  assert.equal((await asWsgate.request('DELETE', `${routesPath()}/x`)).status, 403);
  assert.equal((await asWsgate.request('GET', '/api/v1/pods')).status, 403);

  await env.api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'chat', namespace: 'default' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 8080 }] } });
  // Pod addresses outside loopback: the real server refuses 127.0.0.0/8 in an EndpointSlice.
  const loop = await env.api.request('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', slice('loop', 'chat', '127.0.0.1', { ready: true, serving: true, terminating: false }));
  assert.equal(loop.status, 422);
  assert.match(String(loop.body['message']), /loopback/);
  await env.api.apply(slice('chat-a', 'chat', '10.244.0.11', { ready: true, serving: true, terminating: false }));
  await env.api.apply(route('chat', { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'chat', port: 80 }] }] }));

  const kubeconfig = join(dir, 'wsgate.kubeconfig');
  writeFileSync(kubeconfig, env.kubeconfigWithToken(saToken, 'wsgate'));
  const { log, lines } = capturingLog();
  const gate: Running = await serve(loadConfig([
    '--kubernetes', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--pod-name', 'wsgate-0',
    '--lease-namespace', 'wsgate', '--lease-duration-seconds', '3', '--lease-renew-deadline-seconds', '2', '--lease-retry-period-seconds', '0.5',
    '--build-holdoff-ms', '10', '--shutdown-delay-seconds', '0', '--drain-seconds', '1',
  ], {}), log);
  t.after(() => gate.close());
  const endpoints = (): string[] => (gate.holder.current()?.routes.get('default/chat')?.rules ?? []).flatMap((r) => r.backends.flatMap((b) => b.endpoints.map((e) => `${e.address} ${e.state}`))).sort();
  await waitUntil(() => endpoints().join() === '10.244.0.11:8080 Active', 'the slice\'s endpoint published', 20_000);
  assert.equal((await fetch(`http://127.0.0.1:${gate.adminAddress.port}/readyz`)).status, 200);

  // Status: written as the leader, by server-side apply on /status, owned by field manager "wsgate".
  type Served = { metadata: { generation: number; managedFields: { manager: string; operation: string; subresource?: string }[] }; status?: { observedGeneration?: number; conditions?: { type: string; status: string; observedGeneration: number }[] } };
  const served = async (): Promise<Served> => (await env.api.must('GET', `${routesPath()}/chat`)) as unknown as Served;
  const settled = async (gen: number): Promise<boolean> => {
    const s = (await served()).status;
    return s?.observedGeneration === gen && ['Accepted', 'ResolvedRefs', 'Programmed'].every((type) => s.conditions?.some((c) => c.type === type && c.status === 'True' && c.observedGeneration === gen));
  };
  await waitUntil(() => settled(1), 'Accepted, ResolvedRefs and Programmed True at generation 1', 20_000);
  const managers = (await served()).metadata.managedFields.map((m) => `${m.manager}/${m.operation}/${m.subresource ?? ''}`).sort();
  assert.deepEqual(managers, ['wsgate-test/Apply/', 'wsgate/Apply/status']);

  // Watches: a change to the route, a new pod and a terminating one reach the table; status follows the generation.
  await env.api.apply(route('chat', { drain: { windowSeconds: 2 }, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'chat', port: 80 }] }] }));
  await env.api.apply(slice('chat-b', 'chat', '10.244.0.12', { ready: true, serving: true, terminating: false }));
  await env.api.apply(slice('chat-a', 'chat', '10.244.0.11', { ready: false, serving: true, terminating: true }));
  await waitUntil(() => endpoints().join() === '10.244.0.11:8080 Draining,10.244.0.12:8080 Active', 'Draining and Active published', 20_000);
  await waitUntil(() => settled(2), 'status at generation 2', 20_000);
  await env.api.must('DELETE', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/chat-a');
  await waitUntil(() => endpoints().join() === '10.244.0.12:8080 Active', 'deleted slice gone', 20_000);

  // Nothing was refused, and nothing had to be restarted.
  // (Not a bare "403": epoch milliseconds and resourceVersions contain it by chance.)
  const problems = lines().filter(({ time: _t, ...l }) => /forbidden|HTTP 403|"(status|code)":403\b/i.test(JSON.stringify(l)));
  assert.deepEqual(problems, []);
  const restarts = lines().filter((l) => l['msg'] === 'informer restarting');
  assert.deepEqual(restarts, []);
  await env.api.must('DELETE', `${routesPath()}/chat`);
});

/** A KubeClient as the chart's ServiceAccount that counts its Lease calls (the elector's attempts). */
function countingClient(): { client: KubeClient; calls: string[] } {
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: env.kubeconfigWithToken(saToken, 'wsgate') } });
  const calls: string[] = [];
  for (const m of ['getLease', 'createLease', 'updateLease'] as const) {
    const orig = client[m].bind(client) as (...a: unknown[]) => Promise<unknown>;
    (client as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => (calls.push(m), orig(...a));
  }
  return { client, calls };
}

test('leader election on a real Lease: one leader, release on stop and takeover, expiry on the injected clock', async (t) => {
  if (missing) return t.skip(missing);
  const events: string[] = [];
  const elector = (identity: string, name: string, now?: () => number) => {
    const { client, calls } = countingClient();
    const e = new LeaderElector({
      client, namespace: 'wsgate', name, identity, log: silent, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 50,
      onStartedLeading: () => events.push(`${identity} start`), onStoppedLeading: () => events.push(`${identity} stop`), ...(now ? { now } : {}),
    });
    t.after(() => e.stop());
    return { e, calls };
  };
  type LeaseBody = { spec: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string; acquireTime?: string; leaseDurationSeconds?: number } };
  const lease = async (name: string): Promise<LeaseBody['spec']> => ((await env.api.must('GET', `/apis/coordination.k8s.io/v1/namespaces/wsgate/leases/${name}`)) as unknown as LeaseBody).spec;

  const a = elector('a', 'election');
  a.e.start();
  await waitUntil(() => a.e.isLeader(), 'a leads', 20_000);
  const b = elector('b', 'election');
  b.e.start();
  // b tries several times while a renews: the real server's resourceVersion check keeps a single leader.
  await waitUntil(() => b.calls.length >= 10 && a.calls.filter((c) => c === 'updateLease').length >= 5, 'several rounds of both', 20_000);
  assert.equal(b.e.isLeader(), false);
  assert.equal((await lease('election')).holderIdentity, 'a');
  const held = await lease('election');
  assert.match(String(held.renewTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime accepted by the real server');
  assert.match(String(held.acquireTime), /\.\d{6}Z$/);
  assert.equal(held.leaseDurationSeconds, 3);
  await a.e.stop();
  await waitUntil(() => b.e.isLeader(), 'b takes over the released lease', 20_000);
  assert.deepEqual(events, ['a start', 'a stop', 'b start']);
  assert.deepEqual(await lease('election').then((l) => [l.holderIdentity, l.leaseTransitions]), ['b', 1]);

  // A holder that vanished without releasing: the lease is taken only once it expired on the candidate's clock.
  await env.api.must('POST', '/apis/coordination.k8s.io/v1/namespaces/wsgate/leases', {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'orphaned', namespace: 'wsgate' },
    spec: { holderIdentity: 'ghost', leaseDurationSeconds: 15, renewTime: '2026-01-01T00:00:00.000000Z', acquireTime: '2026-01-01T00:00:00.000000Z', leaseTransitions: 2 },
  });
  let clock = 1_000_000;
  const c = elector('c', 'orphaned', () => clock);
  c.e.start();
  await waitUntil(() => c.calls.length >= 5, 'a few attempts', 20_000);
  assert.equal(c.e.isLeader(), false, 'still valid: 15 s have not passed on the candidate\'s clock');
  assert.deepEqual([...new Set(c.calls)], ['getLease']);
  clock += 15_001;
  await waitUntil(() => c.e.isLeader(), 'c takes the expired lease', 20_000);
  assert.deepEqual(await lease('orphaned').then((l) => [l.holderIdentity, l.leaseTransitions]), ['c', 3]);
  assert.deepEqual(events.slice(3), ['c start']);
});

test('watches the server ends are resumed without a restart, and changes made across them arrive', async (t) => {
  if (missing) return t.skip(missing);
  const connects: string[] = [];
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: env.kubeconfigWithToken(saToken, 'wsgate') } });
  const lw = client.listWatch.bind(client);
  // Count the list+watch generations and the watch reconnects the server's timeoutSeconds causes.
  client.listWatch = (resource, o, h) => lw(resource, o, { ...h, onActivity: (k) => (k === 'connect' && connects.push(resource), h.onActivity(k)) });
  const restarts: string[] = [];
  const source = new KubernetesSource({
    client, log: silent, onRestart: (r, why) => restarts.push(`${r}:${why}`),
    // The server ends each watch after 1 s; the watchdog is far away, the periodic relist off.
    timings: { watchTimeoutSeconds: [1, 1.01], watchdogMs: 60_000, relistIntervalMs: 0, backoff: { initialMs: 5, maxMs: 50, resetAfterMs: 120_000, fastMaxMs: 10, fastForMs: 60_000 } },
  });
  await source.start();
  t.after(() => source.stop());
  await source.whenSynced();
  const svc = (name: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 8080 }] } });
  const names = (): string[] => source.current().services.map((s) => s.metadata.name).filter((n) => n.startsWith('w-')).sort();
  for (let i = 0; i < 3; i++) {
    const before = connects.filter((r) => r === 'services').length;
    await waitUntil(() => connects.filter((r) => r === 'services').length > before, `a re-watch of services (${i})`, 20_000);
    await env.api.apply(svc(`w-${i}`));
    await waitUntil(() => names().length === i + 1, `w-${i} seen`, 20_000);
  }
  await env.api.must('DELETE', '/api/v1/namespaces/default/services/w-1');
  await waitUntil(() => names().join() === 'w-0,w-2', 'delete seen', 20_000);
  assert.deepEqual(restarts, [], 'a server-side watch timeout is not an error');
});

test('periodic relists on a real server replace the cache wholesale, with no restart and nothing lost', async (t) => {
  if (missing) return t.skip(missing);
  const generations: string[] = [];
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: env.kubeconfigWithToken(saToken, 'wsgate') } });
  const lw = client.listWatch.bind(client);
  client.listWatch = (resource, o, h) => (generations.push(resource), lw(resource, o, h));
  const restarts: string[] = [];
  const source = new KubernetesSource({ client, log: silent, onRestart: (r, why) => restarts.push(`${r}:${why}`), timings: { relistIntervalMs: 300, watchdogMs: 60_000 } });
  await source.start();
  t.after(() => source.stop());
  await source.whenSynced();
  const slices = (): string[] => source.current().endpointSlices.map((s) => s.metadata.name).filter((n) => n.startsWith('relist-')).sort();
  const count = (): number => generations.filter((r) => r === 'endpointslices').length;
  for (let i = 0; i < 3; i++) {
    const before = count();
    await waitUntil(() => count() > before, `relist ${i}`, 20_000);
    await env.api.apply(slice(`relist-${i}`, 'relist', `10.244.1.${i + 1}`, { ready: true, serving: true, terminating: false }));
    if (i > 0) await env.api.must('DELETE', `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/relist-${i - 1}`);
    await waitUntil(() => slices().join() === `relist-${i}`, `only relist-${i} in the cache`, 20_000);
  }
  assert.deepEqual(restarts, [], 'a planned relist is not a restart');
  assert.ok(count() >= 4, `list+watch generations: ${count()}`);
});
