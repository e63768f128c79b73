// The load generator processes (bench/load-client.ts), driven in lock step: every generator connects, then the
// caller takes its "before" measurement, then all go at once, then the caller takes its "after" measurement.
import { performance } from 'node:perf_hooks';
import type { ProcessGroup, Proc } from './procs.ts';
import type { FromGenerator, Job, JobResult, ToGenerator } from './protocol.ts';

type Kind = FromGenerator['type'];

class Generator {
  private readonly inbox: FromGenerator[] = [];
  private wake: (() => void) | undefined;
  private exitedWith: string | undefined;

  constructor(readonly proc: Proc) {
    proc.child.on('message', (m: FromGenerator) => {
      this.inbox.push(m);
      this.wake?.();
    });
    void proc.exited.then((code) => {
      this.exitedWith = code;
      this.wake?.();
    });
  }

  send(m: ToGenerator): void {
    // A new job starts from a clean slate: anything left over from a failed one is dropped.
    if (m.type === 'job') this.inbox.length = 0;
    this.proc.child.send(m);
  }

  /** The next message, which must be of `kind`; a 'failed' message, an exit or the timeout throws. */
  async expect<K extends Kind>(kind: K, timeoutMs: number): Promise<Extract<FromGenerator, { type: K }>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m) {
        if (m.type === kind) return m as Extract<FromGenerator, { type: K }>;
        if (m.type === 'failed') throw new Error(`load generator ${this.proc.pid}: ${m.error}`);
        throw new Error(`load generator ${this.proc.pid}: expected ${kind}, got ${m.type}`);
      }
      if (this.exitedWith !== undefined) throw new Error(`load generator ${this.proc.pid} exited (${this.exitedWith}): ${this.proc.output().slice(-400)}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`load generator ${this.proc.pid}: no ${kind} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}

export interface RunHooks {
  /** After every generator has connected, right before "go". */
  readonly beforeGo?: () => void | Promise<void>;
  /** After every generator is done, before connections close. */
  readonly afterDone?: () => void | Promise<void>;
}

export interface PoolRun {
  readonly results: readonly JobResult[];
  /** From "go" to the last "done", as the parent saw it. */
  readonly wallMs: number;
}

export class LoadPool {
  private constructor(private readonly gens: readonly Generator[]) {}

  static async start(group: ProcessGroup, repo: string, count: number, cpu: string): Promise<LoadPool> {
    const gens: Generator[] = [];
    for (let i = 0; i < count; i++) {
      const proc = group.spawn(process.execPath, ['--import', 'tsx', 'bench/load-client.ts'], { name: `load-${i}`, cwd: repo, cpu, ipc: true });
      gens.push(new Generator(proc));
    }
    await Promise.all(gens.map((g) => g.expect('hello', 30_000)));
    return new LoadPool(gens);
  }

  get size(): number {
    return this.gens.length;
  }

  /** Runs jobs[i] on generator i, in lock step; generators beyond jobs.length stay idle. */
  async run(jobs: readonly Job[], hooks: RunHooks = {}): Promise<PoolRun> {
    if (jobs.length === 0 || jobs.length > this.gens.length) throw new Error(`${jobs.length} jobs for ${this.gens.length} generators`);
    const bound = Math.max(...jobs.map((j) => j.maxSeconds)) * 1000 + 30_000;
    const gens = this.gens.slice(0, jobs.length);
    gens.forEach((g, i) => g.send({ type: 'job', job: jobs[i] }));
    const ready = await Promise.allSettled(gens.map((g) => g.expect('ready', bound)));
    try {
      const failed = ready.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      await hooks.beforeGo?.();
      const t0 = performance.now();
      for (const g of gens) g.send({ type: 'go' });
      const done = await Promise.all(gens.map((g) => g.expect('done', bound)));
      const wallMs = performance.now() - t0;
      await hooks.afterDone?.();
      return { results: done.map((d) => d.result), wallMs };
    } finally {
      // Generators whose setup failed already answered; the others hold connections until told to close.
      const holding = gens.filter((_, i) => ready[i].status === 'fulfilled');
      for (const g of holding) g.send({ type: 'close' });
      await Promise.allSettled(holding.map((g) => g.expect('closed', 30_000)));
    }
  }
}

/** Splits a total as evenly as possible into n integer parts. */
export function split(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}
