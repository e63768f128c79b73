// The immutable routing table the data plane reads once per connection. Data only: built by dag/,
// published by the holder, read by proxy/. Every collection is frozen and sorted by the builder. The
// compiled routes themselves are in route.ts.
import type { Endpoint, ObjectKey, Route } from './route.ts';

export type * from './route.ts';

export function objectKey(namespace: string, name: string): ObjectKey {
  return `${namespace}/${name}`;
}

export interface HeaderMatch {
  /** Lower-cased. */
  readonly name: string;
  readonly value: string;
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
