// Builds that start from the last one, with the Gateway API and Ingress on. The translators read Services and
// the routing objects, never EndpointSlices (translate.ts, route-rules.ts, ingress.ts), so after a change to
// slices alone the last full build's translated routes are what translating again would give. They are kept,
// found by the Services they name, and compiled again beside the WebSocketRoutes naming the changed Services
// (rebuildServices); the routing-API statuses are folded again, by the full build's own fold, only when the
// builder's verdict on a rebuilt translated route changed.
import { isDeepStrictEqual } from 'node:util';
import type { BuildResult, ContentHasher } from './build.ts';
import { endpointTableOf, rebuildServices, routeTableOf, statusIndex, type IncrementalResult, type ServiceIndexedObjects } from './incremental.ts';
import type { BuildInput, RouteObject } from './input.ts';
import { routeServices } from './references.ts';
import { isTranslatedKey, type RoutingBuilder, type RoutingBuildResult, type RoutingTranslation } from './routing-apis.ts';

/** A build as kept to make the next one from. */
export interface RoutingBuildState {
  /** What is handed on. */
  readonly result: RoutingBuildResult;
  /** The builder's own result, with the translated routes' statuses as the builder gave them. */
  readonly compiled: BuildResult;
  readonly translation: RoutingTranslation | undefined;
  /** Service ("namespace/name") → the translated routes naming it. */
  readonly translatedByService: ReadonlyMap<string, readonly RouteObject[]>;
}

/** A full build, kept with its parts. */
export function fullRoutingBuild(build: RoutingBuilder, input: BuildInput): RoutingBuildState {
  const translation = build.translate(input);
  const built = build.compile(input, translation);
  // Routes as a ChunkedMap and endpoints as an EndpointTable, so that the next incremental build shares them.
  const compiled: BuildResult = { ...built, content: Object.freeze({ ...built.content, routes: routeTableOf(built), endpoints: endpointTableOf(built) }) };
  return { result: build.finish(compiled, translation), compiled, translation, translatedByService: byService(translation?.routes ?? []) };
}

/**
 * The build of the current objects when only these Services' objects or EndpointSlices changed since `prev`
 * (a Service a translator reads may have changed its slices only). Undefined when it cannot be done
 * incrementally: the caller builds in full.
 */
export function rebuildRoutingServices(build: RoutingBuilder, hash: ContentHasher, prev: RoutingBuildState, objects: ServiceIndexedObjects, changed: ReadonlySet<string>): RoutingBuildState | undefined {
  const withTranslated: ServiceIndexedObjects = {
    routesNaming: (s) => {
      const translated = prev.translatedByService.get(s);
      return translated ? [...objects.routesNaming(s), ...translated] : objects.routesNaming(s);
    },
    service: (key) => objects.service(key),
    slicesOf: (s) => objects.slicesOf(s),
    secrets: () => objects.secrets(),
  };
  const compiled = rebuildServices((input) => build.compile(input), hash, prev.compiled, withTranslated, changed);
  if (!compiled) return undefined;
  if (!('delta' in compiled)) return prev;
  const { delta } = compiled as IncrementalResult;
  const verdictChanged = delta.routes.some((k) => isTranslatedKey(k) && !isDeepStrictEqual(statusOf(prev.compiled, k), statusOf(compiled, k)));
  // Nothing the translators or the fold read changed unless a verdict did: the previous statuses stand.
  const kept = verdictChanged ? { references: prev.result.references } : { references: prev.result.references, ...(prev.result.routingApis ? { routingApis: prev.result.routingApis } : {}) };
  const finished = build.finish(compiled, prev.translation, kept);
  // What changed is said against the result handed on last, which is what its receiver holds.
  const result: RoutingBuildResult & IncrementalResult = { ...finished, delta: { ...delta, from: prev.result } };
  return { ...prev, result, compiled };
}

function statusOf(r: BuildResult, key: string) {
  return r.statuses[statusIndex(r.statuses, key)];
}

function byService(routes: readonly RouteObject[]): Map<string, RouteObject[]> {
  const out = new Map<string, RouteObject[]>();
  for (const r of routes) {
    for (const s of routeServices(r)) {
      const rs = out.get(s);
      if (rs) rs.push(r);
      else out.set(s, [r]);
    }
  }
  return out;
}
