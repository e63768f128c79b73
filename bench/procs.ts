// Child processes of the benchmark (each in its own process group, so nginx workers die with their master) and
// what /proc says about them: CPU time (utime+stime) and RSS summed over a process tree.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly stopSignal: NodeJS.Signals;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<string>;
  /** The last few KiB of its stdout and stderr, for error messages. */
  output(): string;
}

export interface SpawnOptions {
  readonly name: string;
  readonly cwd: string;
  /** A taskset CPU list ("0", "1-3"); ignored when pinning is off. */
  readonly cpu?: string;
  readonly ipc?: boolean;
  /** The polite stop signal (default SIGTERM); SIGKILL follows after the grace period. */
  readonly stopSignal?: NodeJS.Signals;
  /** Added to (or, empty, removed from) the inherited environment. */
  readonly env?: Readonly<Record<string, string>>;
}

const outputTail = 8192;

export class ProcessGroup {
  private readonly live = new Set<Proc>();

  constructor(private readonly pin: boolean) {}

  spawn(cmd: string, args: readonly string[], opts: SpawnOptions): Proc {
    const pinned = this.pin && opts.cpu !== undefined;
    const file = pinned ? 'taskset' : cmd;
    const argv = pinned ? ['-c', opts.cpu ?? '', cmd, ...args] : [...args];
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      ...(opts.env ? { env: withEnv(process.env, opts.env) } : {}),
      detached: true,
      stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (b: Buffer) => {
      tail = (tail + b.toString()).slice(-outputTail);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    if (child.pid === undefined) throw new Error(`could not start ${opts.name} (${file})`);
    const exited = new Promise<string>((resolve) => {
      child.once('exit', (code, signal) => resolve(signal ?? String(code)));
      child.once('error', (err) => resolve(`error: ${err.message}`));
    });
    const proc: Proc = { name: opts.name, pid: child.pid, child, stopSignal: opts.stopSignal ?? 'SIGTERM', exited, output: () => tail };
    this.live.add(proc);
    void exited.then(() => this.live.delete(proc));
    return proc;
  }

  /** The stop signal to the process group, SIGKILL after graceMs. */
  async stop(proc: Proc, graceMs = 3000): Promise<void> {
    if (!this.live.has(proc)) return;
    signalGroup(proc.pid, proc.stopSignal);
    const timer = setTimeout(() => signalGroup(proc.pid, 'SIGKILL'), graceMs);
    await proc.exited;
    clearTimeout(timer);
    // The group may outlive its leader (an nginx worker): make sure nothing of it stays.
    signalGroup(proc.pid, 'SIGKILL');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((p) => this.stop(p)));
  }

  /** For process 'exit': no waiting possible, so SIGKILL every group at once. */
  killAllSync(): void {
    for (const p of this.live) signalGroup(p.pid, 'SIGKILL');
    this.live.clear();
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Pins an existing process (all its threads) to a CPU list. */
export function pinPid(pid: number, cpu: string): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' }).status === 0;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Fields of /proc/<pid>/stat after the command name: [0] is state, [1] ppid, [11] utime, [12] stime. */
function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Whether the process exists and is not a zombie. */
export function alive(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** The roots and all their descendants that are alive now. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(d));
    else children.set(ppid, [Number(d)]);
  }
  const out: number[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (out.includes(pid)) continue;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * How CPU time is read. Preferred: the sum over a process's threads of /proc/<pid>/task/<tid>/schedstat (time on
 * CPU in ns: exact, where utime+stime in /proc/<pid>/stat comes in clock ticks of 10 ms). Fallback: utime+stime.
 */
export type CpuClock = { readonly kind: 'schedstat' } | { readonly kind: 'stat'; readonly ticksPerSecond: number };

export function cpuClock(): CpuClock {
  try {
    if (Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) > 0) return { kind: 'schedstat' };
  } catch {
    // no schedstat (kernel without CONFIG_SCHED_INFO)
  }
  return { kind: 'stat', ticksPerSecond: Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100 };
}

export function describeClock(c: CpuClock): string {
  return c.kind === 'schedstat'
    ? 'sum of /proc/<pid>/task/*/schedstat (ns on CPU, all threads)'
    : `utime+stime from /proc/<pid>/stat (CLK_TCK ${c.ticksPerSecond})`;
}

/** CPU time of the tree so far, in microseconds. */
export function cpuMicros(pids: readonly number[], clock: CpuClock): number {
  let total = 0;
  for (const pid of pids) {
    if (clock.kind === 'stat') {
      const f = statFields(pid);
      if (f) total += ((Number(f[11]) + Number(f[12])) * 1e6) / clock.ticksPerSecond;
      continue;
    }
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
      } catch {
        // thread gone
      }
    }
  }
  return total;
}

/** VmRSS of the tree, in KiB. */
export function rssKiB(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kib += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kib;
}

function withEnv(base: NodeJS.ProcessEnv, extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    if (v === '') delete out[k];
    else out[k] = v;
  }
  return out;
}
