// Full builds off the relaying loop: the builder runs in a worker thread (workers/build-thread.ts), and its
// result comes back in serialized pieces that this side deserializes one per turn of the loop, yielding between
// them, so no turn holds the relay up for more than about a millisecond. Measured at 5,000 routes / 50,000
// endpoints: deserializing the whole result at once costs 230–360 ms (as much as the build), a piece of 100
// routes about 1 ms. Objects reach the thread as the changes the source signals (only the latest state of each
// object, when a build is asked for), the route file in standalone mode is read and checked there too.
import { setImmediate as nextTurn } from 'node:timers/promises';
import { deserialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { BuildResult } from '../dag/build.ts';
import { endpointTableOf, routeTableOf, withStatuses } from '../dag/incremental.ts';
import type { BuildInput, BuildOptions } from '../dag/input.ts';
import type { RoutingBuildResult, RoutingApiStatuses } from '../dag/routing-apis.ts';
import { isDeepStrictEqual } from 'node:util';
import type { ConfigProblem } from '../errors.ts';
import { ChunkedMap } from '../model/chunked-map.ts';
import { EndpointTable } from '../model/endpoint-table.ts';
import type { Endpoint, MatchEntry, ObjectKey, Route, RouteStatus, SnapshotContent, TlsCertificate } from '../model/snapshot.ts';
import type { ObjectChange, RoutingApisOn, Source, SourceChange } from '../sources/source.ts';
import type { RouteLoader } from '../sources/file/route-loader.ts';
import type { BuildThreadData, FromBuildThread, ResultPiece, ToBuildThread } from '../workers/build-protocol.ts';

/** How the controller gets a build: synchronously here, or from a thread. */
export interface BuildEngine {
  /** Every signal, relevant or not, so that an engine keeping its own copy of the objects stays in step. */
  note(change: SourceChange): void;
  build(source: Source): Promise<RoutingBuildResult>;
  close(): Promise<void>;
}

/** Serialized bytes taken over per turn of the loop: a change's few small pieces in one turn, a whole table's
 *  over many (deserializing measured about 1 ms per 100 routes, some 100 KiB). */
const bytesPerTurn = 64 * 1024;

/** Objects sent to the thread per message, so that serializing one message stays short too. */
const objectsPerMessage = 500;

export class ThreadBuilder implements BuildEngine, RouteLoader {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (m: FromBuildThread) => void; reject: (e: Error) => void }>();
  /** Latest state of each object changed since the thread last heard, by "kind key". */
  readonly #changed = new Map<string, Pick<ObjectChange, 'kind' | 'key' | 'after'>>();
  #mirrored = false;
  #routing: RoutingApisOn = { gatewayApi: false, ingress: false };
  /** The last result adopted: the next one shares its unchanged parts. */
  #last: BuildResult | undefined;
  #nextId = 1;
  #closed = false;
  /** Why the thread is gone: every later build fails with it (logged by the controller) instead of waiting. */
  #dead: Error | undefined;

  constructor(options: BuildOptions) {
    const data: BuildThreadData = { options };
    this.#worker = startThread(data);
    this.#worker.unref();
    this.#worker.on('message', (m: FromBuildThread) => {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      p?.resolve(m);
    });
    const fail = (err: Error) => {
      this.#dead ??= err;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`build thread exited (${code})`)));
  }

  note(change: SourceChange): void {
    if ('all' in change) return;
    for (const c of change.objects) this.#changed.set(`${c.kind} ${c.key}`, { kind: c.kind, key: c.key, ...(c.after ? { after: c.after } : {}) });
  }

  async load(path: string, baseDir: string): Promise<{ problems: readonly ConfigProblem[]; paths: readonly string[] }> {
    const m = await this.#ask((id) => ({ t: 'load', id, path, baseDir }));
    if (m.t === 'failed') throw new Error(m.message);
    if (m.t !== 'loaded') throw new Error(`build thread answered ${m.t} to load`);
    return { problems: m.problems, paths: m.paths };
  }

  /** The thread keeps the objects; the first build sends the source's whole state, later ones what changed.
   *  (A route file loaded by the thread itself is its input, and the file source's own view is empty.) */
  async build(source: Source): Promise<RoutingBuildResult> {
    const routing = source.routingApis?.();
    const on = { gatewayApi: routing?.gatewayApi === true, ingress: routing?.ingress === true };
    if (!isDeepStrictEqual(on, this.#routing)) {
      this.#routing = on;
      this.#worker.postMessage({ t: 'routing', on } satisfies ToBuildThread);
    }
    if (!this.#mirrored) {
      const changes = source.keyedObjects ? [...source.keyedObjects()] : objectsOf(source.current());
      this.#changed.clear();
      await this.#sendObjects(changes, true);
      this.#mirrored = true;
    } else if (this.#changed.size > 0) {
      const changes = [...this.#changed.values()];
      this.#changed.clear();
      await this.#sendObjects(changes, false);
    }
    const prev = this.#last;
    // Until this result is adopted whole, there is nothing the next one may share from.
    this.#last = undefined;
    const m = await this.#ask((id) => ({ t: 'build', id, fresh: prev === undefined }));
    if (m.t === 'failed') throw new Error(m.message);
    if (m.t !== 'built') throw new Error(`build thread answered ${m.t} to build`);
    const result = await adopt(m.pieces, prev);
    this.#last = result;
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.terminate();
  }

  async #sendObjects(changes: readonly Pick<ObjectChange, 'kind' | 'key' | 'after'>[], reset: boolean): Promise<void> {
    for (let i = 0; i < changes.length || (reset && i === 0); i += objectsPerMessage) {
      const msg: ToBuildThread = { t: 'objects', reset: reset && i === 0, changes: changes.slice(i, i + objectsPerMessage) };
      this.#worker.postMessage(msg);
      if (i + objectsPerMessage < changes.length) await nextTurn();
    }
  }

  #ask(make: (id: number) => ToBuildThread): Promise<FromBuildThread> {
    if (this.#closed) return Promise.reject(new Error('build thread closed'));
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(make(id));
    });
  }
}

/** A source's whole state as changes (a source that cannot list its objects with their keys). */
function objectsOf(all: BuildInput): Pick<ObjectChange, 'kind' | 'key' | 'after'>[] {
  const key = (o: { metadata: { namespace?: string; name: string } }) => `${o.metadata.namespace}/${o.metadata.name}`;
  return [
    ...all.routes.map((o) => ({ kind: 'websocketroutes' as const, key: key(o), after: o })),
    ...all.services.map((o) => ({ kind: 'services' as const, key: key(o), after: o })),
    ...all.endpointSlices.map((o) => ({ kind: 'endpointslices' as const, key: key(o), after: o })),
    ...all.secrets.map((o) => ({ kind: 'secrets' as const, key: key(o), after: o })),
  ];
}

/** Once built, the thread is build-thread.js beside this file's folder. Run from the .ts sources (tsx: tests,
 *  benches), Node 20 does not carry tsx's loader into a worker thread, so the thread registers it first. */
function startThread(workerData: BuildThreadData): Worker {
  if (!new URL(import.meta.url).pathname.endsWith('.ts')) return new Worker(new URL('../workers/build-thread.js', import.meta.url), { workerData });
  const file = new URL('../workers/build-thread.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(file)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

/** Rebuilds the result from its pieces, one piece per turn of the loop, frozen as the builder freezes it. What
 *  did not change is taken from the previous result: the same objects, so the new snapshot shares them. */
async function adopt(pieces: readonly Uint8Array[], prev: BuildResult | undefined): Promise<RoutingBuildResult> {
  const changedRoutes = new Map<string, Route>();
  const changedEndpoints = new Map<string, Endpoint>();
  const changedStatuses = new Map<string, RouteStatus>();
  let routeKeys: readonly string[] | undefined;
  let statusKeys: readonly string[] | undefined;
  /** Endpoint segments sent, each made into its Map as it arrives (a piece holds a few thousand endpoints). */
  const segments: [string, Map<string, Endpoint>][] = [];
  const exact = new Map<string, readonly MatchEntry[]>();
  const missing = (what: string, k: string): never => {
    throw new Error(`build thread result refers to ${what} ${k}, not sent and not in the previous result`);
  };
  const prevEndpoints = prev ? endpointTableOf(prev) : undefined;
  let unyielded = 0;
  for (const buf of pieces) {
    const p = deserialize(buf) as ResultPiece;
    switch (p.p) {
      case 'routes':
        for (const [k, v] of p.routes) {
          const route = deepFreeze(v as Route);
          changedRoutes.set(k, route);
          for (const rule of route.rules) for (const b of rule.backends) for (const e of b.endpoints) changedEndpoints.set(e.key, e);
        }
        break;
      case 'routeKeys':
        routeKeys = p.keys;
        break;
      case 'statuses':
        for (const s of p.statuses) changedStatuses.set((s as RouteStatus).key, deepFreeze(s as RouteStatus));
        break;
      case 'statusKeys':
        statusKeys = p.keys;
        break;
      case 'segments':
        for (const [s, keys] of p.segments) {
          // A large segment comes in consecutive parts: they make one Map.
          const last = segments[segments.length - 1];
          let into = last?.[0] === s ? last[1] : undefined;
          if (!into) segments.push([s, (into = new Map())]);
          // An unchanged endpoint is the previous table's, found in its segment of the same name.
          const before = prevEndpoints?.segment(s);
          for (const k of keys) into.set(k, changedEndpoints.get(k) ?? before?.get(k) ?? missing('endpoint', k));
        }
        // Its bytes are few for the lookups it costs: a piece of keys is a turn's work on its own.
        unyielded = bytesPerTurn;
        break;
      case 'exact':
        for (const [h, es] of p.hosts) exact.set(h, deepFreeze(es as MatchEntry[]));
        break;
      case 'end': {
        if ((p.sameRouteKeys || p.sameStatusKeys || p.removedSegments || p.sameTable) && !prev) throw new Error('build thread result shares from a result this side does not have');
        const routes = routeKeys
          ? ChunkedMap.from(routeKeys.map((k) => [k as ObjectKey, changedRoutes.get(k) ?? prev?.content.routes.get(k as ObjectKey) ?? missing('route', k)] as const))
          : // The same keys: the previous routes, with the changed ones set in their place (only their chunks are new).
            routeTableOf(prev!).with([...changedRoutes].map(([k, r]) => [prev!.content.routes.has(k as ObjectKey) ? (k as ObjectKey) : missing('route key', k), r] as const));
        let statuses: readonly RouteStatus[];
        if (statusKeys) {
          const prevStatuses = new Map((prev?.statuses ?? []).map((s) => [s.key as string, s]));
          statuses = statusKeys.map((k) => changedStatuses.get(k) ?? prevStatuses.get(k) ?? missing('status', k));
        } else {
          statuses = withStatuses(prev!.statuses, changedStatuses.values()) ?? missing('status key', [...changedStatuses.keys()].join(', '));
        }
        const endpoints = p.removedSegments
          ? endpointTableOf(prev!).withSegmentMaps(new Map<string, ReadonlyMap<string, Endpoint> | undefined>([...segments, ...p.removedSegments.map((s) => [s, undefined] as const)]))
          : EndpointTable.ofSegments(segments);
        const table = p.sameTable
          ? prev!.content.table
          : Object.freeze({
              exact,
              wildcard: new Map(p.wildcard.map(([h, es]) => [h, deepFreeze(es as MatchEntry[])])),
              wildcardSuffixes: Object.freeze([...p.wildcardSuffixes]),
              any: deepFreeze(p.any as MatchEntry[]),
            });
        const certificates = new Map(p.certificates.map(([h, c]) => [h, Object.freeze(c as TlsCertificate)]));
        const content: SnapshotContent = Object.freeze({ hash: p.hash, routes, table, endpoints, certificates });
        const references = { services: new Set(p.references.services), secrets: new Set(p.references.secrets) };
        return { content, statuses, references, ...(p.routingApis ? { routingApis: deepFreeze(p.routingApis as RoutingApiStatuses) } : {}) };
      }
    }
    unyielded += buf.byteLength;
    if (unyielded >= bytesPerTurn) {
      unyielded = 0;
      await nextTurn();
    }
  }
  throw new Error('build thread result ended early');
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
