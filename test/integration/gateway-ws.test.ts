// End to end with real sockets: Gateway API objects and an Ingress go through their translation and the one
// builder into the proxy, and real ws clients (default options) reach real ws backends through them. Endpoints
// are EndpointSlices on 127.0.0.1, as the Kubernetes source would hand them over.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import type { EndpointSliceLite, RouteObject, ServiceLite } from '../../src/dag/input.ts';
import { createGatewayApiTranslator } from '../../src/dag/gateway/translate.ts';
import type { GatewayApiInput } from '../../src/dag/gateway/types.ts';
import { createIngressTranslator } from '../../src/dag/ingress.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { ConnectionRegistry } from '../../src/proxy/connections.ts';
import { ProxyServer } from '../../src/proxy/proxy-server.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { closed, connectGreeted, silentLog, startNamedBackend, type NamedBackend } from '../support/harness.ts';

let stable: NamedBackend;
let canary: NamedBackend;
let proxy: ProxyServer;
let port: number;
const meta = (namespace: string, name: string, age = 0) => ({ namespace, name, generation: 1, creationTimestamp: new Date(age * 1000).toISOString() });

function service(name: string, appProtocol?: string): ServiceLite {
  return { metadata: { namespace: 'app', name }, spec: { ports: [{ port: 80, ...(appProtocol ? { appProtocol } : {}) }] } } as ServiceLite;
}
function slice(name: string, backend: NamedBackend): EndpointSliceLite {
  return {
    metadata: { namespace: 'app', name: `${name}-1`, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    ports: [{ port: backend.port }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
  };
}

before(async () => {
  stable = await startNamedBackend('stable');
  canary = await startNamedBackend('canary');
  const services = [service('stable', 'kubernetes.io/ws'), service('canary')];
  const gatewayInput: GatewayApiInput = {
    gatewayClasses: [{ metadata: { name: 'wsgate', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } }],
    gateways: [{ metadata: meta('infra', 'gw'), spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: '*.example.com', allowedRoutes: { namespaces: { from: 'All' } } }] } }],
    httpRoutes: [
      {
        metadata: meta('app', 'chat'),
        spec: {
          parentRefs: [{ name: 'gw', namespace: 'infra' }],
          hostnames: ['chat.example.com'],
          rules: [
            { matches: [{ path: { type: 'PathPrefix', value: '/ws' }, headers: [{ name: 'X-Canary', value: 'yes' }] }], backendRefs: [{ name: 'canary', port: 80 }] },
            { matches: [{ path: { type: 'PathPrefix', value: '/ws' } }], backendRefs: [{ name: 'stable', port: 80 }] },
          ],
        },
      },
    ],
    referenceGrants: [],
    namespaces: [],
    services,
    secrets: [],
    policies: [{ metadata: meta('app', 'small-messages'), spec: { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'chat' }], limits: { maxMessageBytes: 64 } } }],
  };
  const gw = createGatewayApiTranslator()(gatewayInput, [{ type: 'IPAddress', value: '127.0.0.1' }]);
  const ing = createIngressTranslator()({
    ingressClasses: [{ metadata: { name: 'wsgate' }, spec: { controller: 'wsgate.io/ingress-controller' } }],
    ingresses: [
      {
        metadata: meta('app', 'legacy'),
        spec: { ingressClassName: 'wsgate', rules: [{ host: 'legacy.example.org', http: { paths: [{ path: '/socket', pathType: 'Prefix', backend: { service: { name: 'canary', port: { number: 80 } } } }] } }] },
      },
    ],
    policies: [],
    secrets: [],
  }, []);
  const routes: RouteObject[] = [...gw.routes, ...ing.routes];
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' })({
    routes,
    services,
    endpointSlices: [slice('stable', stable), slice('canary', canary)],
    secrets: [],
  });
  for (const s of built.statuses) assert.equal(s.conditions.find((c) => c.type === 'Accepted')?.status, 'True', `${s.key} accepted`);
  const holder = new SnapshotHolder();
  holder.publish(built.content);
  proxy = new ProxyServer({ holder, log: silentLog, metrics: new Metrics({ defaultMetrics: false }), balancer: new BalancerState(), connections: new ConnectionRegistry(), handshakeTimeoutMs: 5000, maxHeaderBytes: 16384, maxHandshakesInFlight: 1000, closeTimeoutMs: 2000 });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  port = (proxy.server.address() as AddressInfo).port;
});

after(async () => {
  await proxy.close();
  stable.wss.close();
  canary.wss.close();
});

const url = (path: string) => `ws://127.0.0.1:${port}${path}`;

test('HTTPRoute through a Gateway: the path reaches the stable backend, the header match the canary', async () => {
  const a = await connectGreeted(url('/ws/room'), { headers: { host: 'chat.example.com' } });
  const b = await connectGreeted(url('/ws/room'), { headers: { host: 'chat.example.com', 'x-canary': 'yes' } });
  assert.deepEqual([a.backend, b.backend], ['stable', 'canary']);
  // As the upstream conformance case httproute-backend-protocol-websocket: a text and a binary frame come back.
  a.ws.send('Websocket Support!');
  const [text, textIsBinary] = (await once(a.ws, 'message')) as [Buffer, boolean];
  a.ws.send(Buffer.from([1, 2, 3, 4, 5, 6, 7]));
  const [bin, binIsBinary] = (await once(a.ws, 'message')) as [Buffer, boolean];
  assert.deepEqual([text.toString(), textIsBinary, [...bin], binIsBinary], ['Websocket Support!', false, [1, 2, 3, 4, 5, 6, 7], true]);
  const ends = Promise.all([closed(a.ws), closed(b.ws)]);
  a.ws.close(1000);
  b.ws.close(1000);
  assert.deepEqual((await ends).map((e) => e.code), [1000, 1000]);
});

test('the WebSocketPolicy attached to the HTTPRoute applies: a message over its maxMessageBytes closes with 1009', async () => {
  const { ws } = await connectGreeted(url('/ws'), { headers: { host: 'chat.example.com' } });
  const end = closed(ws);
  ws.send(Buffer.alloc(65));
  assert.equal((await end).code, 1009);
});

test('a host outside the route hostnames is not routed (404)', async () => {
  const ws = new WebSocket(url('/ws'), { headers: { host: 'other.example.com' } });
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
  assert.equal(res.statusCode, 404);
});

test('an Ingress rule forwards a ws connection to its Service', async () => {
  const { ws, backend } = await connectGreeted(url('/socket/x'), { headers: { host: 'legacy.example.org' } });
  assert.equal(backend, 'canary');
  const end = closed(ws);
  ws.close(1000);
  assert.equal((await end).code, 1000);
});
