// A rule's matches in the form the match table compares them (defaults applied, prefix without its trailing
// slash, header names lower-case), and the matches of a route that can never decide a request: within one
// route every rule has the same hostnames and age, so an identical match in an earlier rule always wins
// (README "Route matching": equal path, type and headers fall back to rule order).
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { HeaderMatch } from '../model/snapshot.ts';

type RuleSpec = WebSocketRouteSpec['rules'][number];

export interface NormalizedMatch {
  readonly pathType: 'Exact' | 'PathPrefix';
  readonly path: string;
  readonly headers: readonly HeaderMatch[];
}

/** No matches means one match of every request: PathPrefix "/". */
export function normalizedMatches(rule: RuleSpec): NormalizedMatch[] {
  const matches = rule.matches?.length ? rule.matches : [{}];
  return matches.map((m) => {
    const pathType = m.path?.type ?? 'PathPrefix';
    return {
      pathType,
      path: normalizePrefix(pathType, m.path?.value ?? '/'),
      headers: (m.headers ?? []).map((h) => ({ name: h.name.toLowerCase(), value: h.value })),
    };
  });
}

// "/ws/" and "/ws" are the same prefix: segment-aware matching compares without the trailing slash.
function normalizePrefix(type: string, v: string): string {
  return type !== 'Exact' && v.length > 1 && v.endsWith('/') ? v.slice(0, -1) : v;
}

/** Equal signatures match exactly the same requests (headers are an unordered set). */
export function matchSignature(m: NormalizedMatch): string {
  const headers = m.headers.map((h) => `${h.name}=${h.value}`).sort().join('&');
  return `${m.pathType} ${m.path} ${headers}`;
}

export interface ShadowReport {
  /** UnreachableRules when a whole rule can never match, DuplicateMatches when only single matches repeat. */
  readonly reason: 'UnreachableRules' | 'DuplicateMatches';
  readonly message: string;
}

export function shadowedMatches(spec: WebSocketRouteSpec): ShadowReport | undefined {
  const first = new Map<string, { rule: number; match: number }>();
  const unreachable: string[] = [];
  const repeated: string[] = [];
  spec.rules.forEach((rule, i) => {
    const notes: string[] = [];
    const shadowers = new Set<number>();
    let live = false;
    normalizedMatches(rule).forEach((m, k) => {
      const sig = matchSignature(m);
      const prev = first.get(sig);
      if (!prev) {
        first.set(sig, { rule: i, match: k });
        live = true;
      } else if (prev.rule === i) {
        notes.push(`rules[${i}].matches[${k}] repeats rules[${i}].matches[${prev.match}]`);
      } else {
        shadowers.add(prev.rule);
        notes.push(`rules[${i}].matches[${k}] never matches: rules[${prev.rule}] has the same match and comes first`);
      }
    });
    if (!live) {
      const by = [...shadowers].sort((a, b) => a - b).map((r) => `rules[${r}]`).join(', ');
      unreachable.push(`rules[${i}] is unreachable: every match of it is in ${by}, which comes first`);
    } else repeated.push(...notes);
  });
  if (unreachable.length === 0 && repeated.length === 0) return undefined;
  return { reason: unreachable.length > 0 ? 'UnreachableRules' : 'DuplicateMatches', message: [...unreachable, ...repeated].join('; ') };
}
