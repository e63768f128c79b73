// Does a full rebuild stall the relay? Measured from outside, as an operator would see it: wsgate runs in
// standalone mode on a route file of 5,000 routes (10 static endpoints each) in its own process; one live
// WebSocket through it echoes a 64 B message every 10 ms (a separate echo backend process), and the file is
// rewritten five times (one endpoint changed each time, written then renamed into place). Reported per tree: the
// echo round trip (p50, p99, max) without changes and during the rewrites, wsgate's own event-loop delay over
// each phase (prom-client's monitorEventLoopDelay, read from /metrics at the start and end of the phase, which
// resets it), and each rewrite's time to "routing table published".
//
//   node --import tsx bench/scale-churn.ts [--routes 5000] [--per 10] [--rewrites 5] [--rounds 2] [--quiet-s 5]
//                                          [--tree DIR]... [--cpu-prof DIR]
// Each --tree is a checkout of wsgate (default: this one); rounds alternate between trees, so that machine load
// falls on all of them alike. A bench, bounded in time; every process it starts is stopped at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import type { LoopDelayAnswer } from './loop-probe.ts';
import type { FromBackend } from './protocol.ts';

export interface ScaleChurnOptions {
  readonly routes: number;
  readonly perRoute: number;
  readonly rewrites: number;
  readonly rounds: number;
  readonly quietMs: number;
  readonly trees: readonly string[];
  /** Where wsgate writes a V8 CPU profile of each round (bench/profile-summary.ts reads it). */
  readonly cpuProfDir?: string;
}

export interface PhaseFigures {
  readonly samples: number;
  readonly rttP50Ms: number;
  readonly rttP99Ms: number;
  readonly rttMaxMs: number;
  /** wsgate's event-loop delay over the phase, from its /metrics. */
  readonly loopP99Ms: number;
  readonly loopMaxMs: number;
  /** The same from bench/loop-probe.ts: 1 ms sampling, the tick taken off; raw, and corrected for the ticks a
   *  stall swallowed (time-weighted). */
  readonly lateP99Ms: number;
  readonly lateMaxMs: number;
  readonly timedP99Ms: number;
  /** Echoes not answered by the end of the phase (+2 s). */
  readonly lost: number;
}

export interface RoundFigures {
  readonly tree: string;
  readonly startupMs: number;
  /** wsgate's resident memory once the first table is published (the whole process, build thread included). */
  readonly rssMiB: number;
  readonly quiet: PhaseFigures;
  readonly churn: PhaseFigures;
  /** Each rewrite (rename) → the "routing table published" line, ms. */
  readonly publishMs: readonly number[];
}

const here = resolve(import.meta.dirname, '..');

function arg(name: string): string[] {
  const out: string[] = [];
  for (let i = 2; i < process.argv.length - 1; i++) if (process.argv[i] === `--${name}`) out.push(process.argv[i + 1]!);
  return out;
}

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** The route file: route 0 goes to the live echo backend, every other route to addresses nobody dials. */
function routeFile(routes: number, perRoute: number, echo: string, version: number): string {
  const out: string[] = [];
  for (let i = 0; i < routes; i++) {
    const eps =
      i === 0
        ? [echo]
        : Array.from({ length: perRoute }, (_, j) =>
            // The change: route (version·7919 mod routes) gets one new address in its last slot.
            j === perRoute - 1 && version > 0 && i === 1 + ((version * 7919) % (routes - 1)) ? `10.200.${(version >> 8) & 255}.${version & 255}:8080` : `10.${(i >> 8) & 255}.${i & 255}.${j + 1}:8080`,
          );
    out.push(
      `apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata:\n  name: route-${i}\n  namespace: bench\nspec:\n  hostnames: ["r${i}.bench.example"]\n` +
        `  rules:\n    - matches: [{ path: { type: PathPrefix, value: /ws } }]\n      backendRefs:\n        - endpoints: [${eps.map((e) => `"${e}"`).join(', ')}]\n`,
    );
  }
  return out.join('---\n');
}

export interface Gate {
  readonly proc: ChildProcess;
  readonly listen: string;
  readonly admin: string;
  /** Resolves with the performance.now() of the next "routing table published" line at or above this generation. */
  published(generation: number): Promise<number>;
  generation(): number;
  /** The loop's lateness since the previous call, from the preloaded bench/loop-probe.ts. */
  late(): Promise<LoopDelayAnswer>;
}

/** wsgate from a tree, in its own process; `args` choose the mode (default: standalone on `config`);
 *  `nodeArgs` go to node (a CPU profile, say). */
export async function startGate(tree: string, config: string, args: readonly string[] = ['--config', config], nodeArgs: readonly string[] = []): Promise<Gate> {
  const probe = join(here, 'bench/loop-probe.ts');
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', '--import', probe, join(tree, 'src/cli.ts'), ...args, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--log-level', 'info'], {
    cwd: tree,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let gen = 0;
  const waiters: { gen: number; resolve: (t: number) => void }[] = [];
  let serving: (v: { listen: string; admin: string }) => void;
  const up = new Promise<{ listen: string; admin: string }>((r) => (serving = r));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const t = performance.now();
    let o: { msg?: string; generation?: number; listen?: string; admin?: string };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      return;
    }
    if (o.msg === 'routing table published' && typeof o.generation === 'number') {
      gen = o.generation;
      for (const w of waiters.splice(0)) if (gen >= w.gen) w.resolve(t);
      else waiters.push(w);
    }
    if (o.msg === 'wsgate serving') serving({ listen: o.listen!, admin: o.admin! });
  });
  const exited = once(proc, 'exit').then(() => {
    throw new Error(`wsgate (${tree}) exited before serving`);
  });
  const addr = await Promise.race([up, exited]);
  return {
    proc,
    ...addr,
    generation: () => gen,
    late: async () => {
      proc.send({ t: 'loop-delay' });
      for (;;) {
        const [m] = (await once(proc, 'message')) as [LoopDelayAnswer];
        if (m.t === 'loop-delay') return m;
      }
    },
    published: (g) => (gen >= g ? Promise.resolve(performance.now()) : new Promise((resolve) => waiters.push({ gen: g, resolve }))),
  };
}

export async function startEcho(): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'bench/echo-backend.ts')], { cwd: here, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [msg] = (await once(proc, 'message')) as [FromBackend];
  if (msg.type !== 'ready') throw new Error('echo backend did not start');
  return { proc, port: msg.port };
}

export interface LoopReading {
  readonly p99: number;
  readonly max: number;
  readonly late: LoopDelayAnswer;
}

/**
 * Both readings of the loop over the phase that ends now (each resets): wsgate's gauge and the probe's. The
 * probe is read before the scrape and reset after it, so that the scrape's own stall (formatting every series)
 * is in neither phase's probe figures; the gauge's window includes it, as it always did.
 */
export async function loopDelay(gate: Gate): Promise<LoopReading> {
  const late = await gate.late();
  const text = await (await fetch(`http://${gate.admin}/metrics`)).text();
  await gate.late();
  const read = (name: string): number => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p99: read('wsgate_process_nodejs_eventloop_lag_p99_seconds'), max: read('wsgate_process_nodejs_eventloop_lag_max_seconds'), late };
}

/** A live connection echoing 64 B every 10 ms; RTTs are kept per phase. */
export class Pinger {
  readonly #ws: WebSocket;
  readonly #sent = new Map<number, number>();
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  rtts: number[] = [];

  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      const seq = data.readUInt32BE(0);
      const t = this.#sent.get(seq);
      if (t === undefined) return;
      this.#sent.delete(seq);
      this.rtts.push(performance.now() - t);
    });
  }

  start(): void {
    this.#timer = setInterval(() => {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(++this.#seq, 0);
      this.#sent.set(this.#seq, performance.now());
      this.#ws.send(b);
    }, 10);
  }

  /** Ends the phase: stops sending, waits up to 2 s for the answers, returns RTTs and how many never came. */
  async stop(): Promise<{ rtts: number[]; lost: number }> {
    clearInterval(this.#timer);
    const deadline = performance.now() + 2000;
    while (this.#sent.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const out = { rtts: this.rtts, lost: this.#sent.size };
    this.rtts = [];
    this.#sent.clear();
    return out;
  }
}

export function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** One phase's figures on a line. */
export function phaseLine(p: PhaseFigures): string {
  return `rtt p50 ${ms(p.rttP50Ms)} p99 ${ms(p.rttP99Ms)} max ${ms(p.rttMaxMs)} ms (${p.samples} echoes, ${p.lost} lost); loop delay (gauge, 10 ms sampling) p99 ${ms(p.loopP99Ms)} max ${ms(p.loopMaxMs)} ms; loop late (probe, 1 ms sampling) p99 ${ms(p.lateP99Ms)} max ${ms(p.lateMaxMs)} ms, time-weighted p99 ${ms(p.timedP99Ms)} ms`;
}

export function figures(p: { rtts: number[]; lost: number }, loop: LoopReading): PhaseFigures {
  return { samples: p.rtts.length, rttP50Ms: quantile(p.rtts, 0.5), rttP99Ms: quantile(p.rtts, 0.99), rttMaxMs: Math.max(...p.rtts), loopP99Ms: loop.p99, loopMaxMs: loop.max, lateP99Ms: loop.late.raw.p99, lateMaxMs: loop.late.raw.max, timedP99Ms: loop.late.timed.p99, lost: p.lost };
}

async function round(tree: string, o: ScaleChurnOptions, echoPort: number): Promise<RoundFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-scale-'));
  const config = join(dir, 'routes.yaml');
  const echo = `127.0.0.1:${echoPort}`;
  writeFileSync(config, routeFile(o.routes, o.perRoute, echo, 0));
  const t0 = performance.now();
  const gate = await startGate(tree, config, ['--config', config], o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : []);
  try {
    await gate.published(1);
    const startupMs = performance.now() - t0;
    const rssMiB = rss(gate.proc.pid!);
    const ws = new WebSocket(`ws://${gate.listen}/ws`, { headers: { host: 'r0.bench.example' } });
    await once(ws, 'open');
    const pinger = new Pinger(ws);
    // Warm the path, then the quiet phase.
    pinger.start();
    await new Promise((r) => setTimeout(r, 1000));
    await pinger.stop();
    await loopDelay(gate);
    pinger.start();
    await new Promise((r) => setTimeout(r, o.quietMs));
    const quietRtt = await pinger.stop();
    const quiet = figures(quietRtt, await loopDelay(gate));
    pinger.start();
    const publishMs: number[] = [];
    for (let v = 1; v <= o.rewrites; v++) {
      const want = gate.generation() + 1;
      const tmp = `${config}.tmp`;
      writeFileSync(tmp, routeFile(o.routes, o.perRoute, echo, v));
      const t = performance.now();
      renameSync(tmp, config);
      publishMs.push((await gate.published(want)) - t);
      await new Promise((r) => setTimeout(r, 300));
    }
    const churnRtt = await pinger.stop();
    const churn = figures(churnRtt, await loopDelay(gate));
    ws.close();
    return { tree, startupMs, rssMiB, quiet, churn, publishMs };
  } finally {
    // A profiled wsgate writes its profile as it exits, which SIGKILL would not let it do.
    gate.proc.kill(o.cpuProfDir ? 'SIGINT' : 'SIGKILL');
    await once(gate.proc, 'exit').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchScaleChurn(o: ScaleChurnOptions, progress: (r: RoundFigures) => void = () => {}): Promise<RoundFigures[]> {
  const echo = await startEcho();
  const out: RoundFigures[] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      for (const tree of r % 2 === 0 ? o.trees : [...o.trees].reverse()) {
        const f = await round(tree, o, echo.port);
        progress(f);
        out.push(f);
      }
    }
  } finally {
    echo.proc.kill('SIGTERM');
  }
  return out;
}

export const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(n < 10 ? 1 : 0) : '—');

export function formatRound(r: RoundFigures): string {
  return `${r.tree}: startup ${ms(r.startupMs)} ms, RSS ${ms(r.rssMiB)} MiB\n  quiet: ${phaseLine(r.quiet)}\n  churn: ${phaseLine(r.churn)}\n  rewrite → published: ${r.publishMs.map(ms).join(', ')} ms`;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const num = (name: string, d: number): number => Number(arg(name)[0] ?? d);
  const trees = arg('tree').map((t) => resolve(t));
  const o: ScaleChurnOptions = {
    routes: num('routes', 5000),
    perRoute: num('per', 10),
    rewrites: num('rewrites', 5),
    rounds: num('rounds', 2),
    quietMs: num('quiet-s', 5) * 1000,
    trees: trees.length > 0 ? trees : [here],
    ...(arg('cpu-prof')[0] ? { cpuProfDir: resolve(arg('cpu-prof')[0]!) } : {}),
  };
  process.stdout.write(`scale churn: ${o.routes} routes × ${o.perRoute} endpoints (route 0: the echo backend alone), ${o.rewrites} rewrites, ${o.rounds} round(s)\n`);
  await benchScaleChurn(o, (r) => process.stdout.write(formatRound(r) + '\n'));
}
