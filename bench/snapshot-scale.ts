// Issue 3's scale figures (a benchmark, not a test):
//   1. build time of the routing table for 5,000 routes and 50,000 endpoints (5,000 Services, one
//      EndpointSlice of 10 endpoints each) through createBuilder (src/dag/build.ts): cold, then the median
//      of several warm runs;
//   2. the time from an EndpointSlice change on the fake API server to the published snapshot
//      (holder.waitForGeneration) with wsgate in Kubernetes mode (serve() in this process, the real
//      client-node watching the in-repo fake), median over ~20 changes, at a small and at the full scale.
// Run alone: node --import tsx bench/snapshot-scale.ts [--routes N] [--changes N] [--holdoff-ms N]
// From the bench harness: benchSnapshotScale(options) → SnapshotScaleResult, formatSnapshotScale(result).
// The fake runs in the same process as wsgate, so its own JSON and socket work is inside the latency figures.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { createBuilder } from '../src/dag/build.ts';
import type { BuildInput, EndpointSliceLite, RouteObject, ServiceLite } from '../src/dag/input.ts';
import { loadConfig } from '../src/config/config.ts';
import { flags } from '../src/config/flags.ts';
import { serve } from '../src/main.ts';
import { FakeApiServer, type KObject } from '../test/support/fake-apiserver/index.ts';

/** The first status write of every route is waited for before the changes are timed: unpaced, where the tree
 *  paces its writes at all (trees from before --kube-api-qps do not). */
const unpacedWrites = (flags as readonly { name: string }[]).some((f) => f.name === 'kube-api-qps') ? ['--kube-api-qps', '100000', '--kube-api-burst', '100000'] : [];

export interface SnapshotScaleOptions {
  /** Routes, each with its own hostname and Service (default 5,000). */
  readonly routes?: number;
  /** Endpoints per Service (default 10: 50,000 in all). */
  readonly endpointsPerService?: number;
  /** Warm build runs (default 5). */
  readonly buildRuns?: number;
  /** EndpointSlice changes timed per scale (default 20). */
  readonly changes?: number;
  /** --build-holdoff-ms for the latency runs (default 100, wsgate's default). */
  readonly holdoffMs?: number;
  /** Skip the Kubernetes-mode latency (build figures only). */
  readonly skipLatency?: boolean;
}

export interface LatencyFigures {
  readonly routes: number;
  readonly endpoints: number;
  readonly holdoffMs: number;
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly p90Ms: number;
  /** CPU time of this process's main thread (wsgate's relay loop, and the fake API server here) from each change
   *  to its publication, ms: the build thread's work is not in it. */
  readonly mainCpuMs: readonly number[];
}

export interface SnapshotScaleResult {
  readonly build: {
    readonly routes: number;
    readonly endpoints: number;
    readonly coldMs: number;
    readonly runsMs: readonly number[];
    readonly medianMs: number;
    /** What the snapshot held, as a check that the input was accepted whole. */
    readonly published: string;
  };
  /** Small (10 routes) and full scale; empty when skipped. */
  readonly sliceToPublish: readonly LatencyFigures[];
}

const ns = 'bench';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const ip = (i: number, j: number): string => `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`;

function sliceOf(i: number, perService: number, version = 0): EndpointSliceLite & { apiVersion: string; kind: string } {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: ns, name: `svc-${i}-abcde`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'ws', port: 8080, protocol: 'TCP' }],
    // A change replaces the last endpoint with a new pod address (a rolling update, one pod at a time).
    endpoints: Array.from({ length: perService }, (_, j) => ({
      addresses: [j === perService - 1 && version > 0 ? `10.200.${(version >> 8) & 255}.${version & 255}` : ip(i, j)],
      conditions: { ready: true, serving: true, terminating: false },
      targetRef: { name: `svc-${i}-pod-${j}-${j === perService - 1 ? version : 0}` },
    })),
  };
}

function routeOf(i: number): RouteObject {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { namespace: ns, name: `route-${i}`, generation: 1, creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString() },
    spec: { hostnames: [`r${i}.bench.example`], rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/ws' } }], backendRefs: [{ name: `svc-${i}`, port: 80 }] }] },
  };
}

function serviceOf(i: number): ServiceLite & { apiVersion: string; kind: string } {
  return { apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name: `svc-${i}` }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 8080 }] } };
}

/** The builder's input at this scale, as the Kubernetes source hands it over. */
export function scaleBuildInput(routes: number, perService: number): BuildInput {
  return {
    routes: Array.from({ length: routes }, (_, i) => routeOf(i)),
    services: Array.from({ length: routes }, (_, i) => serviceOf(i)),
    endpointSlices: Array.from({ length: routes }, (_, i) => sliceOf(i, perService)),
    secrets: [],
  };
}

export function benchBuild(routes: number, perService: number, runs: number): SnapshotScaleResult['build'] {
  const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const input = scaleBuildInput(routes, perService);
  let t = performance.now();
  const first = build(input);
  const coldMs = performance.now() - t;
  const runsMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    build(input);
    runsMs.push(performance.now() - t);
  }
  const accepted = first.statuses.filter((s) => s.conditions.some((c) => c.type === 'Accepted' && c.status === 'True')).length;
  return {
    routes,
    endpoints: routes * perService,
    coldMs,
    runsMs,
    medianMs: median(runsMs),
    published: `${first.content.routes.size} routes (${accepted} accepted), ${first.content.endpoints.size} endpoints`,
  };
}

/** CPU time of the main thread so far, ms: the first field of its schedstat, nanoseconds on the CPU
 *  (https://docs.kernel.org/scheduler/sched-stats.html); the main thread's task id is the process id. */
function mainThreadCpuMs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** wsgate in Kubernetes mode against a fake holding `routes` routes; times `changes` EndpointSlice updates. */
export async function benchSliceToPublish(routes: number, perService: number, changes: number, holdoffMs: number): Promise<LatencyFigures> {
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 10_000, historyLimit: 100_000 });
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-bench-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, fake.kubeconfig());
  let running: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    for (let i = 0; i < routes; i++) {
      fake.create(serviceOf(i) as unknown as KObject);
      fake.create(sliceOf(i, perService) as unknown as KObject);
      fake.create(routeOf(i) as unknown as KObject);
    }
    running = await serve(
      loadConfig([
        '--kubernetes', '--kubeconfig', kubeconfig, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--pod-name', 'bench',
        '--build-holdoff-ms', String(holdoffMs), '--shutdown-delay-seconds', '0', '--drain-seconds', '0', '--log-level', 'silent',
        ...unpacedWrites,
      ], {}),
      pino({ level: 'silent' }),
    );
    const holder = running.holder;
    const first = await holder.waitForGeneration(1);
    if (first.routes.size !== routes) throw new Error(`first snapshot has ${first.routes.size} of ${routes} routes`);
    // The leader's first status write of every route is not part of a change: let it finish first.
    const statusWrites = (): number => fake.requests.filter((r) => r.verb === 'patch' && r.resource === 'websocketroutes/status').length;
    while (statusWrites() < routes) await new Promise((r) => setTimeout(r, 50));
    const samplesMs: number[] = [];
    const mainCpuMs: number[] = [];
    for (let k = 1; k <= changes; k++) {
      const i = (k * 7919) % routes;
      const gen = holder.current()!.generation;
      const t0 = performance.now();
      const c0 = mainThreadCpuMs();
      fake.update(sliceOf(i, perService, k) as unknown as KObject);
      const s = await holder.waitForGeneration(gen + 1);
      samplesMs.push(performance.now() - t0);
      mainCpuMs.push(mainThreadCpuMs() - c0);
      const want = `10.200.${(k >> 8) & 255}.${k & 255}:8080`;
      const eps = s.routes.get(`${ns}/route-${i}`)?.rules[0]?.backends[0]?.endpoints ?? [];
      if (!eps.some((e) => e.address === want)) throw new Error(`change ${k} not in the published snapshot`);
      // Let the status writer settle between changes, so each sample times one change alone.
      await new Promise((r) => setTimeout(r, 20));
    }
    return { routes, endpoints: routes * perService, holdoffMs, samplesMs, medianMs: median(samplesMs), p90Ms: quantile(samplesMs, 0.9), mainCpuMs };
  } finally {
    await running?.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchSnapshotScale(o: SnapshotScaleOptions = {}): Promise<SnapshotScaleResult> {
  const routes = o.routes ?? 5_000;
  const per = o.endpointsPerService ?? 10;
  const build = benchBuild(routes, per, o.buildRuns ?? 5);
  const sliceToPublish: LatencyFigures[] = [];
  if (!o.skipLatency) {
    const changes = o.changes ?? 20;
    const holdoff = o.holdoffMs ?? 100;
    sliceToPublish.push(await benchSliceToPublish(Math.min(10, routes), per, changes, holdoff));
    sliceToPublish.push(await benchSliceToPublish(routes, per, changes, holdoff));
  }
  return { build, sliceToPublish };
}

export function formatSnapshotScale(r: SnapshotScaleResult): string {
  const f = (n: number): string => n.toFixed(n < 10 ? 1 : 0);
  const lines = [
    `Snapshot build, ${r.build.routes} routes / ${r.build.endpoints} endpoints: median ${f(r.build.medianMs)} ms over ${r.build.runsMs.length} runs (cold ${f(r.build.coldMs)} ms; runs ${r.build.runsMs.map(f).join(', ')}); ${r.build.published}`,
  ];
  for (const l of r.sliceToPublish) {
    lines.push(`EndpointSlice change → published snapshot, ${l.routes} routes / ${l.endpoints} endpoints, hold-off ${l.holdoffMs} ms: median ${f(l.medianMs)} ms, p90 ${f(l.p90Ms)} ms over ${l.samplesMs.length} changes; main-thread CPU per change median ${f(median(l.mainCpuMs))} ms, p90 ${f(quantile(l.mainCpuMs, 0.9))} ms`);
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const arg = (name: string): number | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const routes = arg('routes');
  const changes = arg('changes');
  const holdoffMs = arg('holdoff-ms');
  const result = await benchSnapshotScale({
    ...(routes !== undefined ? { routes } : {}),
    ...(changes !== undefined ? { changes } : {}),
    ...(holdoffMs !== undefined ? { holdoffMs } : {}),
  });
  process.stdout.write(formatSnapshotScale(result) + '\n');
}
