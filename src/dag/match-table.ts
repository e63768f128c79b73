// The match table: routes flattened to (host, path, headers) entries, bucketed by host kind and sorted by the
// documented precedence — exact host over wildcard over any; then longer path first, Exact before PathPrefix
// at equal length; then more header matches first; then the older route; then rule order.
import type { MatchEntry, MatchTable } from '../model/snapshot.ts';
import { cmp } from './backends.ts';
import { matchSignature } from './rule-matches.ts';

export interface RankedEntry extends MatchEntry {
  /** Position of the route in age order (oldest first). */
  readonly age: number;
}

export function buildMatchTable(entries: readonly RankedEntry[]): MatchTable {
  const exact = new Map<string, RankedEntry[]>();
  const wildcard = new Map<string, RankedEntry[]>();
  const any: RankedEntry[] = [];
  for (const e of entries) {
    if (e.host === '') any.push(e);
    else if (e.host.startsWith('*.')) push(wildcard, e.host.slice(1), e);
    else push(exact, e.host, e);
  }
  const strip = (list: RankedEntry[]): readonly MatchEntry[] =>
    Object.freeze(list.sort(precedence).map(({ age: _age, ...e }) => Object.freeze(e)));
  return Object.freeze({
    exact: freezeMap(exact, strip),
    wildcard: freezeMap(wildcard, strip),
    wildcardSuffixes: Object.freeze([...wildcard.keys()].sort((a, b) => b.length - a.length || cmp(a, b))),
    any: strip(any),
  });
}

export function precedence(a: RankedEntry, b: RankedEntry): number {
  return (
    b.path.length - a.path.length ||
    (a.pathType === b.pathType ? 0 : a.pathType === 'Exact' ? -1 : 1) ||
    b.headers.length - a.headers.length ||
    a.age - b.age ||
    a.ruleIndex - b.ruleIndex
  );
}

/** Two entries conflict when they would match exactly the same requests. */
export function conflictKey(e: MatchEntry): string {
  return `${e.host} ${matchSignature(e)}`;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function freezeMap<V>(m: Map<string, RankedEntry[]>, f: (l: RankedEntry[]) => V): ReadonlyMap<string, V> {
  const sorted = [...m.keys()].sort(cmp);
  return new Map(sorted.map((k) => [k, f(m.get(k) ?? [])]));
}
