// The Gateway API and Ingress in Kubernetes mode end to end: serve() with --kubernetes against the fake API
// server, with the upstream Gateway API CRDs (standard channel v1.6.1, test/fixtures/gateway-api) and the
// WebSocketPolicy CRD registered, real ws echo backends on 127.0.0.1 behind a Service and its EndpointSlice.
// A GatewayClass + Gateway + HTTPRoute, and an IngressClass + Ingress, each carry a real ws client through
// wsgate to the backend, built in the build thread; an HTTPRoute's path change is served while a socket opened
// before it stays open. Without the Gateway API CRDs, wsgate logs one line and serves WebSocketRoutes; with
// --no-watch-ingress no Ingress request reaches the server. The source hands the published Service's address
// to the translation and keeps each object's server-side status for the status writer; one it may not read
// leaves Gateways without an address and the routes served.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import * as yaml from 'js-yaml';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { createRoutingBuilder } from '../../src/dag/routing-apis.ts';
import { KubeClient } from '../../src/kube/kube-client.ts';
import { serve, type Running } from '../../src/main.ts';
import { KubernetesSource } from '../../src/sources/kubernetes/source.ts';
import { FakeApiServer, resourceFromCrd, waitUntil, type KObject } from '../support/fake-apiserver/index.ts';
import { closed, connect, echoThrough as echoThroughPort, nextMessage, rawExchange, silentLog, startEcho, upgradeRequest, type Echo } from '../support/harness.ts';

const root = join(import.meta.dirname, '..', '..');
const gw = 'gateway.networking.k8s.io/v1';

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

/** A logger whose lines the test reads (JSON, one object per line). */
function capturingLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

/** The CRDs a cluster installs from the Gateway API release, and wsgate's WebSocketPolicy CRD. */
function registerCrds(fake: FakeApiServer): void {
  const files = ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants'].map((f) => join(root, 'test/fixtures/gateway-api', `${f}.yaml`));
  files.push(join(root, 'crds/wsgate.io_websocketpolicies.yaml'));
  for (const f of files) for (const crd of yaml.loadAll(readFileSync(f, 'utf8'))) if (crd) fake.register(resourceFromCrd(crd as Parameters<typeof resourceFromCrd>[0]));
}

const service = (name: string, namespace = 'default'): KObject => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace },
  spec: { ports: [{ name: 'ws', port: 80, targetPort: 'ws' }] },
});

const slice = (name: string, svc: string, port: number): KObject => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port, protocol: 'TCP' }],
  endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: `${name}-0` } }],
});

const gatewayClass: KObject = { apiVersion: gw, kind: 'GatewayClass', metadata: { name: 'wsgate' }, spec: { controllerName: 'wsgate.io/gateway-controller' } };
const gateway: KObject = {
  apiVersion: gw, kind: 'Gateway', metadata: { name: 'edge', namespace: 'default' },
  spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } }] },
};
const httpRoute = (path: string): KObject => ({
  apiVersion: gw, kind: 'HTTPRoute', metadata: { name: 'chat', namespace: 'default' },
  spec: { parentRefs: [{ name: 'edge' }], rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ name: 'chat', port: 80 }] }] },
});
const ingressClass: KObject = { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'wsgate' }, spec: { controller: 'wsgate.io/ingress-controller' } };
const ingress: KObject = {
  apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'chat', namespace: 'default' },
  spec: { ingressClassName: 'wsgate', rules: [{ http: { paths: [{ path: '/ing', pathType: 'Prefix', backend: { service: { name: 'chat', port: { number: 80 } } } }] } }] },
};
/** The Service wsgate runs behind, with the address its load balancer got. */
const published: KObject = {
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'wsgate', namespace: 'wsgate' },
  spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } },
};

let fake: FakeApiServer;
let dir: string;
let echo: Echo;
const running: Running[] = [];

function args(kubeconfig: string, extra: string[] = []): string[] {
  return [
    '--kubernetes', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--pod-name', 'gw-test',
    '--no-leader-election', '--informer-watchdog-seconds', '2', '--build-holdoff-ms', '10', '--build-max-holdoff-ms', '200',
    '--shutdown-delay-seconds', '0', '--drain-seconds', '1', '--publish-service', 'wsgate/wsgate', ...extra,
  ];
}

async function start(server: FakeApiServer, name: string, log: pino.Logger, extra: string[] = []): Promise<Running> {
  const kubeconfig = join(dir, `kubeconfig-${name}`);
  writeFileSync(kubeconfig, server.kubeconfig());
  const r = await serve(loadConfig(args(kubeconfig, extra), {}), log);
  running.push(r);
  return r;
}

const echoThrough = (r: Running, path: string): Promise<void> => echoThroughPort(r.proxyAddress.port, path);

const upgradeStatus = async (r: Running, path: string): Promise<number> => (await rawExchange(r.proxyAddress.port, upgradeRequest(path))).status;
const served = (r: Running, key: string): boolean => r.holder.current()?.routes.has(key as never) === true;

before(async () => {
  fake = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
  registerCrds(fake);
  dir = mkdtempSync(join(tmpdir(), 'wsgate-gw-'));
  echo = await startEcho();
  for (const o of [service('chat'), slice('chat-0', 'chat', echo.port), published, gatewayClass, gateway, httpRoute('/gw'), ingressClass, ingress]) fake.create(o);
  // A create drops status (the /status subresource sets it), as on a real API server.
  fake.updateStatus({ ...fake.get('v1', 'Service', 'wsgate', 'wsgate'), status: published['status'] });
});

after(async () => {
  for (const r of running) await r.close();
  await echo?.close();
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('an HTTPRoute on a wsgate Gateway and an Ingress of the wsgate IngressClass carry a ws client to the backend, built in the build thread', async () => {
  const { log, lines } = capturingLog();
  const r = await start(fake, 'main', log);
  await waitUntil(() => served(r, 'default/httproute:chat') && served(r, 'default/ingress:chat:*'), 'HTTPRoute and Ingress routes published', 10_000);
  await echoThrough(r, '/gw');
  await echoThrough(r, '/ing');
  const published = lines.filter((l) => l.msg === 'routing table published');
  assert.ok(published.length > 0);
  assert.deepEqual([...new Set(published.map((l) => l['builder']))], ['thread'], 'every build ran in the build thread');
  // Each routing-API kind was listed and is watched (the published Service by name, in its namespace only).
  for (const res of ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants', 'websocketpolicies', 'ingresses', 'ingressclasses', 'namespaces']) {
    assert.ok(fake.requests.some((q) => q.verb === 'list' && q.resource === res && q.status === 200), `${res} listed`);
  }
  const pub = fake.requests.find((q) => q.verb === 'list' && q.resource === 'services' && q.query['fieldSelector'] === 'metadata.name=wsgate');
  assert.equal(pub?.namespace, 'wsgate', 'the published Service is listed by name in its namespace');

  // The path changes; a socket opened before stays open and keeps relaying.
  const ws = await connect(`ws://127.0.0.1:${r.proxyAddress.port}/gw`);
  const gen = r.holder.current()!.generation;
  fake.update({ ...fake.get(gw, 'HTTPRoute', 'default', 'chat'), spec: httpRoute('/gw2')['spec'] });
  await r.holder.waitForGeneration(gen + 1);
  assert.equal(await upgradeStatus(r, '/gw'), 404);
  await echoThrough(r, '/gw2');
  const reply = nextMessage(ws);
  ws.send('still here');
  assert.equal((await reply).data.toString(), 'still here');
  const done = closed(ws);
  ws.close(1000);
  assert.equal((await done).code, 1000);
  await r.close();
  running.splice(running.indexOf(r), 1);
});

test('without the Gateway API CRDs: one log line, no Gateway API request, WebSocketRoutes served; --no-watch-ingress: no Ingress request', async () => {
  const bare = await FakeApiServer.start({ bookmarkIntervalMs: 100 });
  try {
    bare.create(service('chat'));
    bare.create(slice('chat-0', 'chat', echo.port));
    bare.create({ apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'chat', namespace: 'default' }, spec: { rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/wsr' } }], backendRefs: [{ name: 'chat', port: 80 }] }] } });
    const { log, lines } = capturingLog();
    const r = await start(bare, 'bare', log, ['--no-watch-ingress']);
    await waitUntil(() => served(r, 'default/chat'), 'WebSocketRoute published', 10_000);
    await echoThrough(r, '/wsr');
    const off = lines.filter((l) => /Gateway API CRDs are not installed/.test(l.msg));
    assert.equal(off.length, 1, 'one log line says the Gateway API is off');
    assert.equal(bare.requests.filter((q) => q.path.startsWith('/apis/gateway.networking.k8s.io/') && q.verb !== 'discovery').length, 0, 'no Gateway API list or watch');
    assert.equal(bare.requests.filter((q) => q.resource === 'ingresses' || q.resource === 'ingressclasses').length, 0, 'no Ingress list or watch');
    await r.close();
    running.splice(running.indexOf(r), 1);
  } finally {
    await bare.close();
  }
});

test('the source: the published Service address reaches the Gateway and Ingress statuses; each object\'s server-side status is kept', async () => {
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } });
  const source = new KubernetesSource({ client, log: silentLog, onRestart: () => {}, routingApis: { gatewayApi: true, ingress: true, publishService: { namespace: 'wsgate', name: 'wsgate' } } });
  try {
    fake.updateStatus({ ...fake.get(gw, 'HTTPRoute', 'default', 'chat'), status: { parents: [{ parentRef: { name: 'other' }, controllerName: 'example.com/other', conditions: [] }] } });
    await source.start();
    await source.whenSynced();
    assert.deepEqual(source.routingApis(), { gatewayApi: true, ingress: true, policies: true });
    // The first build does not wait for the published Service (see the next test); its list follows.
    await waitUntil(() => (source.current().routingApis?.addresses.length ?? 0) > 0, 'published Service listed', 10_000);
    const input = source.current();
    assert.deepEqual(input.routingApis?.addresses, [{ type: 'IPAddress', value: '192.0.2.10' }]);
    const result = createRoutingBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' })(input);
    assert.deepEqual(result.routingApis?.gateways.map((g) => [g.name, g.addresses]), [['edge', [{ type: 'IPAddress', value: '192.0.2.10' }]]]);
    assert.deepEqual(result.routingApis?.ingresses.map((i) => [i.name, i.loadBalancer]), [['chat', [{ ip: '192.0.2.10' }]]]);
    assert.deepEqual(source.observedRoutingStatus('httproutes', 'default/chat'), { parents: [{ parentRef: { name: 'other' }, controllerName: 'example.com/other', conditions: [] }] });
    // The earlier tests' leaders wrote the GatewayClass status (the routing-API status writer): what the source
    // observes is what the server holds.
    assert.deepEqual(source.observedRoutingStatus('gatewayclasses', 'wsgate'), (fake.get(gw, 'GatewayClass', '', 'wsgate') as { status?: unknown } | undefined)?.status);
  } finally {
    await source.stop();
    client.close();
  }
});

test('a published Service wsgate may not read (403: a namespace its RBAC does not cover) leaves Gateways without an address, not the table unbuilt', async () => {
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } });
  const source = new KubernetesSource({
    client,
    log: silentLog,
    onRestart: () => {},
    routingApis: { gatewayApi: true, ingress: false, publishService: { namespace: 'elsewhere', name: 'wsgate' } },
  });
  fake.faults.failNext({ resource: 'services', namespace: 'elsewhere', status: 403, count: 1_000_000 });
  try {
    await source.start();
    await source.whenSynced();
    assert.ok(source.synced());
    const result = createRoutingBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' })(source.current());
    assert.ok(result.content.routes.has('default/httproute:chat' as never), 'the HTTPRoute is served');
    const edge = result.routingApis?.gateways.find((g) => g.name === 'edge');
    assert.deepEqual(edge?.addresses, []);
    assert.equal(edge?.conditions.find((c) => c.type === 'Programmed')?.reason, 'AddressNotAssigned');
  } finally {
    await source.stop();
    client.close();
    fake.faults.clearRequestFaults();
  }
});
