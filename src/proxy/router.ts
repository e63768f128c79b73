// Route matching on a Snapshot (pure): exact host, then wildcard suffixes longest first, then routes without
// hostnames; within each bucket the builder's precedence order, first match wins.
import type { MatchEntry, MatchTable, Route, Rule, Snapshot } from '../model/snapshot.ts';

export interface RouteMatch {
  readonly route: Route;
  readonly rule: Rule;
}

export type HeaderLookup = (lowerName: string) => string | string[] | undefined;

export function matchRoute(snapshot: Snapshot, host: string, path: string, header: HeaderLookup): RouteMatch | undefined {
  const entry = findEntry(snapshot.table, normalizeHost(host), path, header);
  if (!entry) return undefined;
  const route = snapshot.routes.get(entry.routeKey);
  const rule = route?.rules[entry.ruleIndex];
  return route && rule ? { route, rule } : undefined;
}

function findEntry(t: MatchTable, host: string, path: string, header: HeaderLookup): MatchEntry | undefined {
  const exact = t.exact.get(host);
  if (exact) {
    const e = firstMatch(exact, path, header);
    if (e) return e;
  }
  for (const suffix of t.wildcardSuffixes) {
    // "*.example.com" covers a.example.com and a.b.example.com, never example.com itself.
    if (host.length > suffix.length && host.endsWith(suffix)) {
      const e = firstMatch(t.wildcard.get(suffix) ?? [], path, header);
      if (e) return e;
    }
  }
  return firstMatch(t.any, path, header);
}

function firstMatch(entries: readonly MatchEntry[], path: string, header: HeaderLookup): MatchEntry | undefined {
  for (const e of entries) if (pathMatches(e, path) && headersMatch(e, header)) return e;
  return undefined;
}

/** Segment-aware prefix: "/ws" matches "/ws", "/ws/" and "/ws/x", never "/wsx". */
export function pathMatches(e: Pick<MatchEntry, 'pathType' | 'path'>, path: string): boolean {
  if (e.pathType === 'Exact') return path === e.path;
  if (e.path === '/') return true;
  return path.startsWith(e.path) && (path.length === e.path.length || path.charCodeAt(e.path.length) === 47);
}

function headersMatch(e: MatchEntry, header: HeaderLookup): boolean {
  for (const h of e.headers) {
    const v = header(h.name);
    if (Array.isArray(v) ? !v.includes(h.value) : v !== h.value) return false;
  }
  return true;
}

/** Lower-case, without port and without a trailing dot. */
export function normalizeHost(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}
