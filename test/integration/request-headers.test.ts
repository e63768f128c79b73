// A rule's request header rewrite, end to end with real sockets: Gateway API objects and WebSocketRoutes go through
// the routing builder into the proxy, real ws clients (default options) upgrade through it, and a real backend
// records the request it was sent. The HTTPRoute and its cases are the upstream conformance case
// httproute-request-header-modifier (kubernetes-sigs/gateway-api v1.6.1,
// conformance/tests/httproute-request-header-modifier.go and .yaml): set overwrites, add appends to an existing
// header comma-joined ("some-other-value,add-appends-values"), remove, several at once, and names compared
// case-insensitively. A route that names a header wsgate writes on the upgrade is refused with the field path;
// every other route keeps serving.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import type { EndpointSliceLite, RouteObject, ServiceLite } from '../../src/dag/input.ts';
import type { GatewayApiInput } from '../../src/dag/gateway/types.ts';
import { createRoutingBuilder, type RoutingBuildResult } from '../../src/dag/routing-apis.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { affinityHooks, type AffinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { ConnectionRegistry } from '../../src/proxy/connections.ts';
import { ProxyServer } from '../../src/proxy/proxy-server.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { systemClock } from '../../src/util/clock.ts';
import { closed, routeObject, silentLog } from '../support/harness.ts';

/** What the backend was sent: the request line's path and the header lines as received. */
interface Seen {
  readonly url: string;
  readonly rawHeaders: readonly string[];
}

let backend: http.Server;
let wss: WebSocketServer;
let proxy: ProxyServer;
let hooks: AffinityHooks;
let built: RoutingBuildResult;
let holder: SnapshotHolder;
let port: number;
/** Builds these WebSocketRoutes with the Gateway API objects of the test; the result is what the proxy serves once published. */
let rebuild: (routes: RouteObject[]) => RoutingBuildResult;
const seen: Seen[] = [];

const meta = (namespace: string, name: string, age = 0) => ({ namespace, name, generation: 1, creationTimestamp: new Date(age * 1000).toISOString() });
const rule = (path: string, requestHeaderModifier: Record<string, unknown>) => ({
  matches: [{ path: { type: 'PathPrefix', value: path } }],
  filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier }],
  backendRefs: [{ name: 'infra-backend-v1', port: 8080 }],
});

before(async () => {
  backend = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', rawHeaders: req.rawHeaders });
    res.end('ok');
  });
  // Recorded before the ws server answers: the request reached the backend before the client can see the 101.
  backend.on('upgrade', (req: http.IncomingMessage) => seen.push({ url: req.url ?? '', rawHeaders: req.rawHeaders }));
  wss = new WebSocketServer({ server: backend });
  wss.on('connection', (ws) => ws.on('error', () => {}));
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const backendAddress = `127.0.0.1:${(backend.address() as AddressInfo).port}`;

  const services: ServiceLite[] = [{ metadata: { namespace: 'gateway-conformance-infra', name: 'infra-backend-v1' }, spec: { ports: [{ port: 8080 }] } } as ServiceLite];
  const slices: EndpointSliceLite[] = [{
    metadata: { namespace: 'gateway-conformance-infra', name: 'infra-backend-v1-1', labels: { 'kubernetes.io/service-name': 'infra-backend-v1' } },
    addressType: 'IPv4',
    ports: [{ port: (backend.address() as AddressInfo).port }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
  }];
  const gatewayApi: Omit<GatewayApiInput, 'services' | 'secrets' | 'policies'> = {
    gatewayClasses: [{ metadata: { name: 'wsgate', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } }],
    gateways: [{ metadata: meta('gateway-conformance-infra', 'same-namespace'), spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } }],
    httpRoutes: [
      {
        metadata: meta('gateway-conformance-infra', 'request-header-modifier'),
        spec: {
          parentRefs: [{ name: 'same-namespace' }],
          hostnames: ['conformance.example.com'],
          rules: [
            rule('/set', { set: [{ name: 'X-Header-Set', value: 'set-overwrites-values' }] }),
            rule('/add', { add: [{ name: 'X-Header-Add', value: 'add-appends-values' }] }),
            rule('/remove', { remove: ['X-Header-Remove'] }),
            rule('/multiple', {
              set: [{ name: 'X-Header-Set-1', value: 'header-set-1' }, { name: 'X-Header-Set-2', value: 'header-set-2' }],
              add: [{ name: 'X-Header-Add-1', value: 'header-add-1' }, { name: 'X-Header-Add-2', value: 'header-add-2' }, { name: 'X-Header-Add-3', value: 'header-add-3' }],
              remove: ['X-Header-Remove-1', 'X-Header-Remove-2'],
            }),
            rule('/case-insensitivity', {
              set: [{ name: 'X-Header-Set', value: 'header-set' }],
              add: [{ name: 'X-Header-Add', value: 'header-add' }],
              remove: ['X-Header-Remove'],
            }),
          ],
        },
      },
      {
        metadata: meta('gateway-conformance-infra', 'touches-upgrade', 1),
        spec: { parentRefs: [{ name: 'same-namespace' }], hostnames: ['bad-httproute.example.com'], rules: [rule('/', { add: [{ name: 'Upgrade', value: 'h2c' }] })] },
      },
    ],
    referenceGrants: [],
    namespaces: [],
  };
  const routes: RouteObject[] = [
    routeObject('poll', {
      hostnames: ['poll.example.com'],
      httpFallback: { enabled: true },
      rules: [{ backendRefs: [{ endpoints: [backendAddress] }], requestHeaders: { set: [{ name: 'X-Tenant', value: 'blue' }], remove: ['X-Debug'] } }],
    }),
    routeObject('touches-upgrade', {
      hostnames: ['bad.example.com'],
      rules: [{ backendRefs: [{ endpoints: [backendAddress] }], requestHeaders: { set: [{ name: 'X-Fine', value: 'a' }, { name: 'upgrade', value: 'h2c' }] } }],
    }),
    routeObject('plain', { hostnames: ['plain.example.com'], rules: [{ backendRefs: [{ endpoints: [backendAddress] }] }] }),
  ];
  const build = createRoutingBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'kubernetes' });
  rebuild = (rs) => build({ routes: rs, services, endpointSlices: slices, secrets: [], routingApis: { addresses: [{ type: 'IPAddress', value: '127.0.0.1' }], policies: [], gatewayApi } });
  built = rebuild(routes);
  holder = new SnapshotHolder();
  holder.publish(built.content);
  const balancer = new BalancerState();
  const metrics = new Metrics({ defaultMetrics: false });
  hooks = affinityHooks({ secret: 's', className: 'wsgate', log: silentLog, balancer, clock: systemClock(), metrics });
  proxy = new ProxyServer({
    holder, log: silentLog, metrics, balancer, connections: new ConnectionRegistry(), handshakeTimeoutMs: 5000, maxHeaderBytes: 16384, maxHandshakesInFlight: 1000, closeTimeoutMs: 2000,
    hooks: { admission: hooks.admission, httpFallback: hooks.httpFallback },
  });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  port = (proxy.server.address() as AddressInfo).port;
});

after(async () => {
  await proxy.close();
  hooks.close();
  wss.close();
  backend.closeAllConnections();
  backend.close();
});

/** The header lines the backend got whose names are among `names` (case-insensitive), in the order received. */
function linesNamed(s: Seen, names: readonly string[]): string[] {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const out: string[] = [];
  for (let i = 0; i < s.rawHeaders.length; i += 2) if (wanted.has(s.rawHeaders[i]!.toLowerCase())) out.push(`${s.rawHeaders[i]}: ${s.rawHeaders[i + 1]}`);
  return out;
}

/** Upgrades through wsgate with these headers; the lines the backend received that carry the named headers. */
async function upgradeSeen(host: string, path: string, headers: Record<string, string>, names: readonly string[]): Promise<string[]> {
  const n = seen.length;
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: { host, ...headers } });
  ws.on('error', () => {});
  await once(ws, 'open');
  const end = closed(ws);
  ws.close(1000);
  assert.equal((await end).code, 1000);
  const s = seen[n];
  assert.ok(s && seen.length === n + 1, 'one request reached the backend');
  assert.equal(s.url, path);
  return linesNamed(s, names);
}

const conformance = 'conformance.example.com';

test('conformance httproute-request-header-modifier: set overwrites, whether or not the client sent the header', async () => {
  const names = ['Some-Other-Header', 'X-Header-Set'];
  assert.deepEqual(await upgradeSeen(conformance, '/set', { 'Some-Other-Header': 'val' }, names), ['Some-Other-Header: val', 'X-Header-Set: set-overwrites-values']);
  assert.deepEqual(
    await upgradeSeen(conformance, '/set', { 'Some-Other-Header': 'val', 'X-Header-Set': 'some-other-value' }, names),
    ['Some-Other-Header: val', 'X-Header-Set: set-overwrites-values'],
  );
});

test('conformance httproute-request-header-modifier: add appends to the client header comma-joined, or adds it', async () => {
  const names = ['Some-Other-Header', 'X-Header-Add'];
  assert.deepEqual(await upgradeSeen(conformance, '/add', { 'Some-Other-Header': 'val' }, names), ['Some-Other-Header: val', 'X-Header-Add: add-appends-values']);
  assert.deepEqual(
    await upgradeSeen(conformance, '/add', { 'Some-Other-Header': 'val', 'X-Header-Add': 'some-other-value' }, names),
    ['Some-Other-Header: val', 'X-Header-Add: some-other-value,add-appends-values'],
  );
});

test('conformance httproute-request-header-modifier: remove', async () => {
  assert.deepEqual(await upgradeSeen(conformance, '/remove', { 'X-Header-Remove': 'val' }, ['X-Header-Remove']), []);
});

test('conformance httproute-request-header-modifier: several sets, adds and removes in one filter', async () => {
  const got = await upgradeSeen(
    conformance,
    '/multiple',
    { 'X-Header-Set-2': 'set-val-2', 'X-Header-Add-2': 'add-val-2', 'X-Header-Remove-2': 'remove-val-2', 'Another-Header': 'another-header-val' },
    ['X-Header-Set-1', 'X-Header-Set-2', 'X-Header-Add-1', 'X-Header-Add-2', 'X-Header-Add-3', 'X-Header-Remove-1', 'X-Header-Remove-2', 'Another-Header'],
  );
  assert.deepEqual(got.sort(), [
    'Another-Header: another-header-val',
    'X-Header-Add-1: header-add-1',
    'X-Header-Add-2: add-val-2,header-add-2',
    'X-Header-Add-3: header-add-3',
    'X-Header-Set-1: header-set-1',
    'X-Header-Set-2: header-set-2',
  ]);
});

test('conformance httproute-request-header-modifier: the filter names match the client names case-insensitively', async () => {
  const got = await upgradeSeen(
    conformance,
    '/case-insensitivity',
    { 'x-header-set': 'original-val-set', 'x-header-add': 'original-val-add', 'x-header-remove': 'original-val-remove', 'Another-Header': 'another-header-val' },
    ['X-Header-Set', 'X-Header-Add', 'X-Header-Remove', 'Another-Header'],
  );
  assert.deepEqual(got.sort(), ['Another-Header: another-header-val', 'X-Header-Set: header-set', 'x-header-add: original-val-add,header-add']);
});

test('the upgrade itself is untouched by a rewrite: wsgate still writes the upgrade pair and the forwarded headers', async () => {
  const got = await upgradeSeen(conformance, '/set', {}, ['Connection', 'Upgrade', 'X-Forwarded-Proto', 'X-Forwarded-Host']);
  assert.deepEqual(got, ['Connection: Upgrade', 'Upgrade: websocket', 'X-Forwarded-Proto: http', 'X-Forwarded-Host: conformance.example.com']);
});

test('a route that rewrites Upgrade is refused with the field path; the other routes keep serving', async () => {
  const accepted = (key: string) => built.statuses.find((s) => s.key === key)?.conditions.find((c) => c.type === 'Accepted');
  assert.deepEqual(accepted('default/touches-upgrade'), {
    type: 'Accepted',
    status: 'False',
    reason: 'InvalidSpec',
    message: 'spec.rules[0].requestHeaders.set[1].name: "upgrade" is a header wsgate writes on the upgrade, which a route cannot rewrite (see the field description)',
    observedGeneration: 1,
  });
  const httpRoute = built.routingApis?.httpRoutes.find((r) => r.name === 'touches-upgrade');
  assert.deepEqual(
    httpRoute?.parents.map((p) => p.conditions.find((c) => c.type === 'Accepted')).map((c) => `${c?.status} ${c?.reason}: ${c?.message}`),
    ['False UnsupportedValue: not supported by wsgate: spec.rules[0].filters[0].requestHeaderModifier.add[0].name Upgrade (written by wsgate on the upgrade)'],
  );
  for (const host of ['bad.example.com', 'bad-httproute.example.com']) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host } });
    ws.on('error', () => {});
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    assert.equal(res.statusCode, 404, `${host} is not served`);
  }
  assert.deepEqual(await upgradeSeen('plain.example.com', '/', { 'X-Fine': 'client' }, ['X-Fine']), ['X-Fine: client']);
  assert.equal(accepted('default/plain')?.status, 'True');
});

test('the HTTP fallback forwards the rewritten headers too', async () => {
  const n = seen.length;
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/poll', headers: { host: 'poll.example.com', 'X-Tenant': 'red', 'X-Debug': '1', 'X-Kept': 'k' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(body, 'ok');
  assert.equal(seen.length, n + 1);
  assert.deepEqual(linesNamed(seen[n]!, ['X-Tenant', 'X-Debug', 'X-Kept']), ['X-Kept: k', 'X-Tenant: blue']);
});

test('a changed rewrite applies from the next snapshot on: the rule carries it, nothing is kept per connection', async () => {
  const address = built.content.routes.get('default/plain')!.rules[0]!.backends[0]!.endpoints[0]!.address;
  const plain = routeObject('plain', { hostnames: ['plain.example.com'], rules: [{ backendRefs: [{ endpoints: [address] }], requestHeaders: { add: [{ name: 'X-Fine', value: 'route' }] } }] });
  try {
    holder.publish(rebuild([plain]).content);
    assert.deepEqual(await upgradeSeen('plain.example.com', '/', { 'X-Fine': 'client' }, ['X-Fine']), ['X-Fine: client,route']);
  } finally {
    holder.publish(built.content);
  }
  assert.deepEqual(await upgradeSeen('plain.example.com', '/', { 'X-Fine': 'client' }, ['X-Fine']), ['X-Fine: client']);
});
