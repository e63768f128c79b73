// The build thread's result (incremental when only Services and EndpointSlices changed: src/dag/incremental.ts)
// equals a full build on this thread, whole, after any sequence of changes: it is
// handed over in pieces, only what changed travels, and the rest is taken from the previous result. Unchanged
// routes are the previous result's very objects (what connections holding the old snapshot share).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ThreadBuilder } from '../../src/controller/thread-builder.ts';
import { createBuilder, createContentHasher } from '../../src/dag/build.ts';
import { rebuildServices } from '../../src/dag/incremental.ts';
import { ChunkedMap, mapChanges } from '../../src/model/chunked-map.ts';
import type { BuildOptions, EndpointSliceLite, RouteObject, ServiceLite } from '../../src/dag/input.ts';
import type { ObjectKind, SourceObject } from '../../src/sources/source.ts';
import { ObjectStore } from '../../src/workers/object-store.ts';
import { RoutingMapSource } from '../support/routing-map-source.ts';
import { assertSameBuild } from '../support/snapshot-view.ts';

const ns = 'apps';
const options: BuildOptions = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' };

const route = (i: number, svc: number, path: string): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: { namespace: ns, name: `r${i}`, generation: 1, creationTimestamp: `2026-01-01T00:00:0${i}Z` },
  spec: { hostnames: [`h${i % 3}.example`], rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ name: `s${svc}`, port: 80 }] }] },
});
const service = (svc: number, port: number): ServiceLite => ({ metadata: { namespace: ns, name: `s${svc}` }, spec: { ports: [{ name: 'ws', port }] } });
const slice = (svc: number, addrs: readonly number[], terminating: boolean): EndpointSliceLite => ({
  metadata: { namespace: ns, name: `s${svc}-x`, labels: { 'kubernetes.io/service-name': `s${svc}` } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port: 8080 }],
  endpoints: addrs.map((a) => ({ addresses: [`10.0.${svc}.${a}`], conditions: { ready: true, terminating } })),
});

/** One step: an object of some kind set to a generated value, or deleted. */
const step = fc.oneof(
  fc.record({ kind: fc.constant('websocketroutes' as const), i: fc.nat(4), svc: fc.nat(3), path: fc.constantFrom('/a', '/b', '/'), del: fc.boolean() }),
  fc.record({ kind: fc.constant('services' as const), svc: fc.nat(3), port: fc.constantFrom(80, 81), del: fc.boolean() }),
  fc.record({ kind: fc.constant('endpointslices' as const), svc: fc.nat(3), addrs: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { maxLength: 4 }), terminating: fc.boolean(), del: fc.boolean() }),
);
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function apply(s: Step): { kind: ObjectKind; key: string; obj?: SourceObject } {
  if (s.kind === 'websocketroutes') return { kind: s.kind, key: `${ns}/r${s.i}`, ...(s.del ? {} : { obj: route(s.i, s.svc, s.path) }) };
  if (s.kind === 'services') return { kind: s.kind, key: `${ns}/s${s.svc}`, ...(s.del ? {} : { obj: service(s.svc, s.port) }) };
  return { kind: s.kind, key: `${ns}/s${s.svc}-x`, ...(s.del ? {} : { obj: slice(s.svc, s.addrs, s.terminating) }) };
}

/** WebSocketRoutes, Services, EndpointSlices and Secrets only: the routing APIs are off. */
const mapSource = () => new RoutingMapSource({ gatewayApi: false, ingress: false });


test('build thread: random change sequences give the full build, whole, and share what did not change', async () => {
  const full = createBuilder(options);
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), fc.array(fc.array(step, { maxLength: 3 }), { minLength: 1, maxLength: 8 }), async (initial, batches) => {
      const source = mapSource();
      for (const s of initial) {
        const a = apply(s);
        source.set(a.kind, a.key, a.obj);
      }
      const thread = new ThreadBuilder(options);
      try {
        let prev = await thread.build(source);
        assertSameBuild(prev, full(source.current()));
        for (const batch of batches) {
          for (const s of batch) {
            const a = apply(s);
            thread.note(source.set(a.kind, a.key, a.obj));
          }
          const got = await thread.build(source);
          const want = full(source.current());
          assertSameBuild(got, want);
          for (const [k, r] of got.content.routes) {
            const before = prev.content.routes.get(k);
            if (before && JSON.stringify(before) === JSON.stringify(r)) assert.equal(r, before, `${k} unchanged but not shared`);
          }
          assert.ok(Object.isFrozen(got.content) && [...got.content.routes.values()].every((r) => Object.isFrozen(r) && Object.isFrozen(r.rules)));
          // The routes are a ChunkedMap sharing its untouched chunks: comparing chunks finds exactly the routes
          // whose object changed (what Health and the endpoints gauge follow on the swap).
          assert.ok(got.content.routes instanceof ChunkedMap && Object.isFrozen(got.content.routes));
          assert.deepEqual(mapChanges(got.content.routes, prev.content.routes), mapChanges(new Map(got.content.routes), new Map(prev.content.routes)));
          prev = got;
        }
      } finally {
        await thread.close();
      }
    }),
    { numRuns: 15 },
  );
});

// The incremental build on its own (no thread): after each batch of Service and EndpointSlice changes, splicing
// the routes that use them into the previous result gives the full build, whole; anything else builds in full.
test('incremental build: random Service and EndpointSlice changes give the full build, whole', () => {
  const hash = createContentHasher();
  const full = createBuilder(options, hash);
  const serviceStep = fc.oneof(
    fc.record({ kind: fc.constant('services' as const), svc: fc.nat(3), port: fc.constantFrom(80, 81), del: fc.boolean() }),
    fc.record({ kind: fc.constant('endpointslices' as const), svc: fc.nat(3), addrs: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { maxLength: 4 }), terminating: fc.boolean(), del: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 10 }), fc.array(fc.array(serviceStep, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }), (initial, batches) => {
      const source = mapSource();
      // The build thread's indexed copy of the objects, fed the same changes.
      const store = new ObjectStore();
      for (const s of initial) {
        const a = apply(s);
        source.set(a.kind, a.key, a.obj);
        store.set(a.kind, a.key, a.obj);
      }
      let prev = full(source.current());
      for (const batch of batches) {
        const changed = new Set<string>();
        for (const s of batch) {
          const a = apply(s);
          const c = source.set(a.kind, a.key, a.obj);
          store.set(a.kind, a.key, a.obj);
          for (const o of 'objects' in c ? c.objects : []) {
            if (o.kind === 'services') changed.add(o.key);
            for (const x of [o.before, o.after]) {
              const owner = (x as EndpointSliceLite | undefined)?.metadata.labels?.['kubernetes.io/service-name'];
              if (o.kind === 'endpointslices' && owner) changed.add(`${ns}/${owner}`);
            }
          }
        }
        const got = rebuildServices(full, hash, prev, store, changed);
        assert.ok(got, 'a change of Services and slices alone is always incremental here');
        assertSameBuild(got, full(source.current()));
        for (const [k, r] of got.content.routes) if (![...changed].some((s) => JSON.stringify(r).includes(`svc:${s}:`))) assert.equal(r, prev.content.routes.get(k));
        prev = got;
      }
    }),
    { numRuns: 300 },
  );
});

// Every static endpoint is in one segment: at this size more keys than one piece carries, so the segment comes
// over in parts, which the receiver joins into one.
test('build thread: a static-endpoint segment larger than a piece arrives in parts and equals the full build', async () => {
  const staticOptions: BuildOptions = { ...options, allowStaticEndpoints: true };
  const full = createBuilder(staticOptions);
  const staticRoute = (i: number, version: number): RouteObject => ({
    ...route(i, 0, '/'),
    metadata: { namespace: ns, name: `static-${i}`, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: {
      hostnames: [`static-${i}.example`],
      rules: [{ backendRefs: [{ endpoints: Array.from({ length: 10 }, (_, j) => `10.${i >> 8}.${i & 255}.${j === 9 ? 100 + version : j + 1}:8080`) }] }],
    },
  });
  const source = mapSource();
  for (let i = 0; i < 450; i++) source.set('websocketroutes', `${ns}/static-${i}`, staticRoute(i, 0));
  const thread = new ThreadBuilder(staticOptions);
  try {
    const first = await thread.build(source);
    assertSameBuild(first, full(source.current()));
    assert.equal(first.content.endpoints.size, 4500);
    for (const v of [1, 2]) {
      thread.note(source.set('websocketroutes', `${ns}/static-${v * 7}`, staticRoute(v * 7, v)));
      const got = await thread.build(source);
      assertSameBuild(got, full(source.current()));
      assert.ok(got.content.endpoints.get(`static|10.0.${v * 7}.${100 + v}:8080`));
    }
  } finally {
    await thread.close();
  }
});
