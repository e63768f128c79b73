// Endpoint churn in Kubernetes mode at scale, measured from outside: wsgate (its own process, --kubernetes)
// watches the in-repo fake API server (another process, bench/fake-apiserver-child.ts) holding 5,000 routes with
// a Service and a 10-endpoint EndpointSlice each; one live WebSocket through wsgate echoes 64 B every 10 ms to an
// echo backend (a third process). After the first table and the leader's first status writes, a quiet phase,
// then a churn phase of 10 EndpointSlice changes a second (each a new pod address in one slice). Reported per
// tree: echo RTT (p50, p99, max) in each phase, the churn p99 over the quiet p99, wsgate's event-loop delay in
// each phase (from its /metrics, as in scale-churn.ts), how many tables were published during the churn, and the
// CPU time of wsgate's main thread (the relay's loop; /proc/<pid>/task/<pid>/schedstat, which leaves out the build
// thread) in each phase: the churn's extra over the quiet rate, per table published, is what a change
// costs the relay's loop, a figure less moved by other load on the machine than the wall-clock ones.
//
//   node --import tsx bench/scale-k8s-churn.ts [--routes 5000] [--per 10] [--quiet-s 10] [--churn-s 60]
//                                              [--rate 10] [--rounds 1] [--tree DIR]... [--cpu-prof DIR]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import type { FromFake, ToFake } from './fake-apiserver-child.ts';
import { figures, loopDelay, ms, phaseLine, Pinger, startEcho, startGate, type PhaseFigures } from './scale-churn.ts';

interface Options {
  readonly routes: number;
  readonly per: number;
  readonly quietMs: number;
  readonly churnMs: number;
  readonly rate: number;
  readonly rounds: number;
  readonly trees: readonly string[];
  /** Where wsgate writes a V8 CPU profile of each round (bench/profile-summary.ts reads it). */
  readonly cpuProfDir?: string;
}

interface Round {
  readonly tree: string;
  /** Main-thread CPU ms in the quiet and churn phases, and the phases' lengths in ms. */
  readonly cpu: { readonly quietMs: number; readonly churnMs: number; readonly quietWallMs: number; readonly churnWallMs: number };
  readonly startupMs: number;
  /** Once the first table is published and the statuses written: the whole process's RSS (build thread
   *  included) and the main thread's V8 heap in use, MiB. */
  readonly memory: { readonly rssMiB: number; readonly heapUsedMiB: number };
  readonly quiet: PhaseFigures;
  readonly churn: PhaseFigures;
  readonly changes: number;
  readonly published: number;
  /** The relist's change → its table published, ms (NaN: not within 60 s), and the phase around it. */
  readonly relistMs: number;
  readonly relist: PhaseFigures;
}

const here = resolve(import.meta.dirname, '..');
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

function arg(name: string): string[] {
  const out: string[] = [];
  for (let i = 2; i < process.argv.length - 1; i++) if (process.argv[i] === `--${name}`) out.push(process.argv[i + 1]!);
  return out;
}

/** CPU time of a process's main thread so far, ms: the first field of the schedstat of the task whose id is the
 *  process id, nanoseconds on the CPU (https://docs.kernel.org/scheduler/sched-stats.html). */
function mainThreadCpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

async function startFake(o: Options, echoPort: number): Promise<{ proc: ChildProcess; kubeconfig: string; ask: (m: ToFake) => Promise<FromFake | undefined> }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'bench/fake-apiserver-child.ts'), String(o.routes), String(o.per), String(echoPort)], {
    cwd: here,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(proc, 'message')) as [FromFake];
  if (ready.t !== 'ready') throw new Error('fake API server did not start');
  const ask = async (m: ToFake): Promise<FromFake | undefined> => {
    proc.send(m);
    if (m.t !== 'status') return undefined;
    const [answer] = (await once(proc, 'message')) as [FromFake];
    return answer;
  };
  return { proc, kubeconfig: ready.kubeconfig, ask };
}

async function round(tree: string, o: Options, echoPort: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-k8s-churn-'));
  const fake = await startFake(o, echoPort);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, fake.kubeconfig);
  const t0 = performance.now();
  // The first status write of every route is waited for below: unpaced, where the tree paces its writes at all.
  const paced = readFileSync(join(tree, 'src/config/flags.ts'), 'utf8').includes("'kube-api-qps'");
  const unpaced = paced ? ['--kube-api-qps', '100000', '--kube-api-burst', '100000'] : [];
  const gate = await startGate(tree, '', ['--kubernetes', '--kubeconfig', kubeconfig, '--pod-name', 'bench', '--lease-namespace', 'bench', ...unpaced], o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : []);
  try {
    await gate.published(1);
    const startupMs = performance.now() - t0;
    // The leader's first status write of every route is startup work, not churn: let it finish.
    for (;;) {
      const s = await fake.ask({ t: 'status' });
      if (s?.t === 'status' && s.patches >= o.routes) break;
      await sleep(200);
    }
    const { rssMiB, heapUsedMiB } = await gate.late();
    const ws = new WebSocket(`ws://${gate.listen}/`, { headers: { host: 'r0.bench.example' } });
    await once(ws, 'open');
    const pinger = new Pinger(ws);
    pinger.start();
    await sleep(1000);
    await pinger.stop();
    await loopDelay(gate);
    const pid = gate.proc.pid!;
    const c0 = mainThreadCpuMs(pid);
    const w0 = performance.now();
    pinger.start();
    await sleep(o.quietMs);
    const quiet = figures(await pinger.stop(), await loopDelay(gate));
    const c1 = mainThreadCpuMs(pid);
    const w1 = performance.now();
    const genBefore = gate.generation();
    pinger.start();
    let changes = 0;
    const every = 1000 / o.rate;
    const start = performance.now();
    while (performance.now() - start < o.churnMs) {
      changes++;
      void fake.ask({ t: 'update', i: 1 + ((changes * 7919) % (o.routes - 1)), version: changes });
      const next = start + changes * every;
      await sleep(Math.max(0, next - performance.now()));
    }
    const churn = figures(await pinger.stop(), await loopDelay(gate));
    const cpu = { quietMs: c1 - c0, churnMs: mainThreadCpuMs(pid) - c1, quietWallMs: w1 - w0, churnWallMs: performance.now() - w1 };
    // A relist of everything (after a 410), with one change in it: from the relist to the published table, and
    // the live connection meanwhile and for a second after.
    // The churn's last build may still be on its way: let it land first.
    await sleep(1000);
    await loopDelay(gate);
    const want = gate.generation() + 1;
    pinger.start();
    const r0 = performance.now();
    void fake.ask({ t: 'relist', i: 1 + ((++changes * 7919) % (o.routes - 1)), version: changes });
    const relistMs = (await Promise.race([gate.published(want), sleep(60_000).then(() => NaN)])) - r0;
    await sleep(1000);
    const relist = figures(await pinger.stop(), await loopDelay(gate));
    ws.close();
    return { tree, cpu, startupMs, memory: { rssMiB, heapUsedMiB }, quiet, churn, changes: changes - 1, published: want - 1 - genBefore, relistMs, relist };
  } finally {
    // A profiled wsgate writes its profile as it exits, which SIGKILL would not let it do.
    gate.proc.kill(o.cpuProfDir ? 'SIGINT' : 'SIGKILL');
    fake.proc.kill('SIGKILL');
    await Promise.all([once(gate.proc, 'exit'), once(fake.proc, 'exit')]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

function format(r: Round): string {
  const { quietMs, churnMs, quietWallMs, churnWallMs } = r.cpu;
  const extra = churnMs - (quietMs / quietWallMs) * churnWallMs;
  const cpu = `main-thread CPU: quiet ${ms((quietMs / quietWallMs) * 1000)} ms/s, churn ${ms((churnMs / churnWallMs) * 1000)} ms/s; churn extra ${ms(extra)} ms = ${ms(extra / Math.max(1, r.published))} ms per table published, ${ms(extra / Math.max(1, r.changes))} ms per change`;
  return `${r.tree}: startup ${ms(r.startupMs)} ms; RSS ${ms(r.memory.rssMiB)} MiB, main heap used ${ms(r.memory.heapUsedMiB)} MiB\n  quiet: ${phaseLine(r.quiet)}\n  churn: ${phaseLine(r.churn)}\n  relist (410) with one change → published ${ms(r.relistMs)} ms; ${phaseLine(r.relist)}\n  churn/quiet rtt p99 ${(r.churn.rttP99Ms / r.quiet.rttP99Ms).toFixed(2)}×; ${r.changes} slice changes, ${r.published} tables published\n  ${cpu}`;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const num = (name: string, d: number): number => Number(arg(name)[0] ?? d);
  const trees = arg('tree').map((t) => resolve(t));
  const o: Options = {
    routes: num('routes', 5000),
    per: num('per', 10),
    quietMs: num('quiet-s', 10) * 1000,
    churnMs: num('churn-s', 60) * 1000,
    rate: num('rate', 10),
    rounds: num('rounds', 1),
    trees: trees.length > 0 ? trees : [here],
    ...(arg('cpu-prof')[0] ? { cpuProfDir: resolve(arg('cpu-prof')[0]!) } : {}),
  };
  process.stdout.write(`k8s churn: ${o.routes} routes × ${o.per} endpoints, ${o.rate} slice changes/s for ${o.churnMs / 1000} s, ${o.rounds} round(s)\n`);
  const echo = await startEcho();
  try {
    for (let r = 0; r < o.rounds; r++) {
      for (const tree of r % 2 === 0 ? o.trees : [...o.trees].reverse()) process.stdout.write(format(await round(tree, o, echo.port)) + '\n');
    }
  } finally {
    echo.proc.kill('SIGTERM');
  }
}
