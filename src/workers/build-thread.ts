// The build thread: a full build (and, standalone, reading and checking the route file) runs here, not on the
// loop that relays frames. It keeps its own copy of the source's objects, fed with changes by the control plane,
// and answers each build with the result cut into serialized pieces (build-protocol.ts).
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { serialize } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { createSpecValidator } from '../api/validate.ts';
import { createContentHasher, type BuildResult } from '../dag/build.ts';
import type { IncrementalResult } from '../dag/incremental.ts';
import { emptyInput, type BuildInput } from '../dag/input.ts';
import { createRoutingBuilder, type RoutingBuildResult } from '../dag/routing-apis.ts';
import { fullRoutingBuild, rebuildRoutingServices, type RoutingBuildState } from '../dag/routing-incremental.ts';
import type { RoutingApisOn } from '../sources/source.ts';
import type { EndpointTable } from '../model/endpoint-table.ts';
import type { ObjectKey, Route, RouteStatus } from '../model/snapshot.ts';
import { loadRoutes } from '../sources/file/load-routes.ts';
import { readReferencedFiles } from '../sources/file/referenced-files.ts';
import type { BuildThreadData, FromBuildThread, ResultPiece, ToBuildThread } from './build-protocol.ts';
import { ObjectStore } from './object-store.ts';

/** Pieces small enough that deserializing one takes about a millisecond (measured: ~1 ms per 100 routes). */
const routesPerPiece = 100;
const statusesPerPiece = 500;
// Each key costs the receiver two lookups and a Map insert: 2,000 a piece took 1.5–2 ms of the relay's loop.
const keysPerPiece = 1000;

const hostsPerPiece = 500;

/** The lowest scheduling priority for this thread alone: on a busy machine a build waits for the relay, not the
 *  other way round. Linux keeps a nice value per thread (setpriority(2), NOTES), and /proc/thread-self names this
 *  thread's id; elsewhere, or where that is refused, the thread keeps the process's priority. */
function yieldToRelay(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19);
  } catch {
    // Not Linux, or not permitted: builds still run off the relay's loop, at the same priority.
  }
}

function main(): void {
  const port = parentPort;
  if (!port) throw new Error('build-thread.ts runs as a worker thread');
  yieldToRelay();
  const { options } = workerData as BuildThreadData;
  const validate = createSpecValidator();
  const hash = createContentHasher();
  const build = createRoutingBuilder(options, hash);
  const objects = new ObjectStore();
  let fileInput: BuildInput | undefined;
  let sent: Sent | undefined;
  /** The last build made here, and what changed since: Services (by their own or their slices' change), or
   *  something else, which needs a full build. */
  let last: RoutingBuildState | undefined;
  const changedServices = new Set<string>();
  let needFull = true;
  let routing: RoutingApisOn | undefined;
  const send = (m: FromBuildThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

  port.on('message', (m: ToBuildThread) => {
    if (m.t === 'objects') {
      if (m.reset) {
        objects.clear();
        needFull = true;
      }
      for (const c of m.changes) {
        const change = objects.set(c.kind, c.key, c.after);
        if ('full' in change) needFull = true;
        else for (const s of change.services) {
          changedServices.add(s);
          // The translators read Service objects (ports, appProtocol), never their slices: a changed Service is
          // translated again in full, changed slices reuse the last translation (routing-incremental.ts).
          if (c.kind === 'services' && routing && (routing.gatewayApi || routing.ingress)) needFull = true;
        }
      }
      return;
    }
    if (m.t === 'routing') {
      routing = m.on;
      needFull = true;
      return;
    }
    if (m.t === 'load') {
      void (async () => {
        try {
          const r = await loadRoutes([m.path], validate);
          if (r.problems.length > 0) return send({ t: 'loaded', id: m.id, problems: r.problems, paths: [] });
          const { secrets, paths } = await readReferencedFiles(r.routes, m.baseDir);
          fileInput = { ...emptyInput, routes: r.routes, secrets };
          needFull = true;
          send({ t: 'loaded', id: m.id, problems: [], paths });
        } catch (err) {
          send({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
        }
      })();
      return;
    }
    try {
      const t0 = performance.now();
      const incremental = !needFull && !fileInput && last ? rebuildRoutingServices(build, hash, last, objects, changedServices) : undefined;
      last = incremental ?? fullRoutingBuild(build, fileInput ?? objects.input(routing));
      const built = last.result;
      needFull = false;
      changedServices.clear();
      const result = cut(built, m.fresh ? undefined : sent);
      sent = result.sent;
      const pieces = result.pieces;
      const buffers = pieces.map((p) => p.buffer as ArrayBuffer);
      send({ t: 'built', id: m.id, pieces, buildMs: performance.now() - t0 }, buffers);
    } catch (err) {
      send({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
    }
  });
}

/** The previous result sent: the next one sends only what differs from it. */
interface Sent {
  readonly result: BuildResult;
  readonly routes: ReadonlyMap<string, Route>;
  readonly statuses: readonly RouteStatus[];
  readonly endpoints: EndpointTable;
  readonly table: string;
}

/** JSON of each route and status object once: an incremental result shares most of them with the last one. */
const jsonOf = new WeakMap<object, string>();
function json(o: object): string {
  let j = jsonOf.get(o);
  if (j === undefined) jsonOf.set(o, (j = JSON.stringify(o)));
  return j;
}

/** The same object, or (a full build makes new objects) the same JSON. */
function same(a: object | undefined, b: object): boolean {
  return a === b || (a !== undefined && json(a) === json(b));
}

/** Do two maps have the same keys? Both are sorted by key, so the same keys are also the same order. */
function sameKeys(a: ReadonlyMap<string, unknown>, b: ReadonlyMap<string, unknown>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a.keys()) if (!b.has(k)) return false;
  return true;
}

/** Same keys in the same order, and each endpoint's fields the same (endpoints are flat objects). */
function sameSegment(a: ReadonlyMap<string, unknown> | undefined, b: ReadonlyMap<string, unknown>): boolean {
  if (a === b) return true;
  if (!a || a.size !== b.size) return false;
  const bs = b.entries();
  for (const [k, e] of a) {
    const [k2, e2] = bs.next().value as [string, unknown];
    if (k !== k2 || !isDeepStrictEqual(e, e2)) return false;
  }
  return true;
}

function cut(r: BuildResult, prev: Sent | undefined): { pieces: Uint8Array[]; sent: Sent } {
  const out: Uint8Array[] = [];
  const piece = (p: ResultPiece) => {
    const b = serialize(p);
    // A Buffer may sit in a shared pool; only a buffer of its own can be transferred.
    out.push(new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
  };
  const chunks = <T>(xs: readonly T[], n: number, f: (c: T[]) => void) => {
    for (let i = 0; i < xs.length; i += n) f(xs.slice(i, i + n));
  };
  const c = r.content;
  const endpoints = c.endpoints as EndpointTable;
  // The table holds Maps, which JSON.stringify would write as {}: their entries are compared.
  let table = jsonOf.get(c.table);
  if (table === undefined) jsonOf.set(c.table, (table = JSON.stringify([[...c.table.exact], [...c.table.wildcard], c.table.wildcardSuffixes, c.table.any])));
  // An incremental result made from the one sent last says what it changed: only that is looked at.
  const delta = prev && 'delta' in r && (r as IncrementalResult).delta.from === prev.result ? (r as IncrementalResult).delta : undefined;
  let sameRouteKeys: boolean;
  let sameStatusKeys: boolean;
  let diff: { changed: [string, ReadonlyMap<string, unknown>][]; removed: string[] } | undefined;
  if (delta) {
    // A route built again may come out as it was: the receiver then keeps its object.
    const rebuilt = delta.routes.map((k) => [k, c.routes.get(k as ObjectKey)!] as [string, Route]).filter(([k, v]) => !same(prev!.routes.get(k), v));
    chunks(rebuilt, routesPerPiece, (routes) => piece({ p: 'routes', routes }));
    const wasRebuilt = new Set<string>(delta.routes);
    // The statuses are `from`'s, in the same order, with the rebuilt routes' replaced.
    chunks(r.statuses.filter((s, i) => wasRebuilt.has(s.key) && !same(delta.from.statuses[i], s)), statusesPerPiece, (statuses) => piece({ p: 'statuses', statuses }));
    sameRouteKeys = sameStatusKeys = true;
    diff = { changed: [], removed: [] };
    for (const s of delta.segments) {
      const seg = endpoints.segment(s);
      if (seg) diff.changed.push([s, seg]);
      else if (prev!.endpoints.segment(s)) diff.removed.push(s);
    }
  } else {
    const prevStatuses = new Map(prev?.statuses.map((s) => [s.key as string, s]));
    const statuses = new Map(r.statuses.map((s) => [s.key as string, s]));
    chunks([...c.routes].filter(([k, v]) => !same(prev?.routes.get(k), v)), routesPerPiece, (routes) => piece({ p: 'routes', routes }));
    sameRouteKeys = prev !== undefined && sameKeys(c.routes, prev.routes);
    if (!sameRouteKeys) piece({ p: 'routeKeys', keys: [...c.routes.keys()] });
    chunks(r.statuses.filter((s) => !same(prevStatuses.get(s.key), s)), statusesPerPiece, (statuses) => piece({ p: 'statuses', statuses }));
    sameStatusKeys = prev !== undefined && sameKeys(statuses, prevStatuses);
    if (!sameStatusKeys) piece({ p: 'statusKeys', keys: r.statuses.map((s) => s.key) });
    // A full build makes every segment anew: those with the same endpoints as before are not sent again.
    if (prev) {
      diff = endpoints.segmentsChangedFrom(prev.endpoints);
      diff.changed = diff.changed.filter(([s, seg]) => !sameSegment(prev.endpoints.segment(s), seg));
    }
  }
  // Endpoints by segment: all of them for a receiver with nothing to share from, else the segments that changed.
  const segments = diff ? diff.changed : [...endpoints.segments()];
  // At most keysPerPiece keys a piece, a large segment split over several (the receiver joins consecutive parts
  // of one segment): every static endpoint of a route file is in one segment, 50,000 keys at 5,000 routes, and
  // made into a Map in one turn it held the relay's loop for over 100 ms on every rewrite of the file.
  let batch: [string, string[]][] = [];
  let keys = 0;
  for (const [s, seg] of segments) {
    let part: string[] | undefined;
    for (const k of seg.keys()) {
      if (!part) batch.push([s, (part = [])]);
      part.push(k);
      if (++keys < keysPerPiece) continue;
      piece({ p: 'segments', segments: batch });
      batch = [];
      part = undefined;
      keys = 0;
    }
  }
  if (batch.length > 0) piece({ p: 'segments', segments: batch });
  const sameTable = prev?.table === table;
  if (!sameTable) chunks([...c.table.exact], hostsPerPiece, (hosts) => piece({ p: 'exact', hosts }));
  piece({
    p: 'end',
    hash: c.hash,
    sameRouteKeys,
    sameStatusKeys,
    ...(diff ? { removedSegments: diff.removed } : {}),
    sameTable,
    wildcard: sameTable ? [] : [...c.table.wildcard],
    wildcardSuffixes: sameTable ? [] : c.table.wildcardSuffixes,
    any: sameTable ? [] : c.table.any,
    certificates: [...c.certificates],
    references: { services: [...r.references.services], secrets: [...r.references.secrets] },
    ...((r as RoutingBuildResult).routingApis ? { routingApis: (r as RoutingBuildResult).routingApis } : {}),
  });
  return { pieces: out, sent: { result: r, routes: c.routes, statuses: r.statuses, endpoints, table } };
}

main();
