// The immutable routing table the data plane reads once per connection. Data only: built by build/,
// published by the holder, read by proxy/. Every collection is frozen and sorted by the builder.
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { LlmRoute } from '../llm/route.ts';

/** "namespace/name", made only by objectKey(). */
export type ObjectKey = `${string}/${string}`;

export function objectKey(namespace: string, name: string): ObjectKey {
  return `${namespace}/${name}`;
}

/**
 * Active takes new connections. NotReady (failing readiness, not terminating: a flap) takes none and keeps the
 * ones it has. Draining (terminating, still serving) has its connections closed with 1012 paced over the
 * route's drain window and takes new ones only when its backend has nothing Active. Gone endpoints (removed,
 * or terminating and no longer serving) are never published: a connection whose endpoint was Draining is
 * closed with 1012 at once, any other is drained paced.
 */
export type EndpointState = 'Active' | 'NotReady' | 'Draining';

export interface Endpoint {
  /** Identity across snapshots: `${origin}|${address}`, origin = "svc:ns/name" or "static". */
  readonly key: string;
  /** "host:port" ("[v6]:port" for IPv6) as dialled. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly state: EndpointState;
  readonly zone?: string;
  readonly podName?: string;
}

export interface Backend {
  /** "svc:ns/name:port" for a Service, "static:ns/route/rule/ref" for static endpoints. */
  readonly id: string;
  readonly weight: number;
  /** False when the Service or port is missing: connections to it get 503. */
  readonly resolved: boolean;
  /** Sorted by address, deduplicated. */
  readonly endpoints: readonly Endpoint[];
}

export interface HeaderMatch {
  /** Lower-cased. */
  readonly name: string;
  readonly value: string;
}

export interface Rule {
  readonly index: number;
  readonly backends: readonly Backend[];
  /** A rule that fronts model providers: the upgrade is answered by wsgate, not relayed (docs/llm.md). */
  readonly llm?: LlmRoute;
}

export interface Route {
  readonly key: ObjectKey;
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  /** The validated spec with every default applied. */
  readonly spec: WebSocketRouteSpec;
  readonly rules: readonly Rule[];
  /** Key material for this route's policies, resolved by the builder; never logged or shown on /debug. */
  readonly secrets?: RouteSecrets;
}

/** Resolved from Secrets (Kubernetes) or files (standalone) so that a change republishes the snapshot. */
export interface RouteSecrets {
  /** auth.jwt verification key, base64 of the raw bytes: a PEM key or certificate, a JWK/JWKS, or an HMAC secret. */
  readonly jwtKey?: string;
  /** auth.apiKey: sha256 (hex) of each accepted key; the keys themselves never reach the snapshot. */
  readonly apiKeyHashes?: readonly string[];
  /** upstream.tls: PEM CA bundle. */
  readonly upstreamCa?: string;
}

/** One (hostname, match) pair of one rule, flattened for matching. */
export interface MatchEntry {
  /** Exact host, "*.suffix" wildcard, or "" for any host. */
  readonly host: string;
  readonly pathType: 'Exact' | 'PathPrefix';
  readonly path: string;
  readonly headers: readonly HeaderMatch[];
  readonly routeKey: ObjectKey;
  readonly ruleIndex: number;
}

export interface MatchTable {
  /** Exact hostnames (lower-case) → entries in precedence order. */
  readonly exact: ReadonlyMap<string, readonly MatchEntry[]>;
  /** Wildcard suffix without "*" (e.g. ".example.com") → entries; suffixes tried longest first. */
  readonly wildcard: ReadonlyMap<string, readonly MatchEntry[]>;
  readonly wildcardSuffixes: readonly string[];
  /** Routes with no hostnames. */
  readonly any: readonly MatchEntry[];
}

export interface SnapshotContent {
  /** Content hash: the controller publishes only when it changes. */
  readonly hash: string;
  readonly routes: ReadonlyMap<ObjectKey, Route>;
  readonly table: MatchTable;
  /** Every published endpoint by key, for the drain logic. */
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  /** TLS certificates by hostname pattern (filled by the TLS work). */
  readonly certificates: ReadonlyMap<string, TlsCertificate>;
}

export interface TlsCertificate {
  readonly cert: string;
  readonly key: string;
}

export interface Snapshot extends SnapshotContent {
  /** 1 for the first published snapshot, +1 per publish. */
  readonly generation: number;
}

export type ConditionType = 'Accepted' | 'ResolvedRefs' | 'Programmed';

export interface Condition {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  /** PascalCase, e.g. BackendNotFound. */
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

/** Endpoints by state, as the route status counts them (build/backend-status.ts maps each state to a count). */
export interface EndpointCounts {
  /** Active: takes new connections. */
  readonly ready: number;
  /** Draining: keeps its connections, takes new ones only when its backend has no ready endpoint. */
  readonly draining: number;
  /** Published but not ready; absent when there are none. */
  readonly notReady?: number;
}

/** One backendRef of an accepted route, by its position in the spec. */
export interface BackendStatus extends EndpointCounts {
  readonly rule: number;
  readonly backendRef: number;
  readonly kind: 'Service' | 'Static';
  /** The Service and port as written in the spec (kind Service only). */
  readonly name?: string;
  readonly port?: number | string;
}

export interface RouteStatus {
  readonly key: ObjectKey;
  readonly generation: number;
  readonly conditions: readonly Condition[];
  /** Accepted routes only: one per backendRef, sorted by rule then backendRef. */
  readonly backends?: readonly BackendStatus[];
  /** Accepted routes only: distinct ready endpoints over all the route's backends. */
  readonly readyEndpoints?: number;
}
