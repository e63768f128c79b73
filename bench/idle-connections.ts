// wsgate benchmark scenario: many idle WebSocket connections with heartbeats on. Not a test: bounded in count and
// time, it prints what it measured (and writes it as JSON).
//
//   node --import tsx bench/idle-connections.ts --scenario single|workers [--connections N] [--workers N]
//        [--batch N] [--window-seconds S] [--probe-seconds S] [--max-minutes M] [--no-netns] [--json FILE]
//
// single: 9,000 connections through one wsgate process; workers: 100,000 across `--workers 16`. wsgate runs
// standalone from dist/ (npm run build) with a route file whose one route has heartbeat.intervalSeconds 30.
// Echo backends (bench/echo-backend.ts), idle load generators (bench/idle-generator.ts) and the active probe
// (bench/idle-probe.ts) are separate processes. Every process must stay under the hard open-files limit
// (ulimit -Hn): a proxied connection holds two sockets in wsgate, one in a generator and one in a backend, so
// connections are split over enough generators and backends, and wsgate's processes are watched as they fill.
// Generators open from several loopback source addresses (127.0.0.2, 127.0.0.3, ...) because a bind() to port 0
// takes an ephemeral port per address, and the backends listen on several ports because wsgate's own connects
// (from 127.0.0.1) need a free port per destination.
//
// By default the whole scenario runs in a network namespace of its own (unshare --net, needs root): its
// 100,000-odd bound ports then cannot starve other programs on the machine of ephemeral ports.
//
// Sequence: start backends and wsgate; idle CPU over a window with no connection; the probe (64 B every 10 ms,
// RTT of each echo) with no other connection; RSS (and V8 heap, from /metrics) of every wsgate process; ramp the
// idle connections in batches, stopping at the first failed handshake, dead process, open-files limit in
// sight, low free memory or the time bound; RSS and heap again; idle CPU over the same window (the heartbeat
// pings the generators saw are counted); the probe again; count connections lost; kill everything.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromIdleGenerator, FromProbe, IdleGeneratorStatus, ProbeJob, ProbeResult, ToIdleGenerator, ToProbe } from './idle-protocol.ts';
import { split } from './load.ts';
import { alive, cpuClock, cpuMicros, describeClock, processTree, rssKiB, ProcessGroup, type Proc } from './procs.ts';
import type { FromBackend } from './protocol.ts';
import { percentile } from './report.ts';
import { freePort } from './targets.ts';

interface Options {
  readonly scenario: 'single' | 'workers';
  readonly connections: number;
  /** wsgate --workers; 0: the flag is not given (one process). */
  readonly workers: number;
  readonly batch: number;
  readonly windowSeconds: number;
  readonly probeSeconds: number;
  readonly maxMinutes: number;
  readonly handshakeTimeoutSeconds: number;
  readonly netns: boolean;
  readonly inNetns: boolean;
  readonly json: string | undefined;
}

const presets = { single: { connections: 9_000, workers: 0 }, workers: { connections: 100_000, workers: 16 } } as const;
/** Connections per generator and per backend (each holds one socket per connection). */
const perLoadProcess = 12_500;
/** Connections per source address: bind() prefers odd ports (about 14,000 of the default range), leaving even ones to connect(). */
const perSource = 6_000;
/** File descriptors a wsgate process holds besides its connections' sockets (listeners, IPC, stdio, epoll, ...), generous. */
const fdOverhead = 100;
const heartbeatSeconds = 30;
const probe = { intervalMs: 10, size: 64, warmupSeconds: 1 } as const;

function usage(): string {
  return `usage: node --import tsx bench/idle-connections.ts --scenario single|workers [--connections N] [--workers N] [--batch N]
        [--window-seconds S] [--probe-seconds S] [--max-minutes M] [--handshake-timeout-seconds S] [--no-netns] [--json FILE]
  --scenario        single: 9000 connections, one wsgate process; workers: 100000 across --workers 16
  --connections N   idle connections to open (10..200000)
  --workers N       wsgate --workers N (0: one process, no flag)
  --batch N         connections opened per ramp step (default 500)
  --window-seconds  idle CPU window, with and without the connections (default 60)
  --probe-seconds   the active connection's run, with and without the connections (default 30)
  --max-minutes     bound on the whole ramp (default 20)
  --handshake-timeout-seconds  a generator's handshake not done in this time fails the ramp (default 30)
  --no-netns        run in the machine's network namespace instead of a new one (unshare --net)
  --json FILE       where the results go (default .cache/bench-idle-<scenario>.json)`;
}

function intArg(argv: readonly string[], i: number, name: string, min: number, max: number): number {
  const v = Number(argv[i]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${name} wants an integer ${min}..${max}\n${usage()}`);
  return v;
}

export function parseIdleArgs(argv: readonly string[]): Options {
  let scenario: Options['scenario'] | undefined;
  let connections: number | undefined;
  let workers: number | undefined;
  let batch = 500;
  let windowSeconds = 60;
  let probeSeconds = 30;
  let maxMinutes = 20;
  let handshakeTimeoutSeconds = 30;
  let netns = true;
  let inNetns = false;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--scenario') {
      const s = argv[++i];
      if (s !== 'single' && s !== 'workers') throw new Error(`--scenario wants single or workers\n${usage()}`);
      scenario = s;
    } else if (a === '--connections') connections = intArg(argv, ++i, a, 10, 200_000);
    else if (a === '--workers') workers = intArg(argv, ++i, a, 0, 64);
    else if (a === '--batch') batch = intArg(argv, ++i, a, 1, 5_000);
    else if (a === '--window-seconds') windowSeconds = intArg(argv, ++i, a, 1, 600);
    else if (a === '--probe-seconds') probeSeconds = intArg(argv, ++i, a, 2, 600);
    else if (a === '--max-minutes') maxMinutes = intArg(argv, ++i, a, 1, 120);
    else if (a === '--handshake-timeout-seconds') handshakeTimeoutSeconds = intArg(argv, ++i, a, 1, 600);
    else if (a === '--no-netns') netns = false;
    else if (a === '--in-netns') inNetns = true;
    else if (a === '--json') json = argv[++i];
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${usage()}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${usage()}`);
  }
  if (!scenario) throw new Error(`--scenario is required\n${usage()}`);
  const p = presets[scenario];
  return { scenario, connections: connections ?? p.connections, workers: workers ?? p.workers, batch, windowSeconds, probeSeconds, maxMinutes, handshakeTimeoutSeconds, netns, inNetns, json };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

function hardOpenFiles(): number {
  const m = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
}

function fdCounts(pid: number): { fds: number; sockets: number } {
  let fds = 0;
  let sockets = 0;
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      fds++;
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets++;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // gone
  }
  return { fds, sockets };
}

/** TcpExt counters of the namespace: accept queues that overflowed, SYNs dropped, retransmission timeouts. */
function tcpCounters(): Record<string, number> {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const [names, values] = [lines[0]?.split(' ') ?? [], lines[1]?.split(' ') ?? []];
  const out: Record<string, number> = {};
  for (const k of ['ListenOverflows', 'ListenDrops', 'TCPTimeouts', 'TCPAbortOnMemory']) out[k] = Number(values[names.indexOf(k)] ?? NaN);
  return out;
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Sends a message to an IPC child and waits for its first reply of one type. */
function ask<R extends { t: string }>(p: Proc, msg: unknown, type: R['t'], timeoutMs: number): Promise<R> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${p.name}: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m: R) => {
      if (m.t === type) done(undefined, m);
    };
    const onExit = () => done(new Error(`${p.name} exited: ${p.output().slice(-2000)}`));
    const done = (err?: Error, m?: R) => {
      clearTimeout(timer);
      p.child.off('message', onMsg);
      p.child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m as R);
    };
    p.child.on('message', onMsg);
    p.child.once('exit', onExit);
    if (msg !== undefined) p.child.send(msg as object);
  });
}

interface ProcSample {
  readonly pid: number;
  readonly role: string;
  readonly rssKiB: number;
  readonly fds: number;
  readonly sockets: number;
}

interface CpuWindow {
  readonly seconds: number;
  /** wsgate's CPU (all its processes and threads) over the window, in ms. */
  readonly cpuMs: number;
  /** Heartbeat pings the generators received in the window. */
  readonly pings: number;
}

interface ProbeSummary {
  readonly samples: number;
  readonly sent: number;
  readonly unanswered: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly error?: string;
}

export interface IdleResults {
  readonly scenario: string;
  readonly started: string;
  readonly machine: { readonly cores: number; readonly memGiB: number; readonly loadStart: readonly number[]; readonly loadEnd: readonly number[]; readonly node: string; readonly tree: string; readonly hardOpenFiles: number; readonly netns: boolean; readonly cpuClock: string };
  readonly plan: { readonly connections: number; readonly workers: number; readonly batch: number; readonly generators: number; readonly backends: number; readonly sources: readonly string[]; readonly windowSeconds: number; readonly probeSeconds: number };
  readonly reached: number;
  readonly stopReason: string | undefined;
  readonly rampSeconds: number;
  /** Kernel TCP counters (TcpExt in /proc/net/netstat) that grew during the ramp. */
  readonly tcpDuringRamp: Readonly<Record<string, number>>;
  readonly before: { readonly procs: readonly ProcSample[]; readonly heapUsedBytes: number | undefined };
  readonly after: { readonly procs: readonly ProcSample[]; readonly heapUsedBytes: number | undefined };
  /** RSS of all wsgate processes after each ramp step. */
  readonly ramp: readonly { readonly connections: number; readonly rssKiB: number; readonly seconds: number }[];
  readonly idleEmpty: CpuWindow;
  readonly idleLoaded: CpuWindow | undefined;
  readonly probeEmpty: ProbeSummary;
  readonly probeLoaded: ProbeSummary | undefined;
  /** Connections the generators had open at the end, and those closed on them meanwhile. */
  readonly end: IdleGeneratorStatus;
}

function summarize(r: ProbeResult): ProbeSummary {
  const ms = (us: number) => Math.round(us / 10) / 100;
  return { samples: r.rttUs.length, sent: r.sent, unanswered: r.unanswered, p50Ms: ms(percentile(r.rttUs, 50)), p99Ms: ms(percentile(r.rttUs, 99)), maxMs: ms(r.rttUs.at(-1) ?? NaN), ...(r.error ? { error: r.error } : {}) };
}

function routeFile(backendPorts: readonly number[]): string {
  return `apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: idle, namespace: default }
spec:
  heartbeat: { intervalSeconds: ${heartbeatSeconds} }
  rules:
    - backendRefs:
        - endpoints: [${backendPorts.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
`;
}

async function heapUsed(admin: number): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${admin}/metrics`, { signal: AbortSignal.timeout(5000) });
    // Summed over the primary and every worker by the primary's /metrics.
    const m = /^wsgate_process_nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(await res.text());
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function run(opts: Options, repo: string): Promise<IdleResults> {
  const started = new Date().toISOString();
  const group = new ProcessGroup(false);
  process.on('exit', () => group.killAllSync());
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      group.killAllSync();
      process.exit(130);
    });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'wsgate-idle-'));
  const hard = hardOpenFiles();
  const clock = cpuClock();
  const loadStart = os.loadavg();
  const n = opts.connections;
  const nLoad = Math.max(2, Math.ceil(n / perLoadProcess));
  const sources = Array.from({ length: Math.max(2, Math.ceil(n / perSource)) }, (_, i) => `127.0.0.${i + 2}`);
  const cli = path.join(repo, 'dist/cli.js');
  if (!existsSync(cli)) throw new Error('dist/cli.js missing: run npm run build');
  const wsgateProcs = Math.max(1, opts.workers);
  if (Math.ceil(n / wsgateProcs) * 2 + fdOverhead > hard) log(`warning: ${n} connections over ${wsgateProcs} wsgate process(es) is more than ${hard} open files each even if spread evenly`);
  try {
    log(`${nLoad} echo backends, ${nLoad} generators, sources ${sources[0]}..${sources.at(-1)}, wsgate ${opts.workers ? `--workers ${opts.workers}` : 'one process'}; hard open-files limit ${hard}`);
    const backends = Array.from({ length: nLoad }, (_, i) => group.spawn(process.execPath, ['--import', 'tsx', 'bench/echo-backend.ts'], { name: `echo-${i}`, cwd: repo, ipc: true }));
    const ports = await Promise.all(
      backends.map(
        (b) =>
          new Promise<number>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${b.name} not ready: ${b.output()}`)), 60_000);
            b.child.once('message', (m: FromBackend) => {
              clearTimeout(timer);
              resolve(m.port);
            });
          }),
      ),
    );
    const conf = path.join(tmp, 'routes.yaml');
    writeFileSync(conf, routeFile(ports));
    const [port, admin] = [await freePort(), await freePort()];
    const wsgateArgs = [cli, '--config', conf, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${admin}`, '--log-level', 'warn', ...(opts.workers ? ['--workers', String(opts.workers)] : [])];
    const wsgate = group.spawn(process.execPath, wsgateArgs, { name: 'wsgate', cwd: repo });
    const readyBy = Date.now() + 120_000;
    for (;;) {
      if (!alive(wsgate.pid)) throw new Error(`wsgate exited: ${wsgate.output()}`);
      const ok = await fetch(`http://127.0.0.1:${admin}/readyz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (Date.now() > readyBy) throw new Error(`wsgate not ready in 120 s: ${wsgate.output()}`);
      await sleep(250);
    }
    const url = `ws://127.0.0.1:${port}/`;
    const pids = processTree([wsgate.pid]);
    const role = (pid: number) => (pid === wsgate.pid ? (opts.workers ? 'primary' : 'wsgate') : 'worker');
    const sample = (): ProcSample[] => pids.map((pid) => ({ pid, role: role(pid), rssKiB: rssKiB([pid]), ...fdCounts(pid) }));
    log(`wsgate ready: ${pids.length} process(es), listening on ${url}`);

    const gens = Array.from({ length: nLoad }, (_, i) => group.spawn(process.execPath, ['--import', 'tsx', 'bench/idle-generator.ts'], { name: `gen-${i}`, cwd: repo, ipc: true }));
    await Promise.all(gens.map((g) => ask(g, undefined, 'hello', 60_000)));
    const status = async (): Promise<IdleGeneratorStatus> => {
      const all = await Promise.all(gens.map((g) => ask<FromIdleGenerator & { t: 'status' }>(g, { t: 'status' } satisfies ToIdleGenerator, 'status', 60_000)));
      return { open: all.reduce((a, s) => a + s.open, 0), lost: all.reduce((a, s) => a + s.lost, 0), pings: all.reduce((a, s) => a + s.pings, 0) };
    };
    const cpuWindow = async (): Promise<CpuWindow> => {
      const p0 = (await status()).pings;
      const c0 = cpuMicros(pids, clock);
      await sleep(opts.windowSeconds * 1000);
      const c1 = cpuMicros(pids, clock);
      const p1 = (await status()).pings;
      return { seconds: opts.windowSeconds, cpuMs: Math.round((c1 - c0) / 100) / 10, pings: p1 - p0 };
    };
    const runProbe = async (): Promise<ProbeSummary> => {
      const p = group.spawn(process.execPath, ['--import', 'tsx', 'bench/idle-probe.ts'], { name: 'probe', cwd: repo, ipc: true });
      await ask(p, undefined, 'hello', 60_000);
      const job: ProbeJob = { url, seconds: opts.probeSeconds, ...probe };
      const m = await ask<FromProbe & { t: 'result' }>(p, { t: 'run', job } satisfies ToProbe, 'result', (opts.probeSeconds + 60) * 1000);
      await group.stop(p);
      return summarize(m.result);
    };

    await sleep(3000);
    log(`idle CPU window, no connections (${opts.windowSeconds} s)`);
    const idleEmpty = await cpuWindow();
    log(`probe, no other connection (${opts.probeSeconds} s)`);
    const probeEmpty = await runProbe();
    log(`probe: p50 ${probeEmpty.p50Ms} ms, p99 ${probeEmpty.p99Ms} ms, max ${probeEmpty.maxMs} ms`);

    // Memory before: after the windows above, so what startup allocated and freed (the primary's first build) is settled.
    const before = { procs: sample(), heapUsedBytes: await heapUsed(admin) };
    // The ramp.
    const rampStart = Date.now();
    const tcpBefore = tcpCounters();
    const rampBy = rampStart + opts.maxMinutes * 60_000;
    const ramp: { connections: number; rssKiB: number; seconds: number }[] = [];
    let reached = 0;
    let stopReason: string | undefined;
    const everyone = [...backends, ...gens];
    while (reached < n) {
      const dead = everyone.find((p) => !alive(p.pid)) ?? (pids.some((pid) => !alive(pid)) ? wsgate : undefined);
      if (dead) {
        stopReason = `${dead.name} (a process of it) died: ${dead.output().slice(-1500)}`;
        break;
      }
      if (Date.now() > rampBy) {
        stopReason = `time bound of ${opts.maxMinutes} min reached`;
        break;
      }
      if (os.freemem() < 3 * 2 ** 30) {
        stopReason = `free memory below 3 GiB (${(os.freemem() / 2 ** 30).toFixed(1)} GiB)`;
        break;
      }
      const step = Math.min(opts.batch, n - reached);
      const fullest = Math.max(...pids.map(fdCount));
      // The kernel decides which worker accepts (cluster SCHED_NONE): the whole next step may land on the fullest.
      if (fullest + 2 * step > hard) {
        stopReason = `a wsgate process holds ${fullest} open files of ${hard} (ulimit -Hn); the next step of ${step} connections could exceed it`;
        break;
      }
      const shares = split(step, gens.length);
      const replies = await Promise.all(
        gens.map((g, i) => ask<FromIdleGenerator & { t: 'opened' }>(g, { t: 'open', url, count: shares[i], concurrency: 100, sources, timeoutMs: opts.handshakeTimeoutSeconds * 1000 } satisfies ToIdleGenerator, 'opened', 300_000)),
      );
      reached = replies.reduce((a, r) => a + r.open, 0);
      ramp.push({ connections: reached, rssKiB: rssKiB(pids), seconds: (Date.now() - rampStart) / 1000 });
      const failed = replies.reduce((a, r) => a + r.failed, 0);
      const lost = replies.reduce((a, r) => a + r.lost, 0);
      if (failed > 0 || lost > 0) {
        stopReason = `${failed} handshake(s) failed, ${lost} open connection(s) closed; first error: ${replies.find((r) => r.error)?.error ?? 'none'}`;
        break;
      }
      if (ramp.length % 10 === 0 || reached >= n) log(`${reached} open, wsgate RSS ${(ramp.at(-1)?.rssKiB ?? 0) / 1024 | 0} MiB, load ${os.loadavg()[0].toFixed(2)}`);
    }
    const rampSeconds = (Date.now() - rampStart) / 1000;
    const tcpAfter = tcpCounters();
    const tcpDuringRamp = Object.fromEntries(Object.entries(tcpAfter).map(([k, v]) => [k, v - (tcpBefore[k] ?? 0)]));
    if (stopReason) log(`ramp stopped at ${reached}: ${stopReason}`);
    let idleLoaded: CpuWindow | undefined;
    let probeLoaded: ProbeSummary | undefined;
    let after: IdleResults['after'] = { procs: sample(), heapUsedBytes: await heapUsed(admin) };
    if (pids.every(alive)) {
      await sleep(5000);
      after = { procs: sample(), heapUsedBytes: await heapUsed(admin) };
      log(`idle CPU window, ${reached} connections (${opts.windowSeconds} s)`);
      idleLoaded = await cpuWindow();
      log(`probe, ${reached} idle connections (${opts.probeSeconds} s)`);
      probeLoaded = await runProbe();
      log(`probe: p50 ${probeLoaded.p50Ms} ms, p99 ${probeLoaded.p99Ms} ms, max ${probeLoaded.maxMs} ms`);
    }
    const end = await status();
    return {
      scenario: opts.scenario,
      started,
      machine: { cores: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30), loadStart, loadEnd: os.loadavg(), node: process.version, tree: gitCommit(repo), hardOpenFiles: hard, netns: opts.inNetns, cpuClock: describeClock(clock) },
      plan: { connections: n, workers: opts.workers, batch: opts.batch, generators: gens.length, backends: backends.length, sources, windowSeconds: opts.windowSeconds, probeSeconds: opts.probeSeconds },
      reached,
      stopReason,
      rampSeconds,
      tcpDuringRamp,
      before,
      after,
      ramp,
      idleEmpty,
      idleLoaded,
      probeEmpty,
      probeLoaded,
      end,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await group.stopAll();
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  const opts = parseIdleArgs(argv);
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  if (opts.netns && !opts.inNetns) {
    // A fresh network namespace: its own loopback (brought up here) and its own ports.
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, '--import', 'tsx', self, ...argv, '--in-netns'], { stdio: 'inherit', cwd: repo });
    if (r.error) throw new Error(`unshare failed (${r.error.message}); run with --no-netns to use the machine's namespace`);
    process.exitCode = r.status ?? 1;
    return;
  }
  const results = await run(opts, repo);
  const file = opts.json ?? path.join(repo, '.cache', `bench-idle-${opts.scenario}.json`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`${report(results)}\n`);
  log(`results in ${file}`);
}

function gitCommit(repo: string): string {
  const sha = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).stdout?.trim();
  return sha ? `commit ${sha}` : 'not a git checkout';
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

function report(r: IdleResults): string {
  const sum = (ps: readonly ProcSample[]) => ps.reduce((a, p) => a + p.rssKiB, 0);
  const rssBefore = sum(r.before.procs);
  const rssAfter = sum(r.after.procs);
  const perConn = (kib: number) => (r.reached > 0 ? ((kib * 1024) / r.reached / 1024).toFixed(2) : '-');
  // The second half of the ramp: what one more connection costs, without one-time growth at the start.
  const half = r.ramp.find((p) => p.connections >= r.reached / 2);
  const last = r.ramp.at(-1);
  const marginal = half && last && last.connections > half.connections ? ((last.rssKiB - half.rssKiB) / (last.connections - half.connections)).toFixed(2) : '-';
  const heap = r.before.heapUsedBytes !== undefined && r.after.heapUsedBytes !== undefined && r.reached > 0 ? ((r.after.heapUsedBytes - r.before.heapUsedBytes) / 1024 / r.reached).toFixed(2) : '-';
  const cpu = (w: CpuWindow | undefined) => (w ? `${((w.cpuMs / 1000 / w.seconds) * 100).toFixed(2)} % of a core (${w.cpuMs} ms in ${w.seconds} s), ${w.pings} heartbeat pings seen` : '-');
  const pr = (p: ProbeSummary | undefined) => (p ? `p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms, max ${p.maxMs} ms (${p.samples} samples, ${p.unanswered} unanswered${p.error ? `, error ${p.error}` : ''})` : '-');
  // The primary holds no connection: what they cost is in the processes that do.
  const holders = (ps: readonly ProcSample[]) => sum(ps.filter((p) => p.role !== 'primary'));
  const lines = [
    `scenario ${r.scenario}: ${r.reached} of ${r.plan.connections} idle connections${r.plan.workers ? ` across --workers ${r.plan.workers}` : ' through one wsgate process'}` + (r.stopReason ? ` (stopped: ${r.stopReason})` : ''),
    `  machine: ${r.machine.cores} cores, ${r.machine.memGiB} GiB, load ${r.machine.loadStart.map((l) => l.toFixed(2)).join(' ')} -> ${r.machine.loadEnd.map((l) => l.toFixed(2)).join(' ')}, node ${r.machine.node}, ${r.machine.tree}, ulimit -Hn ${r.machine.hardOpenFiles}${r.machine.netns ? ', own network namespace' : ''}`,
    `  load: ${r.plan.generators} generators, ${r.plan.backends} echo backends, ${r.plan.sources.length} source addresses, steps of ${r.plan.batch}; ramp ${r.rampSeconds.toFixed(0)} s; kernel during the ramp: ${Object.entries(r.tcpDuringRamp).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  wsgate RSS: ${mib(rssBefore)} MiB before, ${mib(rssAfter)} MiB after = ${perConn(rssAfter - rssBefore)} KiB per connection (second half of the ramp: ${marginal} KiB)`,
    ...(r.plan.workers ? [`  workers' RSS only: ${mib(holders(r.before.procs))} MiB before, ${mib(holders(r.after.procs))} MiB after = ${perConn(holders(r.after.procs) - holders(r.before.procs))} KiB per connection`] : []),
    `  V8 heap used: ${r.before.heapUsedBytes !== undefined ? mib(r.before.heapUsedBytes / 1024) : '-'} MiB before, ${r.after.heapUsedBytes !== undefined ? mib(r.after.heapUsedBytes / 1024) : '-'} MiB after = ${heap} KiB per connection`,
    `  idle CPU of wsgate, no connections: ${cpu(r.idleEmpty)}`,
    `  idle CPU of wsgate, ${r.reached} connections: ${cpu(r.idleLoaded)}`,
    `  probe (64 B every 10 ms), alone: ${pr(r.probeEmpty)}`,
    `  probe, with the idle connections: ${pr(r.probeLoaded)}`,
    `  at the end: ${r.end.open} open at the generators, ${r.end.lost} closed by someone else`,
    '  per process (role pid: RSS before -> after MiB, sockets after):',
    ...r.after.procs.map((p) => {
      const b = r.before.procs.find((q) => q.pid === p.pid);
      return `    ${p.role} ${p.pid}: ${b ? mib(b.rssKiB) : '-'} -> ${mib(p.rssKiB)} MiB, ${p.sockets} sockets, ${p.fds} fds`;
    }),
  ];
  return lines.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
