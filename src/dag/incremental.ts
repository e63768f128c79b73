// The incremental build: when only Services and EndpointSlices changed, only the backends of those Services and
// the routes that use them are recomputed; everything else is the previous result's, the very same objects. A
// change of Services and their endpoints cannot change which routes are accepted (refusals are for the spec, the
// static-endpoints flag and conflicts, none of which read a Service), nor the match table, the certificates or
// the references. So the accepted routes that name a changed Service are built again, alone, by the same
// builder, and spliced in; the result equals a full build whole (test/unit/scale-thread-builder.test.ts builds
// random change sequences both ways). Anything else, or anything unexpected, is a full build.
// The objects are read through an index (which routes name a Service, which slices a Service owns) that the
// caller keeps up to date as objects change, so the work is proportional to the Services changed, not to the
// whole cluster; and the endpoints are an EndpointTable, whose unchanged Services' segments are shared.
import { ChunkedMap } from '../model/chunked-map.ts';
import { EndpointTable, endpointSegment } from '../model/endpoint-table.ts';
import type { Endpoint, ObjectKey, Route, RouteStatus } from '../model/snapshot.ts';
import { cmp } from './backends.ts';
import type { Builder, BuildResult, ContentHasher } from './build.ts';
import type { EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from './input.ts';
import { routeServices } from './references.ts';

/** The objects an incremental build reads, found by the Service that names them (src/workers/object-store.ts). */
export interface ServiceIndexedObjects {
  /** Every route whose backendRefs name this Service ("namespace/name"). */
  routesNaming(service: string): Iterable<RouteObject>;
  service(key: string): ServiceLite | undefined;
  /** The EndpointSlices whose service-name label names this Service. */
  slicesOf(service: string): Iterable<EndpointSliceLite>;
  secrets(): readonly SecretLite[];
}

/** The route key the builder gives a route object. */
export function routeObjectKey(r: RouteObject): ObjectKey {
  return `${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
}

/** The endpoints of a result as an EndpointTable (a full build's are a plain Map). */
export function endpointTableOf(r: BuildResult): EndpointTable {
  const e = r.content.endpoints;
  return e instanceof EndpointTable ? e : EndpointTable.from(e);
}

/** The routes of a result as a ChunkedMap (a full build's are a plain Map). */
export function routeTableOf(r: BuildResult): ChunkedMap<ObjectKey, Route> {
  return ChunkedMap.of(r.content.routes);
}

/** These statuses (sorted by key, as a build gives them) with some replaced by key: a copy of the list and a
 *  binary search per replaced status, not a lookup per status. Undefined when one of them has no place there. */
export function withStatuses(statuses: readonly RouteStatus[], replaced: Iterable<RouteStatus>): RouteStatus[] | undefined {
  const out = statuses.slice();
  for (const s of replaced) {
    const i = statusIndex(out, s.key);
    if (i < 0) return undefined;
    out[i] = s;
  }
  return out;
}

/** Where the status of this key is in statuses sorted by key (a binary search), or -1. */
export function statusIndex(statuses: readonly RouteStatus[], key: string): number {
  let lo = 0;
  let hi = statuses.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cmp(statuses[mid]!.key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return statuses[lo]?.key === key ? lo : -1;
}

/** An incremental result, and what in it differs from the result it was made from (whatever hands results on
 *  can send just that). */
export interface IncrementalResult extends BuildResult {
  readonly delta: {
    readonly from: BuildResult;
    /** Routes (and their statuses) rebuilt: every other route and status is `from`'s, the same object. */
    readonly routes: readonly ObjectKey[];
    /** Endpoint segments replaced or removed: every other segment is `from`'s, the same object. */
    readonly segments: readonly string[];
  };
}

/**
 * The build of the current objects, given the previous result and the Services whose object or EndpointSlices
 * changed since (nothing else may have changed), with the hasher `build` uses. Undefined when it cannot be done
 * incrementally: the caller builds in full.
 */
export function rebuildServices(build: Builder, hash: ContentHasher, prev: BuildResult, objects: ServiceIndexedObjects, changed: ReadonlySet<string>): IncrementalResult | BuildResult | undefined {
  const affected = new Map<string, RouteObject>();
  for (const s of changed) {
    for (const r of objects.routesNaming(s)) {
      const key = routeObjectKey(r);
      if (prev.content.routes.has(key)) affected.set(key, r);
    }
  }
  // No accepted route names them: nothing a full build reads from them reaches its result.
  if (affected.size === 0) return prev;
  // In the order a full build meets them, so that where two routes hold the same endpoint the same one is kept.
  const routesIn = [...affected].sort(([a], [b]) => cmp(a, b)).map(([, r]) => r);
  const services = new Set<string>();
  for (const r of routesIn) for (const s of routeServices(r)) services.add(s);
  const sub = build({
    routes: routesIn,
    services: [...services].flatMap((s) => objects.service(s) ?? []),
    endpointSlices: [...services].flatMap((s) => [...objects.slicesOf(s)]),
    secrets: objects.secrets(),
  });
  // Built alone, each must be accepted as it was in the full build; otherwise this shortcut does not hold.
  if (sub.content.routes.size !== affected.size) return undefined;

  const routes = routeTableOf(prev).with(sub.content.routes);
  const statuses = withStatuses(prev.statuses, sub.statuses);
  if (!statuses) return undefined;

  // Endpoints of a changed Service come only from the routes rebuilt here: their segments are replaced whole.
  const replaced = new Map<string, [string, Endpoint][]>([...changed].map((s) => [`svc:${s}|`, []]));
  for (const [k, e] of sub.content.endpoints) replaced.get(endpointSegment(k))?.push([k, e]);
  const endpoints = endpointTableOf(prev).withSegments(replaced);

  const { table, certificates } = prev.content;
  return {
    content: Object.freeze({ hash: hash(routes, table, certificates), routes, table, endpoints, certificates }),
    statuses,
    references: prev.references,
    delta: { from: prev, routes: [...sub.content.routes.keys()], segments: [...replaced.keys()] },
  };
}
