// The incremental build: when only Services and EndpointSlices changed, only the backends of those Services and
// the routes that use them are recomputed; everything else is the previous result's, the very same objects. A
// change of Services and their endpoints cannot change which routes are accepted (refusals are for the spec, the
// static-endpoints flag and conflicts, none of which read a Service), nor the match table, the certificates or
// the references. So the accepted routes that name a changed Service are built again, alone, by the same
// builder, and spliced in; the result equals a full build whole (test/unit/scale-thread-builder.test.ts builds
// random change sequences both ways). Anything else, or anything unexpected, is a full build.
import type { Endpoint, ObjectKey, Route, RouteStatus } from '../model/snapshot.ts';
import { cmp } from './backends.ts';
import type { Builder, BuildResult, ContentHasher } from './build.ts';
import type { BuildInput, RouteObject } from './input.ts';
import { routeServices } from './references.ts';

/** The Service ("namespace/name") an endpoint key ("svc:ns/name|address") came from; undefined for static ones. */
function endpointService(key: string): string | undefined {
  if (!key.startsWith('svc:')) return undefined;
  const bar = key.indexOf('|');
  return bar < 0 ? undefined : key.slice(4, bar);
}

/**
 * The build of `input`, given the previous result and the Services whose object or EndpointSlices changed since
 * (nothing else may have changed), with the hasher `build` uses. Undefined when it cannot be done incrementally: the caller builds in full.
 */
export function rebuildServices(build: Builder, hash: ContentHasher, prev: BuildResult, input: BuildInput, changed: ReadonlySet<string>): BuildResult | undefined {
  const objects = new Map<string, RouteObject>();
  for (const r of input.routes) objects.set(`${r.metadata.namespace ?? 'default'}/${r.metadata.name}`, r);
  const affected: RouteObject[] = [];
  const services = new Set<string>();
  for (const key of prev.content.routes.keys()) {
    const obj = objects.get(key);
    if (!obj) return undefined;
    const names = routeServices(obj);
    if (![...names].some((s) => changed.has(s))) continue;
    affected.push(obj);
    for (const s of names) services.add(s);
  }
  // No accepted route names them: nothing a full build reads from them reaches its result.
  if (affected.length === 0) return prev;
  const sub = build({
    routes: affected,
    services: input.services.filter((s) => services.has(`${s.metadata.namespace}/${s.metadata.name}`)),
    endpointSlices: input.endpointSlices.filter((s) => {
      const owner = s.metadata.labels?.['kubernetes.io/service-name'];
      return owner !== undefined && services.has(`${s.metadata.namespace}/${owner}`);
    }),
    secrets: input.secrets,
  });
  // Built alone, each must be accepted as it was in the full build; otherwise this shortcut does not hold.
  if (sub.content.routes.size !== affected.length) return undefined;

  const routes = new Map<ObjectKey, Route>(prev.content.routes);
  for (const [k, r] of sub.content.routes) routes.set(k, r);
  const statusByKey = new Map<string, RouteStatus>(sub.statuses.map((s) => [s.key, s]));
  const statuses = prev.statuses.map((s) => statusByKey.get(s.key) ?? s);

  // Endpoints of a changed Service come only from the routes rebuilt here: drop the old, merge the new in order.
  const fresh = [...sub.content.endpoints].filter(([k]) => changed.has(endpointService(k) ?? ''));
  const endpoints = new Map<string, Endpoint>();
  let i = 0;
  for (const [k, e] of prev.content.endpoints) {
    if (changed.has(endpointService(k) ?? '')) continue;
    while (i < fresh.length && cmp(fresh[i]![0], k) < 0) endpoints.set(fresh[i]![0], fresh[i++]![1]);
    endpoints.set(k, e);
  }
  for (; i < fresh.length; i++) endpoints.set(fresh[i]![0], fresh[i]![1]);

  const { table, certificates } = prev.content;
  return {
    content: Object.freeze({ hash: hash(routes, table, certificates), routes, table, endpoints, certificates }),
    statuses,
    references: prev.references,
  };
}
