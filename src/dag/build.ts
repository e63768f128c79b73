// The pure, deterministic builder: objects in, an immutable snapshot and route statuses out. No I/O, no clock,
// no logger; every collection sorted, so shuffled input gives identical output. A bad route is left out with
// Accepted=False and a reason; the table is always built from everything else.
import { createHash } from 'node:crypto';
import { createSpecValidator, type SpecValidator } from '../api/validate.ts';
import { ChunkedMap } from '../model/chunked-map.ts';
import type { WebSocketRouteSpec } from '../api/types.ts';
import {
  objectKey,
  type Backend,
  type Endpoint,
  type MatchTable,
  type ObjectKey,
  type Route,
  type RouteStatus,
  type Rule,
  type SnapshotContent,
  type TlsCertificate,
} from '../model/snapshot.ts';
import { indexBackends, serviceBackend, staticBackend, unresolvedBackend, cmp, type BackendIndex } from './backends.ts';
import { accepted, rejected } from './conditions.ts';
import { specProblems } from './spec-problems.ts';
import type { BuildInput, BuildOptions, RouteObject } from './input.ts';
import { buildMatchTable, conflictKey, type RankedEntry } from './match-table.ts';
import { compilePolicies } from './compile/route.ts';
import { compileRequestHeaders } from './compile/request-headers.ts';
import { resolveRouteSecrets } from './secrets.ts';
import { compileLlm } from './llm.ts';
import { backendStatuses, readyEndpoints, rulesWithoutReady } from './backend-status.ts';
import { normalizedMatches, shadowedMatches } from './rule-matches.ts';
import { referenceIndex, type ReferenceIndex } from './references.ts';

export interface BuildResult {
  readonly content: SnapshotContent;
  /** One per route of our class, sorted by key. */
  readonly statuses: readonly RouteStatus[];
  /** The Services and Secrets the input's routes name: a change to anything else cannot change this result. */
  readonly references: ReferenceIndex;
}

export type Builder = (input: BuildInput) => BuildResult;

/** `hash`: pass the same hasher to incremental builds (incremental.ts) so that they reuse its digests. */
export function createBuilder(options: BuildOptions, hash: ContentHasher = createContentHasher()): Builder {
  const validate = createSpecValidator();
  return (input) => build(input, options, validate, hash);
}

interface Candidate {
  readonly obj: RouteObject;
  readonly key: ObjectKey;
  readonly generation: number;
}

function build(input: BuildInput, opts: BuildOptions, validate: SpecValidator, contentHash: ContentHasher): BuildResult {
  const index = indexBackends(input.services, input.endpointSlices);
  const statuses = new Map<ObjectKey, RouteStatus>();
  const routes = new Map<ObjectKey, Route>();
  const entries: RankedEntry[] = [];
  const claimed = new Map<string, ObjectKey>();
  const endpoints = new Map<string, Endpoint>();
  const certificates = new Map<string, TlsCertificate>();

  for (const c of ours(input.routes, opts.className)) {
    const setStatus = (conditions: RouteStatus['conditions'], served?: Pick<RouteStatus, 'backends' | 'readyEndpoints'>) =>
      statuses.set(c.key, { key: c.key, generation: c.generation, conditions, ...served });
    const checked = validate(c.obj.spec);
    const problems = checked.ok ? specProblems(checked.spec) : checked.problems;
    if (!checked.ok || problems.length > 0) {
      setStatus(rejected(c.generation, 'InvalidSpec', problems.map((p) => `${p.path}: ${p.message}`).join('; ')));
      continue;
    }
    const spec = checked.spec;
    if (!opts.allowStaticEndpoints && spec.rules.some((r) => (r.backendRefs ?? []).some((b) => b.endpoints))) {
      setStatus(rejected(c.generation, 'StaticEndpointsNotAllowed', 'backendRefs[].endpoints needs --allow-static-endpoints'));
      continue;
    }
    const mine = routeEntries(c.key, spec, routes.size);
    const clash = mine.map((e) => claimed.get(conflictKey(e))).find((k) => k !== undefined && k !== c.key);
    if (clash) {
      setStatus(rejected(c.generation, 'Conflicted', `same hostname, path and headers as the older route ${clash}`));
      continue;
    }
    const refFailures: string[] = [];
    let refReason = 'BackendNotFound';
    const llmOf = (rule: (typeof spec.rules)[number], i: number) => {
      const compiled = compileLlm(rule, i, c.obj.metadata.namespace ?? 'default', c.obj.metadata.name, input.secrets);
      if (compiled.problems.length > 0 && refFailures.length === 0) refReason = 'SecretNotFound';
      refFailures.push(...compiled.problems);
      return compiled.llm ? { llm: compiled.llm } : {};
    };
    const rules: Rule[] = spec.rules.map((rule, i) => ({
      index: i,
      backends: Object.freeze(
        (rule.backendRefs ?? []).map((ref, j): Backend => {
          const where = `rules[${i}].backendRefs[${j}]`;
          if (ref.endpoints) return staticBackend(`static:${c.key}/${i}/${j}`, ref.weight, ref.endpoints, ref.drainingEndpoints);
          const routeNs = c.obj.metadata.namespace ?? 'default';
          const ns = ref.namespace !== undefined && c.obj.permittedNamespaces?.includes(ref.namespace) ? ref.namespace : routeNs;
          const id = `svc:${ns}/${ref.name}:${ref.port}`;
          if (ref.namespace !== undefined && ref.namespace !== ns) {
            refReason = 'RefNotPermitted';
            refFailures.push(`${where}: references in other namespaces are not permitted`);
            return unresolvedBackend(id, ref.weight);
          }
          const b = resolveService(index, opts, ns, ref.name ?? '', ref.port ?? 0, ref.weight);
          if ('reason' in b) {
            refFailures.push(`${where}: ${b.message}`);
            return unresolvedBackend(id, ref.weight);
          }
          return b;
        }),
      ),
      ...llmOf(rule, i),
      ...rewriteOf(rule.requestHeaders),
    }));
    const resolved = resolveRouteSecrets(spec, c.obj.metadata.namespace ?? 'default', input.secrets);
    refFailures.push(...resolved.problems);
    if (resolved.reason && refFailures.length === resolved.problems.length) refReason = resolved.reason;
    const tls = resolved.tls;
    for (const e of mine) claimed.set(conflictKey(e), c.key);
    entries.push(...mine);
    for (const r of rules) for (const b of r.backends) for (const ep of b.endpoints) endpoints.set(ep.key, ep);
    if (tls) for (const h of spec.hostnames ?? []) if (!certificates.has(h)) certificates.set(h, tls);
    const route: Route = { key: c.key, namespace: c.obj.metadata.namespace ?? 'default', name: c.obj.metadata.name, generation: c.generation, rules, ...compilePolicies(spec, resolved.secrets) };
    routes.set(c.key, deepFreeze(route));
    const shadowed = shadowedMatches(spec);
    setStatus(accepted(c.generation, { refFailures, refReason, withoutReady: rulesWithoutReady(rules), ...(shadowed ? { shadowed } : {}) }), {
      backends: Object.freeze(backendStatuses(spec, rules)),
      readyEndpoints: readyEndpoints(rules),
    });
  }

  const sortedRoutes = new Map([...routes].sort(([a], [b]) => cmp(a, b)));
  const sortedEndpoints = new Map([...endpoints].sort(([a], [b]) => cmp(a, b)));
  const sortedCerts = new Map([...certificates].sort(([a], [b]) => cmp(a, b)));
  const table = buildMatchTable(entries);
  // Everything the data plane reads: the compiled routes, the match table (paths and headers live only there),
  // and the certificates (endpoints are in the routes' backends). A spec change that compiles to the same routes
  // and table publishes nothing.
  const hash = contentHash(sortedRoutes, table, sortedCerts);
  return {
    content: Object.freeze({ hash, routes: sortedRoutes, table, endpoints: sortedEndpoints, certificates: sortedCerts }),
    statuses: [...statuses.values()].sort((a, b) => cmp(a.key, b.key)),
    references: referenceIndex(input.routes),
  };
}

/** The snapshot's content hash from its sorted routes and certificates. Endpoints need no hashing of their own:
 *  each is in the rules of a route. Each route's digest is kept per Route object, so an incremental build
 *  (incremental.ts), which shares most routes with the previous result, hashes only those it rebuilt. */
export type ContentHasher = (routes: ReadonlyMap<ObjectKey, Route>, table: MatchTable, certificates: ReadonlyMap<string, TlsCertificate>) => string;

/** Digests are kept per route and per table object: an incremental build, which reuses the previous objects,
 *  hashes only what it rebuilt. */
export function createContentHasher(): ContentHasher {
  const digests = new WeakMap<object, string>();
  const digest = (o: object, json: () => string): string => {
    let d = digests.get(o);
    if (d === undefined) digests.set(o, (d = createHash('sha256').update(json()).digest('hex')));
    return d;
  };
  // The routes' digests joined, kept per chunk of a ChunkedMap too: the hash of a table that shares all but a few
  // chunks with the last one joins those few again, not 5,000 digests (5,000 digests hashed one update each
  // measured 0.6–0.9 ms, 79 chunks' joined digests 0.22 ms, on an idle machine). The same bytes as joining every route's digest, so a plain Map of the
  // same routes hashes the same.
  const joined = (rs: Iterable<Route>): string => {
    let s = '';
    for (const r of rs) s += digest(r, () => JSON.stringify(r));
    return s;
  };
  const chunks = new WeakMap<object, string>();
  return (routes, table, certificates) => {
    const h = createHash('sha256');
    if (routes instanceof ChunkedMap) {
      for (const c of routes.chunks) {
        let d = chunks.get(c);
        if (d === undefined) chunks.set(c, (d = joined(c.values())));
        h.update(d);
      }
    } else h.update(joined(routes.values()));
    h.update(digest(table, () => JSON.stringify([[...table.exact], [...table.wildcard], table.any])));
    return h.update(JSON.stringify([...certificates])).digest('hex');
  };
}

/** Our class (or no class), not being deleted, oldest first; ties broken by key so the order is total. */
function ours(routes: readonly RouteObject[], className: string): Candidate[] {
  return routes
    .filter((r) => !r.metadata.deletionTimestamp && (classOf(r) ?? className) === className)
    .map((obj) => ({ obj, key: objectKey(obj.metadata.namespace ?? 'default', obj.metadata.name), generation: obj.metadata.generation ?? 0 }))
    .sort((a, b) => cmp(a.obj.metadata.creationTimestamp ?? '', b.obj.metadata.creationTimestamp ?? '') || cmp(a.key, b.key));
}

function classOf(r: RouteObject): string | undefined {
  const spec = r.spec as { className?: unknown } | null;
  const c = spec && typeof spec === 'object' ? spec.className : undefined;
  return typeof c === 'string' ? c : undefined;
}

function routeEntries(key: ObjectKey, spec: WebSocketRouteSpec, age: number): RankedEntry[] {
  const hosts = spec.hostnames?.length ? [...new Set(spec.hostnames.map((h) => h.toLowerCase()))] : [''];
  const out: RankedEntry[] = [];
  spec.rules.forEach((rule, ruleIndex) => {
    for (const m of normalizedMatches(rule)) {
      for (const host of hosts) out.push({ host, ...m, routeKey: key, ruleIndex, age });
    }
  });
  return out;
}

function rewriteOf(rh: Parameters<typeof compileRequestHeaders>[0]): Pick<Rule, 'requestHeaders'> {
  const requestHeaders = compileRequestHeaders(rh);
  return requestHeaders ? { requestHeaders } : {};
}

function resolveService(index: BackendIndex, opts: BuildOptions, ns: string, name: string, port: number | string, weight: number) {
  if (opts.mode === 'standalone') {
    return { reason: 'BackendNotFound' as const, message: `Service ${ns}/${name}: standalone mode has no Services; use endpoints` };
  }
  return serviceBackend(index, ns, name, port, weight);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
