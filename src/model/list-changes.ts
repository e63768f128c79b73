// What differs between two lists of keyed values kept in the same key order, found by identity. A build shares
// every status it did not remake (the same object in the same place), so a pass of pointer comparisons finds what
// changed; a Map of all 5,000 statuses per table cost the relay's loop about 5 ms a table (BENCHMARKS.md, Scale
// round 4).

/** An entry of the new list that is not the very object the old list held at its place. */
export interface ListChange<T> {
  readonly now: T;
  readonly before: T;
}

/**
 * The entries of `next` that are not the very object `prev` holds at the same place, when both lists have the
 * same keys in the same order; undefined when they do not (a key came or went), and the caller takes `next` whole.
 */
export function listChanges<T>(next: readonly T[], prev: readonly T[] | undefined, keyOf: (v: T) => string): ListChange<T>[] | undefined {
  if (!prev || prev.length !== next.length) return undefined;
  const out: ListChange<T>[] = [];
  for (let i = 0; i < next.length; i++) {
    const a = next[i]!;
    const b = prev[i]!;
    if (a === b) continue;
    if (keyOf(a) !== keyOf(b)) return undefined;
    out.push({ now: a, before: b });
  }
  return out;
}
