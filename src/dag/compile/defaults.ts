// The schema's defaults, applied to a section that is absent from a spec. The validator (ajv, useDefaults)
// fills defaults only inside objects that are present, so a spec without `heartbeat:` has no heartbeat
// defaults; here they are read from the schema itself, so the literal lives in src/api/schema.ts alone.
import { routeSpecSchema } from '../../api/schema.ts';
import type { WebSocketRouteSpec } from '../../api/types.ts';

type Section = keyof typeof routeSpecSchema.properties & keyof WebSocketRouteSpec;

interface SchemaNode {
  readonly properties?: Readonly<Record<string, { readonly default?: unknown }>>;
}

/** The defaults a schema object node declares for its own properties. */
export function defaultsOf(node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(node.properties ?? {})) if (p.default !== undefined) out[k] = p.default;
  return out;
}

/**
 * A top-level section of the spec with every default of its own properties present: the section as written
 * (the validator has defaulted it) or, when absent, the schema's defaults. The type says so: the spec types
 * (json-schema-to-ts) make every defaulted property required.
 */
export function section<K extends Section>(spec: WebSocketRouteSpec, key: K): NonNullable<WebSocketRouteSpec[K]> {
  const node = routeSpecSchema.properties[key] as SchemaNode;
  const filled: unknown = { ...defaultsOf(node), ...(spec[key] as object | undefined) };
  return filled as NonNullable<WebSocketRouteSpec[K]>;
}

type Affinity = NonNullable<WebSocketRouteSpec['sessionAffinity']>;

/** sessionAffinity.cookie with its defaults (the cookie object may be absent with type Cookie). */
export function affinityCookie(a: Affinity): NonNullable<Affinity['cookie']> {
  const node = routeSpecSchema.properties.sessionAffinity.properties.cookie as SchemaNode;
  return { ...defaultsOf(node), ...a.cookie } as NonNullable<Affinity['cookie']>;
}
