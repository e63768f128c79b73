// Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018) over rendezvous (HRW) hashing.
// Every endpoint gets a score per key; the key goes to the best-scoring endpoint whose load is under
// ceil(factor × (total + 1) / n). Rendezvous instead of a ring: no virtual nodes to tune, an exact 1/N share
// per endpoint, and removing one endpoint moves only the keys it held (plus the spill the bound forces).
// Everything here is a pure function of (key, endpoint keys, loads), so two proxy replicas with the same
// snapshot and the same loads pick the same endpoint without talking to each other.
import type { Endpoint } from '../../model/snapshot.ts';

/** 32-bit FNV-1a over UTF-16 code units; stable across processes and Node versions. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// FNV alone mixes its last characters poorly; murmur3's finalizer spreads every input bit over the output.
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The rendezvous score of (key, endpoint): two independent 32-bit halves so ties are practically absent. */
export function score(keyHash: number, keyHash2: number, endpointKey: string): number {
  const e = hash32(endpointKey);
  const hi = fmix32(keyHash ^ e);
  const lo = fmix32(keyHash2 ^ Math.imul(e, 0x9e3779b1));
  return hi * 0x100000 + (lo >>> 12);
}

/** Endpoints in preference order for a key (best first); ties broken by endpoint key so the order is total. */
export function preference(key: string, endpoints: readonly Endpoint[]): Endpoint[] {
  const k1 = hash32(key);
  const k2 = hash32(key, 0x27d4eb2f);
  return endpoints
    .map((e) => ({ e, s: score(k1, k2, e.key) }))
    .sort((a, b) => b.s - a.s || (a.e.key < b.e.key ? -1 : a.e.key > b.e.key ? 1 : 0))
    .map((x) => x.e);
}

/** Most connections any endpoint may hold after this pick: ceil(factor × mean after the pick). */
export function capacity(totalLoad: number, endpoints: number, factor: number): number {
  return Math.max(1, Math.ceil((factor * (totalLoad + 1)) / endpoints));
}

/**
 * The endpoint for `key`: the first in preference order whose load is under the capacity. Since the loads
 * sum to less than n × capacity, one always is; undefined only for an empty list.
 */
export function boundedPick(key: string, endpoints: readonly Endpoint[], load: (endpointKey: string) => number, factor: number): Endpoint | undefined {
  if (endpoints.length <= 1) return endpoints[0];
  let total = 0;
  for (const e of endpoints) total += load(e.key);
  const cap = capacity(total, endpoints.length, factor);
  const k1 = hash32(key);
  const k2 = hash32(key, 0x27d4eb2f);
  const scored = endpoints.map((e) => ({ e, s: score(k1, k2, e.key) }));
  scored.sort((a, b) => b.s - a.s || (a.e.key < b.e.key ? -1 : a.e.key > b.e.key ? 1 : 0));
  for (const { e } of scored) if (load(e.key) < cap) return e;
  return scored[0].e;
}
