// wsgate replicas sharing one Redis, for the cluster tests: in process (a proxy wired with the cluster state
// as the data plane wires it), or as child processes of the CLI run from source (so SIGKILL is real).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { startCluster, type ClusterState } from '../../src/cluster/cluster.ts';
import type { RedisConfig } from '../../src/config/config.ts';
import type { RouteObject } from '../../src/dag/input.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import type { Clock } from '../../src/util/clock.ts';
import { systemClock } from '../../src/util/clock.ts';
import { silentLog, startGate, type Gate } from './harness.ts';

/** An upgrade's outcome: 101 with the open socket, or the refusal's status and wsgate-reason. */
export type Attempt = { status: number; reason?: string; ws?: WebSocket };

export async function attempt(url: string, headers: Record<string, string> = {}): Promise<Attempt> {
  const ws = new WebSocket(url, { headers });
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, reason: String(res.headers['wsgate-reason']) });
      res.resume();
    });
  });
}

export function redisConfig(url: string, extra: Partial<RedisConfig> = {}): RedisConfig {
  return { url, timeoutMs: 2000, keyPrefix: 'wsgate:', leaseTtlMs: 30000, failureMode: 'Open', ...extra };
}

export interface ClusterGate {
  readonly gate: Gate;
  readonly cluster: ClusterState;
  close(): Promise<void>;
}

/** One replica in this process; redis undefined: per-process budgets only. */
export async function startClusterGate(routes: readonly RouteObject[], redis: RedisConfig | undefined, o: { identity?: string; clock?: Clock } = {}): Promise<ClusterGate> {
  const metrics = new Metrics({ defaultMetrics: false });
  const clock = o.clock ?? systemClock();
  const cluster = await startCluster({ ...(redis ? { redis } : {}), identity: o.identity ?? 'test', clock, log: silentLog, registry: metrics.registry });
  const security = createSecurity({ trustedProxies: [], log: silentLog, clock, cluster });
  const gate = await startGate(routes, {
    metrics,
    clock,
    hooks: {
      admission: security.admission,
      established: (ctx, conn) => cluster.established(ctx, conn),
      ended: (conn) => cluster.ended(conn),
    },
  });
  return {
    gate,
    cluster,
    async close() {
      await gate.close();
      await cluster.close();
    },
  };
}

const cli = join(import.meta.dirname, '../../src/cli.ts');

export interface GateProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exited: Promise<unknown>;
  stdout(): string;
}

/** `wsgate --config FILE` from source, on loopback ports; resolves once it serves (it has joined Redis by then,
 *  or logged that it could not). */
export async function startGateProcess(args: readonly string[]): Promise<GateProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  let out = '';
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"msg":"wsgate serving"'));
      if (line) resolve(Number((JSON.parse(line) as { listen: string }).listen.split(':').pop()));
    });
    void exited.then(() => reject(new Error(`wsgate exited before serving: ${err}${out}`)));
  });
  return { child, port, exited, stdout: () => out };
}

/** `wsgate revoke ...` from source; resolves with its exit code and output. */
export async function runCli(args: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, out, err };
}
