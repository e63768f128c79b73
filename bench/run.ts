// wsgate benchmark: direct, a Node pipe() proxy, nginx, HAProxy and wsgate side by side
// on 127.0.0.1, in one run. Not a test: it prints a table and writes BENCHMARKS.md.
//
//   node --import tsx bench/run.ts [--rounds N] [--quick] [--targets direct,pipe,nginx,haproxy,wsgate]
//                                  [--write | --no-write] [--skip-snapshot] [--skip-tracing | --tracing-only] [--skip-churn | --churn-only] [--skip-llm]
//
// The proxy is pinned to CPU 0, the load generators and echo backends to the other CPUs (taskset). For each round
// and target: a fresh target process; idle memory per connection; 64 B and 16 KiB echo (CPU per echo and
// throughput); handshakes (CPU per connect + upgrade + close); round-trip latency at a fixed rate against a direct
// baseline sent in the same ticks; in the first rounds, on a fresh reloadable instance, config churn under load
// (bench/churn.ts); after the rounds, the LLM front's added latency (bench/llm-latency.ts). CPU is the target's process tree's time on CPU from /proc before and after
// each scenario (bench/procs.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { churnSeconds, runChurn, type ChurnPlan } from './churn.ts';
import { imageEnv } from './image-env.ts';
import { LoadPool, split, type PoolRun } from './load.ts';
import { cpuClock, cpuMicros, describeClock, hasCommand, pinPid, processTree, rssKiB, ProcessGroup, type CpuClock, type Proc } from './procs.ts';
import type { FromBackend, Job } from './protocol.ts';
import { churnTable, markdown, metricKeys, percentile, table, writeBenchmarks, type MetricKey, type Results } from './report.ts';
import { benchSnapshotBuild } from './snapshot-build.ts';
import { benchTracing, tracingCpuTable, type TracingBenchOptions, type TracingBenchResult } from './tracing.ts';
import { benchLlmLatency, llmLatencyTable } from './llm-latency.ts';
import { allTargets, benchCert, directUrls, haproxyConf, nginxConf, targetNames, wsgateConf, type Env, type RunningTarget, type Target, type TargetName } from './targets.ts';

interface Plan {
  readonly rounds: number;
  readonly generators: number;
  readonly backends: number;
  readonly echo64: { readonly connections: number; readonly inflight: number; readonly messages: number };
  readonly echo16k: { readonly connections: number; readonly inflight: number; readonly messages: number };
  readonly handshake: { readonly concurrency: number; readonly total: number };
  /** wss handshakes measured (concurrency as for plain ones). */
  readonly tlsHandshakes: number;
  readonly latency: { readonly connections: number; readonly rate: number; readonly seconds: number; readonly warmupSeconds: number };
  readonly idle: { readonly connections: number };
  /** Unmeasured work before the measured scenarios, so JIT-compiled targets are warm. */
  readonly warm: { readonly messages: number; readonly handshakes: number };
  readonly snapshot: { readonly routes: number; readonly endpointsPerRoute: number; readonly rounds: number };
  /** Config churn under load, with the latency scenario's connections and rate. */
  readonly churn: ChurnPlan;
  /** Handshake CPU with tracing off, at 0.01 and at 1.0 (bench/tracing.ts, the proxy in this process). */
  readonly tracing: Omit<TracingBenchOptions, 'idle'>;
  /** The LLM front (bench/llm-latency.ts): requests per path per round, tokens per reply. */
  readonly llm: { readonly rounds: number; readonly requests: number; readonly tokens: number };
}

const fullPlan: Plan = {
  rounds: 5,
  generators: 2,
  backends: 2,
  echo64: { connections: 64, inflight: 4, messages: 120_000 },
  echo16k: { connections: 32, inflight: 2, messages: 16_000 },
  handshake: { concurrency: 16, total: 2_000 },
  tlsHandshakes: 1_000,
  latency: { connections: 50, rate: 2_000, seconds: 5, warmupSeconds: 1 },
  idle: { connections: 5_000 },
  warm: { messages: 20_000, handshakes: 300 },
  snapshot: { routes: 5_000, endpointsPerRoute: 10, rounds: 5 },
  churn: { rounds: 2, changes: 20, intervalMs: 200, arrivalsPerSecond: 20, warmupSeconds: 0.5, tailSeconds: 0.5, controlSeconds: 2.5, graceSeconds: 2, settleMs: 500 },
  tracing: { rounds: 5, handshakes: 2_000, concurrency: 16, warm: 300 },
  llm: { rounds: 5, requests: 100, tokens: 16 },
};

const quickPlan: Plan = {
  rounds: 1,
  generators: 2,
  backends: 2,
  echo64: { connections: 32, inflight: 4, messages: 30_000 },
  echo16k: { connections: 16, inflight: 2, messages: 5_000 },
  handshake: { concurrency: 16, total: 800 },
  tlsHandshakes: 300,
  latency: { connections: 20, rate: 2_000, seconds: 2, warmupSeconds: 0.5 },
  idle: { connections: 1_000 },
  warm: { messages: 5_000, handshakes: 100 },
  snapshot: { routes: 5_000, endpointsPerRoute: 10, rounds: 1 },
  churn: { rounds: 1, changes: 10, intervalMs: 200, arrivalsPerSecond: 20, warmupSeconds: 0.5, tailSeconds: 0.5, controlSeconds: 2, graceSeconds: 2, settleMs: 500 },
  tracing: { rounds: 1, handshakes: 500, concurrency: 16, warm: 100 },
  llm: { rounds: 1, requests: 20, tokens: 16 },
};

interface Options {
  readonly plan: Plan;
  readonly quick: boolean;
  readonly targets: readonly TargetName[];
  readonly write: boolean;
  readonly skipSnapshot: boolean;
  readonly skipTracing: boolean;
  readonly tracingOnly: boolean;
  readonly skipChurn: boolean;
  /** Only the config churn scenario (for working on it; never writes BENCHMARKS.md unless --write). */
  readonly churnOnly: boolean;
  readonly skipLlm: boolean;
  readonly pin: boolean;
  /** The node binary of the Node targets (pipe, wsgate). */
  readonly node: string;
  readonly wsgateCli: string;
  readonly wsgateArgs: readonly string[];
  readonly wsgateNodeArgs: readonly string[];
  /** undefined: the container image's tunables (Dockerfile). */
  readonly wsgateEnv: Readonly<Record<string, string>> | undefined;
  /** Where the Node targets write V8 CPU profiles (--cpu-prof), if asked. */
  readonly cpuProfDir: string | undefined;
}

function usage(): string {
  return `usage: node --import tsx bench/run.ts [--rounds N] [--quick] [--targets ${targetNames.join(',')}] [--write|--no-write]
                                  [--skip-snapshot] [--skip-churn | --churn-only] [--skip-llm] [--no-pin] [--node PATH] [--wsgate-cli PATH] [--wsgate-args "FLAGS"] [--wsgate-node-args "FLAGS"] [--wsgate-env "K=V ..."] [--idle-connections N] [--cpu-prof DIR]
  --quick          a short smoke run (1 round, small counts); does not write BENCHMARKS.md unless --write
  --rounds N       rounds per scenario (default 5, quick 1; medians and spread are reported)
  --targets        which targets to measure (default: all; 'direct' is needed for the added-latency rows)
  --skip-churn     leave out the config churn scenario (nginx, HAProxy, wsgate; first 2 rounds, quick 1)
  --churn-only     only the config churn scenario (no snapshot build; does not write BENCHMARKS.md unless --write)
  --skip-tracing   leave out the tracing section (wsgate's handshake CPU with tracing off, at ratio 0.01 and 1.0)
  --tracing-only   only the tracing section; prints its table, never writes BENCHMARKS.md
  --skip-llm       leave out the LLM front's added latency (bench/llm-latency.ts, wsgate only)
  --no-pin         do not pin the targets to CPU 0 and the load to the other CPUs (e.g. for wsgate --workers 2)
  --node PATH      the node binary of the Node targets, pipe and wsgate (default: the one running the bench), e.g.
                   the container image's major version
  --wsgate-cli     wsgate's entry point (default dist/cli.js)
  --wsgate-args    extra flags for wsgate, space-separated (e.g. "--workers 2")
  --wsgate-node-args  flags for wsgate's node only, space-separated (e.g. "--max-semi-space-size=8")
  --wsgate-env "K=V ..."  wsgate's extra environment, space-separated (K= removes K); default: what the container
                   image sets (the Dockerfile's GLIBC_TUNABLES); "" runs it with the bench's environment only
  --idle-connections N  connections held open for the idle-memory row (default 5000, quick 1000); each takes
                   two file descriptors in the target and one in a generator and a backend (raise ulimit -n)
  --idle-scenario single|workers [FLAGS]  only the idle-connections scenario (bench/idle-connections.ts --help),
                   9,000 connections through one process or 100,000 across --workers; must be the first flag
  --cpu-prof DIR   run the Node targets (pipe, wsgate) with node --cpu-prof, profiles into DIR (one per process);
                   such a run does not write BENCHMARKS.md unless --write`;
}

function parseArgs(argv: readonly string[]): Options {
  let quick = false;
  let rounds: number | undefined;
  let targets: TargetName[] = [...targetNames];
  let write: boolean | undefined;
  let skipSnapshot = false;
  let skipTracing = false;
  let tracingOnly = false;
  let skipChurn = false;
  let churnOnly = false;
  let skipLlm = false;
  let pin = true;
  let node = process.execPath;
  let wsgateCli = 'dist/cli.js';
  let wsgateArgs: string[] = [];
  let wsgateNodeArgs: string[] = [];
  let wsgateEnv: Record<string, string> | undefined;
  let idleConnections: number | undefined;
  let cpuProfDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--write') write = true;
    else if (a === '--no-write') write = false;
    else if (a === '--skip-snapshot') skipSnapshot = true;
    else if (a === '--skip-tracing') skipTracing = true;
    else if (a === '--tracing-only') tracingOnly = true;
    else if (a === '--skip-churn') skipChurn = true;
    else if (a === '--churn-only') churnOnly = true;
    else if (a === '--skip-llm') skipLlm = true;
    else if (a === '--no-pin') pin = false;
    else if (a === '--node') node = path.resolve(argv[++i] ?? node);
    else if (a === '--wsgate-cli') wsgateCli = argv[++i] ?? wsgateCli;
    else if (a === '--cpu-prof') cpuProfDir = path.resolve(argv[++i] ?? '.cache/bench-profiles');
    else if (a === '--wsgate-args') wsgateArgs = (argv[++i] ?? '').split(' ').filter(Boolean);
    else if (a === '--wsgate-node-args') wsgateNodeArgs = (argv[++i] ?? '').split(' ').filter(Boolean);
    else if (a === '--wsgate-env') wsgateEnv = parseEnv(argv[++i] ?? '');
    else if (a === '--idle-connections') {
      idleConnections = Number(argv[++i]);
      if (!Number.isInteger(idleConnections) || idleConnections < 10 || idleConnections > 200_000) throw new Error(`--idle-connections wants an integer 10..200000\n${usage()}`);
    } else if (a === '--rounds') {
      rounds = Number(argv[++i]);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) throw new Error(`--rounds wants an integer 1..50\n${usage()}`);
    } else if (a === '--targets') {
      const list = (argv[++i] ?? '').split(',').filter(Boolean);
      const bad = list.filter((t) => !(targetNames as readonly string[]).includes(t));
      if (list.length === 0 || bad.length > 0) throw new Error(`unknown target(s) ${bad.join(',')}\n${usage()}`);
      targets = targetNames.filter((t) => list.includes(t));
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(`${usage()}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${usage()}`);
  }
  const base = quick ? quickPlan : fullPlan;
  if (skipChurn && churnOnly) throw new Error(`--skip-churn and --churn-only exclude each other\n${usage()}`);
  if (tracingOnly && (skipTracing || churnOnly)) throw new Error(`--tracing-only excludes --skip-tracing and --churn-only\n${usage()}`);
  return { plan: { ...base, rounds: rounds ?? (churnOnly ? base.churn.rounds : base.rounds), idle: { connections: idleConnections ?? base.idle.connections } }, quick, targets, write: write ?? (!quick && !cpuProfDir && !churnOnly && !tracingOnly), skipSnapshot: skipSnapshot || churnOnly, skipTracing: skipTracing || churnOnly, tracingOnly, skipChurn, churnOnly, skipLlm: skipLlm || churnOnly || tracingOnly, pin, node, wsgateCli, wsgateArgs, wsgateNodeArgs, wsgateEnv, cpuProfDir };
}

function parseEnv(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of s.split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i < 1) throw new Error(`--wsgate-env wants K=V pairs, got ${kv}\n${usage()}`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---- jobs ----

type Urls = readonly string[];

/** ca: for wss:// urls, the PEM of the bench certificate. */
function echoJobs(plan: Plan, urls: Urls, s: { connections: number; inflight: number; messages: number }, size: number, ca?: string): Job[] {
  const conns = split(s.connections, plan.generators);
  const msgs = split(s.messages, plan.generators);
  return conns.map((c, i) => ({ kind: 'echo', urls, connOffset: i * conns[0], connections: c, inflight: s.inflight, messages: msgs[i], size, maxSeconds: 180, ...(ca ? { ca } : {}) }));
}

function handshakeJobs(plan: Plan, urls: Urls, concurrency: number, total: number, ca?: string): Job[] {
  const conc = split(concurrency, plan.generators);
  const tot = split(total, plan.generators);
  return conc.map((c, i) => ({ kind: 'handshake', urls, connOffset: i, concurrency: c, total: tot[i], maxSeconds: 180, ...(ca ? { ca } : {}) }));
}

/** One generator only: fewer processes competing for the load core means less scheduling jitter in the RTTs. */
function latencyJobs(plan: Plan, urls: Urls, baselineUrls: Urls | undefined): Job[] {
  const l = plan.latency;
  return [{
    kind: 'latency',
    urls,
    ...(baselineUrls ? { baselineUrls } : {}),
    connOffset: 0,
    connections: l.connections,
    rate: l.rate,
    seconds: l.seconds,
    warmupSeconds: l.warmupSeconds,
    size: 64,
    maxSeconds: l.seconds + 20,
  }];
}

function idleJobs(plan: Plan, urls: Urls, connections: number): Job[] {
  const conns = split(connections, plan.generators);
  return conns.map((c, i) => ({ kind: 'idle', urls, connOffset: i * conns[0], connections: c, maxSeconds: 120 }));
}

// ---- measurements ----

interface Measured {
  readonly run: PoolRun;
  readonly completed: number;
  /** CPU of the target's tree during the run, µs; undefined for direct. */
  readonly cpuUs: number | undefined;
}

/** Runs jobs with the target's CPU read right before "go" and shortly after the last "done". */
async function withCpu(pool: LoadPool, jobs: readonly Job[], target: RunningTarget, clock: CpuClock): Promise<Measured> {
  let pids: number[] = [];
  let before = 0;
  let cpuUs: number | undefined;
  const run = await pool.run(jobs, {
    beforeGo: () => {
      if (target.roots.length === 0) return;
      pids = processTree(target.roots);
      before = cpuMicros(pids, clock);
    },
    afterDone: async () => {
      if (target.roots.length === 0) return;
      await sleep(200); // let the proxy finish what is in flight (closes, last frames)
      cpuUs = cpuMicros(pids, clock) - before;
    },
  });
  const completed = run.results.reduce((n, r) => n + r.completed, 0);
  const errors = run.results.reduce((n, r) => n + r.errors, 0);
  if (run.results.some((r) => r.timedOut)) throw new Error(`timed out after ${Math.round(run.wallMs)} ms with ${completed} done`);
  if (jobs[0].kind === 'handshake' && errors > 0) throw new Error(`${errors} handshakes failed`);
  return { run, completed, cpuUs };
}

/** RSS of the tree once it stops moving (two reads 250 ms apart within 0.5 %), at most 5 s. */
async function settledRss(roots: readonly number[]): Promise<number> {
  let last = rssKiB(processTree(roots));
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    const now = rssKiB(processTree(roots));
    if (Math.abs(now - last) <= last * 0.005) return now;
    last = now;
  }
  return last;
}

type RoundValues = Partial<Record<MetricKey, number>>;

async function measureTarget(pool: LoadPool, plan: Plan, target: RunningTarget, directUrls: Urls, clock: CpuClock, ca: string | undefined, note: (s: string) => void): Promise<RoundValues> {
  const out: RoundValues = {};
  const urls = target.urls;
  const step = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      note(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  if (target.roots.length > 0) {
    await step('idle memory', async () => {
      // A few connections first, so one-time setup (lazily compiled code, first buffers) is not counted per connection.
      await pool.run(echoJobs(plan, urls, { connections: 10, inflight: 1, messages: 200 }, 64));
      await sleep(300);
      const before = await settledRss(target.roots);
      let after = 0;
      const n = plan.idle.connections;
      await pool.run(idleJobs(plan, urls, n), { afterDone: async () => void (after = await settledRss(target.roots)) });
      out.idleKiB = (after - before) / n;
    });
  }

  /** Runs jobs and records units per second and the target's CPU µs per unit under the two keys. */
  const measured = (name: string, jobs: Job[], rateKey: MetricKey, cpuKey: MetricKey) =>
    step(name, async () => {
      const m = await withCpu(pool, jobs, target, clock);
      out[rateKey] = m.completed / (m.run.wallMs / 1000);
      if (m.cpuUs !== undefined) out[cpuKey] = m.cpuUs / m.completed;
    });

  await step('warm-up', async () => {
    await pool.run(echoJobs(plan, urls, { ...plan.echo64, messages: plan.warm.messages }, 64));
    await pool.run(handshakeJobs(plan, urls, plan.handshake.concurrency, plan.warm.handshakes));
  });

  await measured('64 B echo', echoJobs(plan, urls, plan.echo64, 64), 'tput64', 'cpu64');

  await measured('16 KiB echo', echoJobs(plan, urls, plan.echo16k, 16 * 1024), 'tput16k', 'cpu16k');

  await measured('handshake', handshakeJobs(plan, urls, plan.handshake.concurrency, plan.handshake.total), 'hsRate', 'cpuHs');

  const { tlsUrls } = target;
  if (tlsUrls && ca) {
    // TLS terminated by the target (same certificate for all), plain to the backends; every handshake is a full
    // TLS 1.3 handshake (the clients keep no sessions).
    await step('wss warm-up', () => pool.run(handshakeJobs(plan, tlsUrls, plan.handshake.concurrency, plan.warm.handshakes, ca)).then(() => undefined));
    await measured('wss 64 B echo', echoJobs(plan, tlsUrls, plan.echo64, 64, ca), 'tputTls64', 'cpuTls64');
    await measured('wss handshake', handshakeJobs(plan, tlsUrls, plan.handshake.concurrency, plan.tlsHandshakes, ca), 'tlsHsRate', 'cpuTlsHs');
  }

  await step('latency', async () => {
    // Through the target and, in the same ticks on as many connections again, straight to the backends.
    const m = await withCpu(pool, latencyJobs(plan, urls, target.roots.length > 0 ? directUrls : undefined), target, clock);
    const lost = m.run.results.reduce((n, r) => n + r.errors, 0);
    if (lost > 0) throw new Error(`${lost} messages unanswered`);
    const sorted = (k: 'rttUs' | 'baselineRttUs') => m.run.results.flatMap((r) => r[k] ?? []).sort((a, b) => a - b);
    const rtt = sorted('rttUs');
    out.p50 = percentile(rtt, 50);
    out.p99 = percentile(rtt, 99);
    if (m.cpuUs !== undefined) out.cpuLat = m.cpuUs / m.completed;
    const base = sorted('baselineRttUs');
    if (base.length > 0) {
      out.addP50 = out.p50 - percentile(base, 50);
      out.addP99 = out.p99 - percentile(base, 99);
    }
  });
  return out;
}

/** Config churn on a fresh instance started for it (HAProxy needs master-worker mode to reload). */
async function churnRound(pool: LoadPool, plan: Plan, t: Target, env: Env, note: (s: string) => void): Promise<RoundValues | undefined> {
  let running: RunningTarget;
  try {
    running = await t.start(env, { reloadable: true });
  } catch (err) {
    note(`did not start: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  try {
    const r = await runChurn(pool, plan.churn, plan.latency, running, directUrls(env));
    for (const p of r.problems) note(p);
    return r.values;
  } catch (err) {
    note(err instanceof Error ? err.message : String(err));
    return undefined;
  } finally {
    await running.stop();
  }
}

function churnRounds(opts: Options): number {
  return opts.churnOnly ? opts.plan.rounds : Math.min(opts.plan.churn.rounds, opts.plan.rounds);
}

/** The churn section's explanation, with this run's numbers. */
function churnText(plan: Plan, targets: readonly Target[], rounds: number): string[] {
  const c = plan.churn;
  const how = targets.filter((t) => t.reloadHow).map((t) => `${t.name}: ${t.reloadHow}`);
  if (how.length === 0) return [];
  return [
    `A fresh instance per target, in the first ${rounds} round(s). The latency scenario's load ` +
      `(${plan.latency.rate.toLocaleString('en-US')} msg/s of 64 B over ${plan.latency.connections} connections, the same rate straight to the ` +
      `backends in the same ticks as the baseline) runs while ${c.arrivalsPerSecond} new connections per second arrive through the target ` +
      'and stay open, idle, until the end of the run. First a control run without changes ' +
      `(${c.warmupSeconds + c.controlSeconds} s), then the churn run (${churnSeconds(c)} s): after ${c.warmupSeconds} s the configuration is ` +
      `changed ${c.changes} times, ${c.intervalMs} ms apart, each a real change that keeps the route the connections use. ` +
      `${how.join('; ')}. direct and pipe have no configuration. RTT samples of the first ${c.warmupSeconds} s of each run are dropped.`,
    '"Applied" is the change taking effect: for wsgate, its log line "routing table published" with a newer generation (the reloadable ' +
      'instance runs with --log-level info; /debug/snapshot is read before and after the churn and must agree), which includes the ' +
      'hold-off that coalesces bursts of changes (--build-holdoff-ms, 100 ms by default); for nginx, a new worker process in the ' +
      'master\'s tree (polled every 2 ms); for HAProxy, the master\'s "Loading success." line (the new worker is up and the master has finished ' +
      'the reload). "Closed" counts connections through the target, steady or arrived, that closed or ' +
      `failed during the run; "unanswered" the messages through the target still without an echo ${c.graceSeconds} s after the sending ended. ` +
      'Added RTT is through the target minus the baseline, per round, over the whole run; compare the churn run with the control ' +
      'run, which has the same arrivals (their handshakes also take the proxy\'s CPU). "Superseded workers" are processes a reload ' +
      `replaced that are still alive ${c.settleMs} ms after the run, with the connections still open: nginx and HAProxy let the old ` +
      'workers finish their connections, and a WebSocket may last hours, so each reload that happened while connections arrived leaves ' +
      'one behind (no worker_shutdown_timeout or hard-stop-after is set here; with one, those connections are cut when it expires ' +
      'instead). Their RSS is summed from /proc. wsgate applies a change in the same process and keeps every connection on the route it matched.',
  ];
}

// ---- setup ----

async function startBackends(group: ProcessGroup, repo: string, n: number, cpu: string): Promise<number[]> {
  const procs: Proc[] = [];
  for (let i = 0; i < n; i++) procs.push(group.spawn(process.execPath, ['--import', 'tsx', 'bench/echo-backend.ts'], { name: `echo-${i}`, cwd: repo, cpu, ipc: true }));
  return Promise.all(
    procs.map(
      (p) =>
        new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`echo backend not ready: ${p.output()}`)), 30_000);
          p.child.once('message', (m: FromBackend) => {
            clearTimeout(timer);
            resolve(m.port);
          });
          void p.exited.then((code) => reject(new Error(`echo backend exited (${code}): ${p.output()}`)));
        }),
    ),
  );
}

/** What each target is, read at the start (the tree may move on while the bench runs). */
function describeTargets(env: Env, targets: readonly Target[]): string[] {
  return targets.map((t) => `${t.name}: ${t.unavailable(env) ?? t.version(env)}${t.name === 'wsgate' ? ` (${[...envWords(env.wsgateEnv), ...env.wsgateNodeFlags, env.wsgateCli, ...env.wsgateArgs].join(' ')})` : ''}`);
}

function envWords(e: Readonly<Record<string, string>>): string[] {
  return Object.entries(e).map(([k, v]) => `${k}=${v}`);
}

function machine(env: Env, pinned: boolean, loadCpu: string, targetLines: readonly string[], clock: CpuClock, loadStart: readonly number[]): string[] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const wsVersion = (JSON.parse(readFileSync(new URL('../node_modules/ws/package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return [
    `CPU: ${model}, ${os.cpus().length} cores; ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM; Linux ${os.release()}`,
    `CPU time: ${describeClock(clock)}`,
    `Load average (1/5/15 min) at the start ${loadStart.map((x) => x.toFixed(2)).join(' / ')}, at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}: other work on the machine shows up as noise`,
    `Node ${process.version} (this script, the generators, the backends); ws ${wsVersion}`,
    ...targetLines,
    pinned ? `Pinning: targets on CPU ${env.proxyCpu}; load generators, echo backends and this script on CPU ${loadCpu} (taskset)` : 'Pinning: none (taskset missing or fewer than 2 CPUs): figures are noisier',
  ];
}

function commands(argv: readonly string[], opts: Options, wsgateEnv: Readonly<Record<string, string>>, pinned: boolean, proxyCpu: string, loadCpu: string): string[] {
  const plan = opts.plan;
  const pin = (cpu: string) => (pinned ? `taskset -c ${cpu} ` : '');
  const targetNode = opts.node === process.execPath ? 'node' : opts.node;
  return [
    `node --import tsx bench/run.ts ${argv.join(' ')}`.trimEnd(),
    `# started by it (ports chosen at run time; <tmp> is a private temp dir):`,
    `${pin(loadCpu)}node --import tsx bench/echo-backend.ts            # x${plan.backends}, ws servers echoing every message`,
    `${pin(loadCpu)}node --import tsx bench/load-client.ts             # x${plan.generators}, ws clients driven over IPC`,
    `${pin(proxyCpu)}${targetNode} --import tsx bench/pipe-proxy.ts --listen 127.0.0.1:<p> --backend 127.0.0.1:<b1> --backend 127.0.0.1:<b2>`,
    `${pin(proxyCpu)}/usr/sbin/nginx -p <tmp> -e <tmp>/error.log -c <tmp>/nginx.conf -g 'daemon off;'`,
    `${pin(proxyCpu)}/usr/sbin/haproxy -db -f <tmp>/haproxy.cfg               # -W -db -f for the config churn scenario`,
    `${envWords(wsgateEnv).map((w) => `${w} `).join('')}${pin(proxyCpu)}${targetNode} ${opts.wsgateNodeArgs.map((a) => `${a} `).join('')}${opts.wsgateCli} --config <tmp>/wsgate.yaml --listen 127.0.0.1:<p> --admin-listen 127.0.0.1:<a> --tls-listen 127.0.0.1:<t> --default-cert-file <tmp>/bench-cert.pem --default-key-file <tmp>/bench-key.pem --log-level warn ${opts.wsgateArgs.join(' ')}`.trimEnd(),
    `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -keyout <tmp>/bench-key.pem -out <tmp>/bench-cert.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1   # the certificate nginx, HAProxy and wsgate serve on their TLS listener`,
    `# scenarios per round and target (${plan.generators} generator processes share the connections):`,
    `#   idle: ${plan.idle.connections} connections held open, RSS of the target's tree (after 10 warm-up connections) before and after`,
    `#   64 B echo: ${plan.echo64.connections} connections x ${plan.echo64.inflight} in flight, ${plan.echo64.messages} echoes`,
    `#   16 KiB echo: ${plan.echo16k.connections} connections x ${plan.echo16k.inflight} in flight, ${plan.echo16k.messages} echoes`,
    `#   handshake: ${plan.handshake.total} x (connect, upgrade, close handshake), ${plan.handshake.concurrency} in parallel`,
    `#   wss (nginx, haproxy, wsgate: TLS terminated by the target, plain to the backends; clients verify the certificate and keep no TLS sessions):`,
    `#            64 B echo as above, then ${plan.tlsHandshakes} x (TLS 1.3 handshake, upgrade, close handshake), ${plan.handshake.concurrency} in parallel`,
    `#   latency: ${plan.latency.rate} msg/s of 64 B over ${plan.latency.connections} connections for ${plan.latency.seconds} s (first ${plan.latency.warmupSeconds} s dropped),`,
    `#            plus the same rate straight to the backends in the same ticks: added RTT = through the target minus that baseline`,
    ...(opts.skipChurn
      ? []
      : [
          `#   config churn (first ${churnRounds(opts)} round(s), nginx, haproxy, wsgate, each a fresh instance; wsgate with --log-level info):`,
          `#            the latency load plus ${plan.churn.arrivalsPerSecond} new connections/s kept open, ${plan.churn.warmupSeconds + plan.churn.controlSeconds} s without changes,`,
          `#            then ${churnSeconds(plan.churn)} s with ${plan.churn.changes} config changes ${plan.churn.intervalMs} ms apart after ${plan.churn.warmupSeconds} s`,
        ]),
  ];
}

/** The tracing section of the report: its table, then how it was measured. */
function tracingSection(r: TracingBenchResult): string {
  const o = r.options;
  return [
    '### Tracing: wsgate proxy CPU per handshake, off against ratio 0.01 and 1.0',
    '',
    tracingCpuTable(r),
    '',
    "Measured by bench/tracing.ts's benchTracing: wsgate's ProxyServer (the real route table, as the tests build it) in " +
      "the bench's own process; a ws backend, a ws load generator and a stand-in OTLP/HTTP collector (reads each post, " +
      'answers 200) in child processes. Each handshake is a whole connection (connect, upgrade with permessage-deflate ' +
      `offered, close handshake); ${o.handshakes} per round, ${o.concurrency} in parallel, rounds alternating the three ` +
      `variants after ${o.warm} unmeasured handshakes of each. CPU is the process's process.cpuUsage() over the run ` +
      'divided by the handshakes, span export included (what was still queued is flushed inside the measurement). ' +
      'Heap per idle connection: `npm run bench:tracing` (it needs node --expose-gc).',
  ].join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  // The idle-connections scenario is a section of its own, run alone (bench/idle-connections.ts has its flags).
  if (argv[0] === '--idle-scenario') return (await import('./idle-connections.ts')).main(['--scenario', ...argv.slice(1)]);
  const opts = parseArgs(argv);
  const plan = opts.plan;
  const started = Date.now();
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const cores = os.cpus().length;
  const pinned = opts.pin && cores >= 2 && hasCommand('taskset');
  const proxyCpu = '0';
  const loadCpu = cores > 2 ? `1-${cores - 1}` : '1';
  const clock = cpuClock();
  const loadStart = os.loadavg();
  if (loadStart[0] > cores / 2) log(`load average ${loadStart[0].toFixed(2)} on ${cores} cores: other work is running, expect noisy figures`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'wsgate-bench-'));
  const group = new ProcessGroup(pinned);

  let cleaning = false;
  const cleanup = () => {
    group.killAllSync();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  const onSignal = (sig: NodeJS.Signals) => {
    if (cleaning) return;
    cleaning = true;
    log(`${sig}: stopping everything`);
    void group.stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  if (pinned) pinPid(process.pid, loadCpu);
  if (opts.tracingOnly) {
    log(`tracing: ${plan.tracing.rounds} round(s) of ${plan.tracing.handshakes} handshakes per variant`);
    const r = await benchTracing({ ...plan.tracing, idle: 0 });
    process.stdout.write(`\n${tracingSection(r)}\n\n`);
    log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
    return;
  }
  const chosen = allTargets.filter((t) => opts.targets.includes(t.name));
  const env0: Env = { group, repo, tmp, backendPorts: [], proxyCpu, node: opts.node, wsgateCli: opts.wsgateCli, wsgateArgs: opts.wsgateArgs, wsgateNodeFlags: opts.wsgateNodeArgs, wsgateEnv: opts.wsgateEnv ?? imageEnv(repo), nodeFlags: opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : [] };
  const notes = new Map<TargetName, string[]>();
  const note = (t: TargetName, s: string) => {
    log(`${t}: ${s}`);
    notes.set(t, [...(notes.get(t) ?? []), s]);
  };
  const targetLines = describeTargets(env0, chosen);
  const usable = chosen.filter((t) => {
    const why = t.unavailable(env0);
    if (why) note(t.name, `not measured: ${why}`);
    return !why;
  });

  log(`plan: ${opts.quick ? 'quick' : 'full'}, ${plan.rounds} round(s), targets ${usable.map((t) => t.name).join(', ') || '(none)'}; pinning ${pinned ? `targets→CPU ${proxyCpu}, load→CPU ${loadCpu}` : 'off'}`);
  const backendPorts = await startBackends(group, repo, plan.backends, loadCpu);
  const tls = benchCert(tmp);
  if (!tls) log('openssl not found: the wss rows are not measured');
  const env: Env = { ...env0, backendPorts, ...(tls ? { tls } : {}) };
  const pool = await LoadPool.start(group, repo, plan.generators, loadCpu);

  const results: Results = new Map();
  const record = (t: TargetName, round: number, values: RoundValues) => {
    const m = results.get(t) ?? new Map<MetricKey, (number | undefined)[]>();
    results.set(t, m);
    for (const k of metricKeys) {
      const arr = m.get(k) ?? Array.from({ length: plan.rounds }, () => undefined);
      if (values[k] !== undefined) arr[round] = values[k];
      m.set(k, arr);
    }
  };

  const mainRound = async (t: Target, round: number) => {
    log(`round ${round + 1}/${plan.rounds}: ${t.name}`);
    let running: RunningTarget;
    try {
      running = await t.start(env);
    } catch (err) {
      note(t.name, `round ${round + 1}: did not start: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    try {
      const values = await measureTarget(pool, plan, running, directUrls(env), clock, env.tls?.pem, (s) => note(t.name, `round ${round + 1}: ${s}`));
      record(t.name, round, values);
      log(`  ${Object.entries(values).map(([k, v]) => `${k}=${v.toFixed(2)}`).join(' ')}`);
    } finally {
      await running.stop();
    }
  };

  for (let round = 0; round < plan.rounds; round++) {
    // Rotate the order each round so that drift (thermal, caches, TIME_WAIT) does not always favour one target.
    const order = usable.map((_, i) => usable[(i + round) % usable.length]);
    for (const t of order) {
      if (!opts.churnOnly) await mainRound(t, round);
      if (!opts.skipChurn && t.reloadHow && (round < plan.churn.rounds || opts.churnOnly)) {
        log(`round ${round + 1}/${plan.rounds}: ${t.name}, config churn (${plan.churn.changes} changes, ${plan.churn.intervalMs} ms apart)`);
        const values = await churnRound(pool, plan, t, env, (s) => note(t.name, `round ${round + 1}: config churn: ${s}`));
        if (values) {
          record(t.name, round, values);
          log(`  ${Object.entries(values).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(' ')}`);
        }
      }
    }
  }

  await group.stopAll();
  let snapshot;
  if (!opts.skipSnapshot) {
    log(`snapshot build: ${plan.snapshot.routes} routes / ${plan.snapshot.routes * plan.snapshot.endpointsPerRoute} endpoints`);
    snapshot = await benchSnapshotBuild(plan.snapshot.routes, plan.snapshot.endpointsPerRoute, plan.snapshot.rounds);
  }
  let tracing: TracingBenchResult | undefined;
  if (!opts.skipTracing) {
    log(`tracing: ${plan.tracing.rounds} round(s) of ${plan.tracing.handshakes} handshakes per variant (off, 0.01, 1.0)`);
    tracing = await benchTracing({ ...plan.tracing, idle: 0 });
  }

  // The LLM front: wsgate only (the other targets have no such route), the same binary and pinning.
  let llm: string | undefined;
  if (!opts.skipLlm && usable.some((t) => t.name === 'wsgate')) {
    const l = plan.llm;
    log(`llm front: ${l.rounds} round(s) x ${l.requests} requests each way`);
    try {
      const rounds = await benchLlmLatency({ ...l, node: opts.node, cli: [...opts.wsgateNodeArgs, opts.wsgateCli], env: env0.wsgateEnv, ...(pinned ? { cpu: proxyCpu } : {}), repo }, log);
      llm = [
        `### LLM front: added latency through wsgate (bench/llm-latency.ts, ${l.rounds} round(s))`,
        '',
        `${l.requests} requests per path per round, alternating, ${l.tokens} tokens per reply (1 ms apart after the first), from the provider test double (openai-chat) called directly (fetch + the same SSE parsing) or through wsgate (a ws client; wsgate ${pinned ? `on CPU ${proxyCpu}` : 'unpinned'}, one \`llm\` rule, --log-level warn). Per round the p50 and p99 of each path; here their medians over the rounds, and the spread of the added figure.`,
        '',
        llmLatencyTable(rounds),
      ].join('\n');
    } catch (err) {
      note('wsgate', `llm front: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const rate = plan.latency.rate.toLocaleString('en-US');
  const exampleTls = tls && { port: 18443, cert: { certFile: '<tmp>/bench-cert.pem', keyFile: '<tmp>/bench-key.pem', pemFile: '<tmp>/bench-combined.pem', pem: '' } };
  const report = {
    targets: opts.targets,
    results,
    notes,
    rounds: plan.rounds,
    rowLabels: {
      cpu64: 'CPU µs per 64 B echo',
      tput64: '64 B echoes/s',
      cpu16k: 'CPU µs per 16 KiB echo',
      tput16k: '16 KiB echoes/s',
      cpuHs: 'CPU µs per handshake',
      hsRate: 'handshakes/s',
      cpuTls64: 'CPU µs per 64 B echo over wss',
      tputTls64: '64 B echoes/s over wss',
      cpuTlsHs: 'CPU µs per wss handshake (full TLS 1.3)',
      tlsHsRate: 'wss handshakes/s',
      cpuLat: `CPU µs per 64 B echo at ${rate} msg/s`,
      addP50: `added RTT p50 µs (${rate} msg/s)`,
      addP99: `added RTT p99 µs (${rate} msg/s)`,
      p50: `RTT p50 µs (${rate} msg/s)`,
      p99: `RTT p99 µs (${rate} msg/s)`,
      idleKiB: `idle KiB per connection (${plan.idle.connections.toLocaleString('en-US')} open)`,
      churnApplied: `changes applied (of ${plan.churn.changes}, ${plan.churn.intervalMs} ms apart)`,
      churnApplyMs: 'change → applied, median ms',
      churnApplyMaxMs: 'change → applied, max ms',
      churnClosed: `connections closed during the churn (of ${plan.latency.connections} + arrivals)`,
      churnLost: 'messages unanswered',
      churnArrivals: `new connections during the run (${plan.churn.arrivalsPerSecond}/s)`,
      churnArrivalFailed: 'new connections refused or failed',
      churnCtlAddP50: `added RTT p50 µs, same load and arrivals, no changes (${rate} msg/s)`,
      churnAddP50: `added RTT p50 µs during the churn`,
      churnCtlAddP99: `added RTT p99 µs, same load and arrivals, no changes`,
      churnAddP99: `added RTT p99 µs during the churn`,
      churnOld: 'superseded workers still alive after the churn',
      churnOldMiB: 'their RSS, MiB',
    },
    snapshot,
    churn: opts.skipChurn ? [] : churnText(plan, usable, churnRounds(opts)),
    machine: machine(env, pinned, loadCpu, targetLines, clock, loadStart),
    commands: commands(argv, opts, env0.wsgateEnv, pinned, proxyCpu, loadCpu),
    configs: [
      { title: 'nginx.conf (generated)', text: nginxConf('<tmp>', 18080, backendPorts, undefined, exampleTls) },
      { title: 'haproxy.cfg (generated)', text: haproxyConf(18080, backendPorts, undefined, exampleTls) },
      { title: 'wsgate.yaml (generated)', text: wsgateConf(backendPorts) },
    ],
    date: new Date().toISOString(),
    quick: opts.quick,
    elapsedSeconds: (Date.now() - started) / 1000,
  };
  let md = markdown(report);
  if (tracing) md = `${md.trimEnd()}\n\n${tracingSection(tracing)}\n`;
  if (llm) md = `${md.trimEnd()}\n\n${llm}\n`;
  const main = table(report);
  if (main) process.stdout.write(`\n${main}\n\n`);
  const churn = churnTable(report);
  if (churn) process.stdout.write(`config churn under load:\n${churn}\n\n`);
  for (const [t, ns] of notes) for (const n of ns) process.stdout.write(`note ${t}: ${n}\n`);
  if (snapshot) process.stdout.write(`${md.split('\n').find((l) => l.startsWith('Snapshot build')) ?? ''}\n`);
  if (tracing) process.stdout.write(`\ntracing:\n${tracingCpuTable(tracing)}\n`);
  if (llm) process.stdout.write(`${llm}\n`);
  if (opts.write) {
    writeBenchmarks(path.join(repo, 'BENCHMARKS.md'), md);
    log('wrote BENCHMARKS.md');
  }
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
  process.exit(1);
});
