// The snapshot's endpoints by key, kept as one segment per origin (a Service, or the static endpoints), so that a
// change of one Service's endpoints makes a table that shares every other segment with the previous one: the
// cost of a new table is the segments it replaces (the list of segments, one per Service, is a ChunkedMap, shared
// but for the chunks touched), not every endpoint in the cluster. A read is a key's segment (a binary search over
// the segment chunks) and one Map lookup. Iteration is in plain string order of the keys, the order a full
// build sorts them in: a segment is the keys up to and including their first "|", and no segment's prefix is a
// prefix of another's (each ends at its only "|"), so sorted segments, each sorted, are the sorted keys.
import { ChunkedMap, mapChanges } from './chunked-map.ts';
import type { Endpoint } from './route.ts';

/** "svc:namespace/name|" or "static|": the part of an endpoint key up to its first "|". */
export function endpointSegment(key: string): string {
  const bar = key.indexOf('|');
  return bar < 0 ? key : key.slice(0, bar + 1);
}

type Segment = ReadonlyMap<string, Endpoint>;

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export class EndpointTable implements ReadonlyMap<string, Endpoint> {
  /** Segments in key order, each non-empty and in key order; chunked, so that replacing one segment does not
   *  copy the list of every other (one per Service). */
  readonly #segments: ChunkedMap<string, Segment>;
  readonly size: number;

  private constructor(segments: ChunkedMap<string, Segment>, size: number) {
    this.#segments = segments;
    this.size = size;
    Object.freeze(this);
  }

  /** A table of these endpoints, in any order. */
  static from(entries: Iterable<readonly [string, Endpoint]>): EndpointTable {
    const groups = new Map<string, [string, Endpoint][]>();
    for (const [k, e] of entries) {
      const s = endpointSegment(k);
      let g = groups.get(s);
      if (!g) groups.set(s, (g = []));
      g.push([k, e]);
    }
    return EndpointTable.empty.withSegments(groups);
  }

  static readonly empty: EndpointTable = new EndpointTable(ChunkedMap.empty(), 0);

  /** This table with the named segments replaced by these endpoints (an empty or absent list removes the
   *  segment); every other segment is this table's, the same object. Each endpoint's key must be in its segment. */
  withSegments(replaced: ReadonlyMap<string, readonly (readonly [string, Endpoint])[]>): EndpointTable {
    const maps = new Map<string, Segment>();
    for (const [s, entries] of replaced) {
      let ordered = true;
      for (let i = 0; i < entries.length; i++) {
        const k = entries[i]![0];
        if (endpointSegment(k) !== s) throw new Error(`endpoint ${k} is not in segment ${s}`);
        if (i > 0 && byKey(entries[i - 1]![0], k) >= 0) ordered = false;
      }
      maps.set(s, new Map(ordered ? entries : [...entries].sort(([a], [b]) => byKey(a, b))));
    }
    return this.withSegmentMaps(maps);
  }

  /** This table with the named segments replaced by these, each in key order already (what segments() of
   *  another table gave); an absent or empty one removes the segment. Every other segment is this table's. */
  withSegmentMaps(replaced: ReadonlyMap<string, Segment | undefined>): EndpointTable {
    if (replaced.size === 0) return this;
    let size = this.size;
    const changes: [string, Segment | undefined][] = [];
    for (const [s, seg] of replaced) {
      size += (seg?.size ?? 0) - (this.#segments.get(s)?.size ?? 0);
      changes.push([s, seg && seg.size > 0 ? seg : undefined]);
    }
    return new EndpointTable(this.#segments.with(changes), size);
  }

  /** The segments that differ (by object) between this table and `prev`: replaced or added, and removed. */
  segmentsChangedFrom(prev: EndpointTable): { changed: [string, Segment][]; removed: string[] } {
    const changed: [string, Segment][] = [];
    const removed: string[] = [];
    for (const c of mapChanges(this.#segments, prev.#segments)) {
      if (c.now) changed.push([c.key, c.now]);
      else removed.push(c.key);
    }
    return { changed, removed };
  }

  /** One segment's endpoints, in key order. */
  segment(name: string): Segment | undefined {
    return this.#segments.get(name);
  }

  /** The segments, in order. */
  segments(): IterableIterator<[string, Segment]> {
    return this.#segments.entries();
  }

  /** A table of segments that are each in key order already (what segments() of another table gave). */
  static ofSegments(segments: Iterable<readonly [string, Segment]>): EndpointTable {
    const list = [...segments].filter(([, seg]) => seg.size > 0);
    let size = 0;
    for (const [, seg] of list) size += seg.size;
    return new EndpointTable(ChunkedMap.from(list), size);
  }

  get(key: string): Endpoint | undefined {
    return this.#segments.get(endpointSegment(key))?.get(key);
  }

  has(key: string): boolean {
    return this.#segments.get(endpointSegment(key))?.has(key) ?? false;
  }

  *entries(): MapIterator<[string, Endpoint]> {
    for (const seg of this.#segments.values()) yield* seg.entries();
  }

  *keys(): MapIterator<string> {
    for (const seg of this.#segments.values()) yield* seg.keys();
  }

  *values(): MapIterator<Endpoint> {
    for (const seg of this.#segments.values()) yield* seg.values();
  }

  [Symbol.iterator](): MapIterator<[string, Endpoint]> {
    return this.entries();
  }

  forEach(f: (value: Endpoint, key: string, map: ReadonlyMap<string, Endpoint>) => void, thisArg?: unknown): void {
    for (const [k, e] of this.entries()) f.call(thisArg, e, k, this);
  }
}
