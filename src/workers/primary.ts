// The primary of `--workers N`: builds the routing table once and hands it to every worker, serves the admin
// endpoints for the whole group (metrics summed across workers), and turns SIGTERM into the same paced drain
// in every worker. Workers share the listening port through node:cluster.
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from '../config/config.ts';
import { startControlPlane } from '../control-plane.ts';
import { formatAddress } from '../data-plane.ts';
import { closeServer, readiness, warnDebugExposed } from '../main.ts';
import { SnapshotHolder } from '../model/holder.ts';
import type { Snapshot, SnapshotContent } from '../model/snapshot.ts';
import { createAdminServer, listen } from '../telemetry/admin-server.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';
import type { ToPrimary, ToWorker } from './messages.ts';
import { Respawner } from './respawn.ts';

export interface PrimaryRunning {
  readonly adminAddress: AddressInfo;
  /** The shared listening address, once the first worker listens. */
  listening(): Promise<AddressInfo>;
  shutdown(): Promise<void>;
  close(): Promise<void>;
}

/** Answers /metrics with what the workers sent within this long: a worker that dies mid-scrape must not hang it. */
const GATHER_MS = 2000;

export async function runPrimary(config: Config, log: Logger, clock: Clock): Promise<PrimaryRunning> {
  // Workers accept on the shared socket themselves (the kernel spreads connections): with the default
  // round-robin the primary accepts every connection and passes its handle over IPC, which measured 1.7× the
  // CPU per handshake. Connections are long-lived, so the kernel's less even spread costs little.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ serialization: 'advanced' });
  const metrics = new Metrics();
  const holder = new SnapshotHolder();
  const listeningWorkers = new Set<number>();
  const pending = new Map<number, { need: number; got: MetricObjectWithValues<MetricValue<string>>[][]; resolve: (v: MetricObjectWithValues<MetricValue<string>>[][]) => void }>();
  let nextId = 1;
  let shuttingDown = false;
  let firstAddress: ((a: AddressInfo) => void) | undefined;
  const addressKnown = new Promise<AddressInfo>((r) => (firstAddress = r));

  const control = await startControlPlane(config, log, metrics, holder, clock);
  const toWorker = (w: Worker, m: ToWorker) => {
    if (w.isConnected()) w.send(m);
  };
  holder.onSwap((next) => {
    const content = forWorkers(next);
    for (const w of Object.values(cluster.workers ?? {})) if (w) toWorker(w, { t: 'snapshot', content });
  });

  const respawner = new Respawner({ clock, fork: () => fork() });
  const fork = () => {
    const startedAt = clock.now();
    const w = cluster.fork();
    w.on('message', (m: ToPrimary) => {
      if (m.t === 'hello') {
        const cur = holder.current();
        if (cur) toWorker(w, { t: 'snapshot', content: forWorkers(cur) });
      } else if (m.t === 'listening') listeningWorkers.add(w.id);
      else if (m.t === 'metrics') {
        const p = pending.get(m.id);
        if (p) {
          p.got.push(m.data);
          if (p.got.length >= p.need) p.resolve(p.got);
        }
      }
    });
    w.on('listening', (a: { address: string; port: number; addressType: number | string }) =>
      firstAddress?.({ address: a.address, port: a.port, family: a.addressType === 6 || a.addressType === 'udp6' ? 'IPv6' : 'IPv4' }),
    );
    w.on('exit', (code, signal) => {
      listeningWorkers.delete(w.id);
      if (shuttingDown) return;
      const waitMs = respawner.died(startedAt);
      log.error({ worker: w.id, code, signal, waitMs }, 'worker died; starting another');
    });
  };
  for (let i = 0; i < config.workers; i++) fork();

  const workerMetrics = async (): Promise<string> => {
    const live = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w?.isConnected()));
    const id = nextId++;
    let gather: ClockTimer | undefined;
    const got = await new Promise<MetricObjectWithValues<MetricValue<string>>[][]>((resolve) => {
      pending.set(id, { need: live.length, got: [], resolve });
      for (const w of live) toWorker(w, { t: 'metrics', id });
      gather = clock.setTimeout(() => resolve(pending.get(id)?.got ?? []), GATHER_MS);
    });
    clock.clearTimeout(gather);
    pending.delete(id);
    return AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), ...got]).metrics();
  };
  const admin = createAdminServer({
    metrics,
    metricsText: workerMetrics,
    snapshot: () => holder.current(),
    debugEndpoints: config.debugEndpoints,
    ready: () => {
      const r = readiness(shuttingDown, control.synced(), holder);
      if (r.ready && listeningWorkers.size < config.workers) return { ready: false, why: `${listeningWorkers.size}/${config.workers} workers listening` };
      return r;
    },
  });
  const adminAddress = await listen(admin, config.adminListen.host, config.adminListen.port);
  warnDebugExposed(config, log);
  void addressKnown.then((a) => log.info({ listen: formatAddress(a), admin: formatAddress(adminAddress), mode: config.mode, workers: config.workers, generation: holder.current()?.generation }, 'wsgate serving'));

  const stopWorkers = (m: ToWorker | 'kill') =>
    Promise.all(
      Object.values(cluster.workers ?? {}).map((w) => {
        if (!w) return undefined;
        const exited = new Promise((r) => w.once('exit', r));
        if (m === 'kill') w.kill('SIGINT');
        else toWorker(w, m);
        return exited;
      }),
    );
  return {
    adminAddress,
    listening: () => addressKnown,
    async shutdown() {
      shuttingDown = true;
      respawner.stop();
      log.info({ workers: config.workers }, 'shutdown: draining every worker');
      await stopWorkers({ t: 'shutdown' });
      await control.stop();
      await closeServer(admin);
      log.info('shutdown complete');
    },
    async close() {
      shuttingDown = true;
      respawner.stop();
      await stopWorkers('kill');
      await control.stop();
      await closeServer(admin);
    },
  };
}

/** The snapshot as it travels to a worker. Structured clone copies Maps but not a class's private fields, so the
 *  endpoints (an EndpointTable) travel as a plain Map. */
function forWorkers(s: Snapshot): SnapshotContent {
  const { generation: _g, ...content } = s;
  return { ...content, endpoints: new Map(content.endpoints) };
}
