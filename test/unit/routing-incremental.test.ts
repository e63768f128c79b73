// The incremental build behind translated routes: a slice change behind an HTTPRoute or an Ingress is built
// from the last build (not in full), rebuilds the translated and WebSocketRoutes naming that Service, and comes
// out as the full build would; the routing-API statuses are the previous object when no rebuilt translated
// route's status changed, and folded again when one did.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createContentHasher } from '../../src/dag/build.ts';
import type { GatewayClassLite, GatewayLite, HTTPRouteLite } from '../../src/dag/gateway/types.ts';
import type { IncrementalResult } from '../../src/dag/incremental.ts';
import type { IngressClassLite, IngressLite } from '../../src/dag/ingress.ts';
import type { BuildOptions, EndpointSliceLite, RouteObject, ServiceLite } from '../../src/dag/input.ts';
import { createRoutingBuilder } from '../../src/dag/routing-apis.ts';
import { fullRoutingBuild, rebuildRoutingServices, type RoutingBuildState } from '../../src/dag/routing-incremental.ts';
import { ObjectStore } from '../../src/workers/object-store.ts';
import { assertSameBuild } from '../support/snapshot-view.ts';

const ns = 'apps';
const options: BuildOptions = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' };
const routing = { gatewayApi: true, ingress: true };
const meta = (name: string) => ({ namespace: ns, name, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' });

const wsRoute: RouteObject = {
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: meta('ws'),
  spec: { hostnames: ['ws.example'], rules: [{ backendRefs: [{ name: 'shared', port: 80 }] }] },
};
const httpRoute: HTTPRouteLite = {
  metadata: meta('hr'),
  spec: { parentRefs: [{ name: 'edge' }], hostnames: ['hr.example'], rules: [{ backendRefs: [{ name: 'shared', port: 80 }] }] },
};
const ingress: IngressLite = {
  metadata: meta('ing'),
  spec: { ingressClassName: 'wsgate', rules: [{ host: 'i.example', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'ingress-only', port: { number: 80 } } } }] } }] },
};
const service = (name: string): ServiceLite => ({ metadata: { namespace: ns, name }, spec: { ports: [{ name: 'ws', port: 80 }] } });
const slice = (name: string, endpoints: readonly [string, boolean][]): EndpointSliceLite => ({
  metadata: { namespace: ns, name: `${name}-x`, labels: { 'kubernetes.io/service-name': name } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port: 8080 }],
  endpoints: endpoints.map(([address, ready]) => ({ addresses: [address], conditions: { ready } })),
});
const gatewayClass: GatewayClassLite = { metadata: { name: 'wsgate', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } };
const gateway: GatewayLite = { metadata: meta('edge'), spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } };
const ingressClass: IngressClassLite = { metadata: { name: 'wsgate', generation: 1 }, spec: { controller: 'wsgate.io/ingress-controller' } };

function setup() {
  const hash = createContentHasher();
  const build = createRoutingBuilder(options, hash);
  const objects = new ObjectStore();
  objects.set('gatewayclasses', '/wsgate', gatewayClass);
  objects.set('gateways', `${ns}/edge`, gateway);
  objects.set('ingressclasses', '/wsgate', ingressClass);
  objects.set('websocketroutes', `${ns}/ws`, wsRoute);
  objects.set('httproutes', `${ns}/hr`, httpRoute);
  objects.set('ingresses', `${ns}/ing`, ingress);
  for (const name of ['shared', 'ingress-only']) {
    objects.set('services', `${ns}/${name}`, service(name));
    objects.set('endpointslices', `${ns}/${name}-x`, slice(name, [['10.0.0.1', true]]));
  }
  return { hash, build, objects, first: fullRoutingBuild(build, objects.input(routing)) };
}

/** Sets one slice and builds from `prev` as the thread does; fails if the build is not incremental. */
function sliceChange(s: ReturnType<typeof setup>, prev: RoutingBuildState, name: string, endpoints: readonly [string, boolean][]): RoutingBuildState {
  const change = s.objects.set('endpointslices', `${ns}/${name}-x`, slice(name, endpoints));
  assert.deepEqual(change, { services: [`${ns}/${name}`, `${ns}/${name}`] });
  const next = rebuildRoutingServices(s.build, s.hash, prev, s.objects, new Set([`${ns}/${name}`]));
  assert.ok(next, 'built incrementally');
  assertSameBuild(next.result, createRoutingBuilder(options)(s.objects.input(routing)));
  return next;
}

test('a slice change behind an HTTPRoute rebuilds it and the WebSocketRoute on the same Service, and keeps the routing-API statuses', () => {
  const s = setup();
  // Another address, as many ready: the routes' endpoints change, their statuses do not.
  const next = sliceChange(s, s.first, 'shared', [['10.0.0.2', true]]);
  const { delta } = next.result as IncrementalResult;
  assert.deepEqual({ from: delta.from === s.first.result, routes: delta.routes, segments: delta.segments }, { from: true, routes: ['apps/httproute:hr', 'apps/ws'], segments: ['svc:apps/shared|'] });
  assert.equal(next.result.routingApis, s.first.result.routingApis, 'no verdict changed: the same statuses');
});

test('a slice change behind an Ingress that takes its endpoints out of ready folds the routing-API statuses again, as a full build would', () => {
  const s = setup();
  const next = sliceChange(s, s.first, 'ingress-only', [['10.0.0.1', false]]);
  assert.deepEqual((next.result as IncrementalResult).delta.routes, ['apps/ingress:ing:i.example']);
  assert.notEqual(next.result.routingApis, s.first.result.routingApis, 'the Ingress route\'s status changed: folded again');
  const back = sliceChange(s, next, 'ingress-only', [['10.0.0.1', true]]);
  assert.deepEqual(back.result.routingApis, s.first.result.routingApis);
});
