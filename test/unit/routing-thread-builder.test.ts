// The build thread with the Gateway API and Ingress on: after any sequence of changes to HTTPRoutes, Ingresses,
// WebSocketRoutes, Services (their appProtocol too) and EndpointSlices (endpoints ready and not), its result
// (full, or incremental when only slices changed, behind WebSocketRoutes, HTTPRoutes or the Ingress) equals
// createRoutingBuilder's full build on this thread, the routing-API statuses included.
import { test } from 'node:test';
import fc from 'fast-check';
import { ThreadBuilder } from '../../src/controller/thread-builder.ts';
import type { GatewayClassLite, GatewayLite, HTTPRouteLite } from '../../src/dag/gateway/types.ts';
import type { IngressClassLite, IngressLite } from '../../src/dag/ingress.ts';
import type { BuildOptions, EndpointSliceLite, RouteObject, ServiceLite } from '../../src/dag/input.ts';
import { createRoutingBuilder } from '../../src/dag/routing-apis.ts';
import type { ObjectKind, SourceObject } from '../../src/sources/source.ts';
import { RoutingMapSource } from '../support/routing-map-source.ts';
import { assertSameBuild } from '../support/snapshot-view.ts';

const ns = 'apps';
const options: BuildOptions = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' };
const meta = (name: string, i = 0) => ({ namespace: ns, name, generation: 1, creationTimestamp: `2026-01-01T00:00:0${i}Z` });

const wsRoute = (i: number, svc: number, path: string): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: meta(`r${i}`, i),
  spec: { hostnames: ['h.example'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ name: `s${svc}`, port: 80 }] }] },
});
const httpRoute = (i: number, svc: number, path: string): HTTPRouteLite => ({
  metadata: meta(`hr${i}`, i + 5),
  spec: { parentRefs: [{ name: 'edge' }], hostnames: ['h.example'], rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ name: `s${svc}`, port: 80 }] }] },
});
const ingress = (svc: number, path: string): IngressLite => ({
  metadata: meta('ing', 9),
  spec: { ingressClassName: 'wsgate', rules: [{ host: 'i.example', http: { paths: [{ path, pathType: 'Prefix', backend: { service: { name: `s${svc}`, port: { number: 80 } } } }] } }] },
});
const service = (svc: number, appProtocol: string | undefined): ServiceLite => ({
  metadata: { namespace: ns, name: `s${svc}` },
  spec: { ports: [{ name: 'ws', port: 80, ...(appProtocol ? { appProtocol } : {}) }] },
});
const slice = (svc: number, addrs: readonly { a: number; ready: boolean }[]): EndpointSliceLite => ({
  metadata: { namespace: ns, name: `s${svc}-x`, labels: { 'kubernetes.io/service-name': `s${svc}` } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port: 8080 }],
  endpoints: addrs.map(({ a, ready }) => ({ addresses: [`10.0.${svc}.${a}`], conditions: { ready } })),
});
const gatewayClass: GatewayClassLite = { metadata: { name: 'wsgate', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } };
const gateway: GatewayLite = { metadata: meta('edge'), spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } };
const ingressClass: IngressClassLite = { metadata: { name: 'wsgate', generation: 1 }, spec: { controller: 'wsgate.io/ingress-controller' } };

const step = fc.oneof(
  // Services 4 and 5 only WebSocketRoutes name; 0 to 3 HTTPRoutes and the Ingress may name too. A change to
  // slices alone takes the incremental path whoever names the Service.
  fc.record({ kind: fc.constant('websocketroutes' as const), i: fc.nat(2), svc: fc.nat(5), path: fc.constantFrom('/a', '/b'), del: fc.boolean() }),
  fc.record({ kind: fc.constant('httproutes' as const), i: fc.nat(2), svc: fc.nat(3), path: fc.constantFrom('/a', '/c'), del: fc.boolean() }),
  fc.record({ kind: fc.constant('ingresses' as const), svc: fc.nat(3), path: fc.constantFrom('/x', '/y'), del: fc.boolean() }),
  fc.record({ kind: fc.constant('services' as const), svc: fc.nat(3), app: fc.constantFrom(undefined, 'kubernetes.io/ws', 'grpc'), del: fc.boolean() }),
  fc.record({
    kind: fc.constant('endpointslices' as const),
    svc: fc.nat(5),
    addrs: fc.uniqueArray(fc.record({ a: fc.integer({ min: 1, max: 6 }), ready: fc.boolean() }), { maxLength: 3, selector: (e) => e.a }),
    del: fc.boolean(),
  }),
);
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function apply(s: Step): { kind: ObjectKind; key: string; obj?: SourceObject } {
  const put = (kind: ObjectKind, key: string, obj: SourceObject) => ({ kind, key, ...(s.del ? {} : { obj }) });
  switch (s.kind) {
    case 'websocketroutes':
      return put(s.kind, `${ns}/r${s.i}`, wsRoute(s.i, s.svc, s.path));
    case 'httproutes':
      return put(s.kind, `${ns}/hr${s.i}`, httpRoute(s.i, s.svc, s.path));
    case 'ingresses':
      return put(s.kind, `${ns}/ing`, ingress(s.svc, s.path));
    case 'services':
      return put(s.kind, `${ns}/s${s.svc}`, service(s.svc, s.app));
    case 'endpointslices':
      return put(s.kind, `${ns}/s${s.svc}-x`, slice(s.svc, s.addrs));
  }
}



test('build thread with the routing APIs: random change sequences give createRoutingBuilder\'s full build, statuses included', async () => {
  const full = createRoutingBuilder(options);
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), fc.array(fc.array(step, { maxLength: 3 }), { minLength: 1, maxLength: 6 }), async (initial, batches) => {
      const source = new RoutingMapSource({ gatewayApi: true, ingress: true });
      source.set('gatewayclasses', '/wsgate', gatewayClass);
      source.set('gateways', `${ns}/edge`, gateway);
      source.set('ingressclasses', '/wsgate', ingressClass);
      for (const s of initial) {
        const a = apply(s);
        source.set(a.kind, a.key, a.obj);
      }
      const thread = new ThreadBuilder(options);
      try {
        assertSameBuild(await thread.build(source), full(source.current()));
        for (const batch of batches) {
          for (const s of batch) {
            const a = apply(s);
            thread.note(source.set(a.kind, a.key, a.obj));
          }
          assertSameBuild(await thread.build(source), full(source.current()));
        }
      } finally {
        await thread.close();
      }
    }),
    {
      numRuns: 20,
      // Always once: a change to the slices of a Service only a WebSocketRoute names, beside an HTTPRoute and
      // an Ingress (the incremental build, with the routing-API statuses carried over).
      examples: [
        [
          [
            { kind: 'websocketroutes', i: 0, svc: 4, path: '/a', del: false },
            { kind: 'httproutes', i: 0, svc: 1, path: '/c', del: false },
            { kind: 'ingresses', svc: 1, path: '/x', del: false },
            { kind: 'services', svc: 1, app: 'kubernetes.io/ws', del: false },
            { kind: 'endpointslices', svc: 4, addrs: [{ a: 1, ready: true }], del: false },
          ],
          [[{ kind: 'endpointslices', svc: 4, addrs: [{ a: 1, ready: true }, { a: 2, ready: true }], del: false }]],
        ],
        // And once: slices behind an HTTPRoute and behind the Ingress (one Service shared with a WebSocketRoute)
        // lose and regain their ready endpoints, so the translated routes' build statuses change each time.
        [
          [
            { kind: 'websocketroutes', i: 0, svc: 2, path: '/a', del: false },
            { kind: 'httproutes', i: 0, svc: 1, path: '/c', del: false },
            { kind: 'httproutes', i: 1, svc: 2, path: '/a', del: false },
            { kind: 'ingresses', svc: 3, path: '/x', del: false },
            { kind: 'services', svc: 1, app: 'kubernetes.io/ws', del: false },
            { kind: 'services', svc: 2, app: undefined, del: false },
            { kind: 'services', svc: 3, app: undefined, del: false },
            { kind: 'endpointslices', svc: 1, addrs: [{ a: 1, ready: true }], del: false },
            { kind: 'endpointslices', svc: 3, addrs: [{ a: 1, ready: true }], del: false },
          ],
          [
            [{ kind: 'endpointslices', svc: 1, addrs: [{ a: 1, ready: false }], del: false }],
            [
              { kind: 'endpointslices', svc: 3, addrs: [{ a: 1, ready: false }, { a: 2, ready: true }], del: false },
              { kind: 'endpointslices', svc: 2, addrs: [{ a: 4, ready: true }], del: false },
            ],
            [{ kind: 'endpointslices', svc: 1, addrs: [{ a: 1, ready: true }, { a: 3, ready: false }], del: false }],
            [{ kind: 'endpointslices', svc: 3, addrs: [], del: true }],
          ],
        ],
        // And once: the older WebSocketRoute keeps an HTTPRoute out of its path (its status says so, a note
        // the routing builder adds), and its Service's slices change.
        [
          [
            { kind: 'websocketroutes', i: 0, svc: 4, path: '/a', del: false },
            { kind: 'httproutes', i: 0, svc: 1, path: '/a', del: false },
            { kind: 'endpointslices', svc: 4, addrs: [{ a: 1, ready: true }], del: false },
          ],
          [[{ kind: 'endpointslices', svc: 4, addrs: [{ a: 1, ready: false }], del: false }]],
        ],
      ],
    },
  );
});
