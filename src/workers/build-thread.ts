// The build thread: a full build (and, standalone, reading and checking the route file) runs here, not on the
// loop that relays frames. It keeps its own copy of the source's objects, fed with changes by the control plane,
// and answers each build with the result cut into serialized pieces (build-protocol.ts).
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { serialize } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { createSpecValidator } from '../api/validate.ts';
import { createBuilder, createContentHasher, type BuildResult } from '../dag/build.ts';
import { rebuildServices } from '../dag/incremental.ts';
import { emptyInput, type BuildInput, type EndpointSliceLite } from '../dag/input.ts';
import { loadRoutes } from '../sources/file/load-routes.ts';
import { readReferencedFiles } from '../sources/file/referenced-files.ts';
import type { ObjectKind, SourceObject } from '../sources/source.ts';
import type { BuildThreadData, FromBuildThread, ResultPiece, ToBuildThread } from './build-protocol.ts';

/** Pieces small enough that deserializing one takes about a millisecond (measured: ~1 ms per 100 routes). */
const routesPerPiece = 100;
const statusesPerPiece = 500;
const keysPerPiece = 5000;
const hostsPerPiece = 500;

const kinds: readonly ObjectKind[] = ['websocketroutes', 'services', 'endpointslices', 'secrets'];

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
  const build = createBuilder(options, hash);
  const objects = new Map<ObjectKind, Map<string, SourceObject>>(kinds.map((k) => [k, new Map()]));
  let fileInput: BuildInput | undefined;
  let sent: Sent | undefined;
  /** The last result built here, and what changed since: Services (by their own or their slices' change), or
   *  something else, which needs a full build. */
  let last: BuildResult | undefined;
  const changedServices = new Set<string>();
  let needFull = true;
  const owner = (o: unknown): string | undefined => {
    const s = o as EndpointSliceLite | undefined;
    const name = s?.metadata.labels?.['kubernetes.io/service-name'];
    return s && name ? `${s.metadata.namespace}/${name}` : undefined;
  };
  const send = (m: FromBuildThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

  const input = (): BuildInput => {
    if (fileInput) return fileInput;
    const of = <T>(k: ObjectKind) => [...objects.get(k)!.values()] as T[];
    return { routes: of('websocketroutes'), services: of('services'), endpointSlices: of('endpointslices'), secrets: of('secrets') };
  };

  port.on('message', (m: ToBuildThread) => {
    if (m.t === 'objects') {
      if (m.reset) {
        for (const map of objects.values()) map.clear();
        needFull = true;
      }
      for (const c of m.changes) {
        const map = objects.get(c.kind)!;
        if (c.kind === 'services') {
          changedServices.add(c.key);
        } else if (c.kind === 'endpointslices') {
          for (const o of [owner(map.get(c.key)), owner(c.after)]) if (o) changedServices.add(o);
        } else {
          needFull = true;
        }
        if (c.after === undefined) map.delete(c.key);
        else map.set(c.key, c.after);
      }
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
      const objectsNow = input();
      const built = (!needFull && !fileInput && last && rebuildServices(build, hash, last, objectsNow, changedServices)) || build(objectsNow);
      last = built;
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

/** What the previous result sent looked like, to send only what changed. */
interface Sent {
  readonly routes: Map<string, string>;
  readonly statuses: Map<string, string>;
  readonly endpointKeys: ReadonlySet<string>;
  readonly table: string;
}

/** JSON of each route and status object once: an incremental result shares most of them with the last one. */
const jsonOf = new WeakMap<object, string>();
function json(o: object): string {
  let j = jsonOf.get(o);
  if (j === undefined) jsonOf.set(o, (j = JSON.stringify(o)));
  return j;
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
  const routes = new Map([...c.routes].map(([k, v]) => [k, json(v)]));
  const statuses = new Map(r.statuses.map((s) => [s.key as string, json(s)]));
  const endpointKeys = new Set(c.endpoints.keys());
  // The table holds Maps, which JSON.stringify would write as {}: their entries are compared.
  let table = jsonOf.get(c.table);
  if (table === undefined) jsonOf.set(c.table, (table = JSON.stringify([[...c.table.exact], [...c.table.wildcard], c.table.wildcardSuffixes, c.table.any])));
  chunks([...c.routes].filter(([k]) => prev?.routes.get(k) !== routes.get(k)), routesPerPiece, (routes) => piece({ p: 'routes', routes }));
  piece({ p: 'routeKeys', keys: [...c.routes.keys()] });
  chunks(r.statuses.filter((s) => prev?.statuses.get(s.key) !== statuses.get(s.key)), statusesPerPiece, (statuses) => piece({ p: 'statuses', statuses }));
  piece({ p: 'statusKeys', keys: r.statuses.map((s) => s.key) });
  // Keys are sorted by plain string order, so the receiver can merge the added ones into its previous list.
  const endpointDiff = prev
    ? { added: [...endpointKeys].filter((k) => !prev.endpointKeys.has(k)), removed: [...prev.endpointKeys].filter((k) => !endpointKeys.has(k)) }
    : undefined;
  if (!endpointDiff) chunks([...c.endpoints.keys()], keysPerPiece, (keys) => piece({ p: 'endpoints', keys }));
  const sameTable = prev?.table === table;
  if (!sameTable) chunks([...c.table.exact], hostsPerPiece, (hosts) => piece({ p: 'exact', hosts }));
  piece({
    p: 'end',
    hash: c.hash,
    ...(endpointDiff ? { endpointDiff } : {}),
    sameTable,
    wildcard: sameTable ? [] : [...c.table.wildcard],
    wildcardSuffixes: sameTable ? [] : c.table.wildcardSuffixes,
    any: sameTable ? [] : c.table.any,
    certificates: [...c.certificates],
    references: { services: [...r.references.services], secrets: [...r.references.secrets] },
  });
  return { pieces: out, sent: { routes, statuses, endpointKeys, table } };
}

main();
