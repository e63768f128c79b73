// Which Services and Secrets the routes refer to, as data the builder returns with each build. The controller
// reads it to tell whether a changed Service, EndpointSlice or Secret can change the table at all. It is read
// from the specs as written (before validation and whatever the route's fate), so it is a superset: a route
// refused today because its Service is missing is listed, and the Service's arrival rebuilds.
import type { RouteObject } from './input.ts';

export interface ReferenceIndex {
  /** "namespace/name" of every Service a backendRef names. */
  readonly services: ReadonlySet<string>;
  /** "namespace/name" of every Secret a route names (TLS, JWT key, API keys, upstream CA). */
  readonly secrets: ReadonlySet<string>;
}

type Named = { name?: unknown; namespace?: unknown } | undefined;

interface LooseSpec {
  rules?: { backendRefs?: Named[] }[];
  tls?: { secretName?: unknown };
  auth?: { jwt?: { secretName?: unknown }; apiKey?: { secretName?: unknown } };
  upstream?: { tls?: { caSecretName?: unknown } };
}

export function referenceIndex(routes: readonly RouteObject[]): ReferenceIndex {
  const services = new Set<string>();
  const secrets = new Set<string>();
  for (const r of routes) {
    for (const k of routeServices(r)) services.add(k);
    const ns = r.metadata.namespace ?? 'default';
    const spec = looseSpec(r);
    for (const name of [spec.tls?.secretName, spec.auth?.jwt?.secretName, spec.auth?.apiKey?.secretName, spec.upstream?.tls?.caSecretName]) {
      if (typeof name === 'string') secrets.add(`${ns}/${name}`);
    }
  }
  return { services, secrets };
}

/** "namespace/name" of each Service one route's backendRefs name. */
export function routeServices(r: RouteObject): Set<string> {
  const out = new Set<string>();
  const ns = r.metadata.namespace ?? 'default';
  const spec = looseSpec(r);
  for (const rule of Array.isArray(spec.rules) ? spec.rules : []) {
    for (const ref of Array.isArray(rule?.backendRefs) ? rule.backendRefs : []) {
      if (typeof ref?.name === 'string') out.add(`${typeof ref.namespace === 'string' ? ref.namespace : ns}/${ref.name}`);
    }
  }
  return out;
}

function looseSpec(r: RouteObject): LooseSpec {
  return (r.spec && typeof r.spec === 'object' ? r.spec : {}) as LooseSpec;
}
