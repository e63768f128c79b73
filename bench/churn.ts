// Config churn under load: while a steady fixed-rate echo load runs and new long-lived connections
// keep arriving, the target's configuration is changed K times at a fixed cadence (wsgate: its route file
// rewritten; nginx: SIGHUP; HAProxy in master-worker mode: SIGUSR2). Measured: whether each change took effect
// and how long it took to show, connections closed and messages lost during the churn, new connections refused,
// added RTT against the direct baseline sent in the same ticks, and the superseded worker processes still alive
// afterwards (they keep serving their WebSockets, which is what a reload costs nginx and HAProxy) with their RSS.
import { performance } from 'node:perf_hooks';
import type { LoadPool } from './load.ts';
import { alive, processTree, rssKiB } from './procs.ts';
import type { Job, JobResult } from './protocol.ts';
import { median, percentile, type MetricKey } from './report.ts';
import { applyBoundMs, type Applied, type RunningTarget } from './targets.ts';

export interface ChurnPlan {
  /** The scenario runs in the first `rounds` rounds only (it is the slowest one per round). */
  readonly rounds: number;
  /** Configuration changes, one every intervalMs after the warm-up. */
  readonly changes: number;
  readonly intervalMs: number;
  /** New connections per second opened through the target during the run, kept open (idle) until its end. */
  readonly arrivalsPerSecond: number;
  /** Before the first change; RTT samples in it are dropped. */
  readonly warmupSeconds: number;
  /** Load after the last change. */
  readonly tailSeconds: number;
  /** The control run first, on the same instance: the same load and arrivals, no changes, this long after the warm-up. */
  readonly controlSeconds: number;
  /** How long the last echoes may take after the sending ends before the rest count as lost. */
  readonly graceSeconds: number;
  /** After the run, before the superseded processes are counted (those without connections exit by then). */
  readonly settleMs: number;
}

export interface ChurnResult {
  readonly values: Partial<Record<MetricKey, number>>;
  /** Anything that makes the figures doubtful (changes not seen, disagreeing counts, a control run with losses). */
  readonly problems: readonly string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds of load in one churn run. */
export function churnSeconds(p: ChurnPlan): number {
  return p.warmupSeconds + (p.changes * p.intervalMs) / 1000 + p.tailSeconds;
}

function churnJob(p: ChurnPlan, load: { readonly connections: number; readonly rate: number }, urls: readonly string[], directUrls: readonly string[], seconds: number): Job {
  return {
    kind: 'churn',
    urls,
    baselineUrls: directUrls,
    connOffset: 0,
    connections: load.connections,
    rate: load.rate,
    seconds,
    warmupSeconds: p.warmupSeconds,
    size: 64,
    arrivalsPerSecond: p.arrivalsPerSecond,
    graceSeconds: p.graceSeconds,
    maxSeconds: seconds + p.graceSeconds + 30,
  };
}

/** Added RTT p50 and p99 (through the target minus the baseline sent in the same ticks), µs. */
function added(r: JobResult): [number, number] | undefined {
  const rtt = [...(r.rttUs ?? [])].sort((a, b) => a - b);
  const base = [...(r.baselineRttUs ?? [])].sort((a, b) => a - b);
  if (rtt.length === 0 || base.length === 0) return undefined;
  return [percentile(rtt, 50) - percentile(base, 50), percentile(rtt, 99) - percentile(base, 99)];
}

/** The control run, then the churn run, on one fresh reloadable instance of the target. */
export async function runChurn(
  pool: LoadPool,
  p: ChurnPlan,
  load: { readonly connections: number; readonly rate: number },
  target: RunningTarget,
  directUrls: readonly string[],
): Promise<ChurnResult> {
  const reloader = target.reloader;
  if (!reloader) throw new Error('target not started reloadable');
  const problems: string[] = [];
  const out: ChurnResult['values'] = {};

  // Control: what the same load and arrivals cost this instance without any change (wsgate's handshakes, for
  // one, take CPU that the messages then wait for).
  const control = (await pool.run([churnJob(p, load, target.urls, directUrls, p.warmupSeconds + p.controlSeconds)])).results[0];
  if (control.timedOut) throw new Error('control run timed out');
  if ((control.closed ?? 0) + (control.lost ?? 0) + (control.arrivalFailures ?? 0) > 0) {
    problems.push(`control run without changes: ${control.closed ?? 0} connections closed, ${control.lost ?? 0} messages unanswered, ${control.arrivalFailures ?? 0} new connections failed`);
  }
  const ctl = added(control);
  if (ctl) [out.churnCtlAddP50, out.churnCtlAddP99] = ctl;

  const applied: Applied[] = [];
  /** Processes alive right before a change that started new ones: superseded by it, if still alive at the end. */
  const superseded = new Set<number>();
  let churning: Promise<void> = Promise.resolve();
  const churn = async () => {
    const t0 = performance.now();
    for (let i = 1; i <= p.changes; i++) {
      const at = t0 + p.warmupSeconds * 1000 + (i - 1) * p.intervalMs;
      await sleep(Math.max(0, at - performance.now()));
      const before = processTree(target.roots);
      const a = await reloader.apply(i);
      applied.push(a);
      if (a.spawned.length > 0) for (const pid of before) superseded.add(pid);
    }
  };
  let old: number[] = [];
  let oldKiB = 0;
  const run = await pool.run([churnJob(p, load, target.urls, directUrls, churnSeconds(p))], {
    beforeGo: () => {
      churning = churn();
      // Surfaces in afterDone; an unobserved rejection meanwhile would end the process.
      churning.catch(() => undefined);
    },
    afterDone: async () => {
      await churning;
      await sleep(p.settleMs);
      const roots = new Set(target.roots);
      old = processTree(target.roots).filter((pid) => !roots.has(pid) && superseded.has(pid));
      oldKiB = rssKiB(old); // now, while they still hold their connections
    },
  });
  const r = run.results[0];
  const gone = target.roots.filter((pid) => !alive(pid));
  if (gone.length > 0) problems.push(`the target's main process (${gone.join(', ')}) exited during the churn`);
  if (r.timedOut) throw new Error(`churn run timed out after ${Math.round(run.wallMs)} ms`);
  const ms = applied.flatMap((a) => (a.ms === undefined ? [] : [a.ms]));
  out.churnApplied = ms.length;
  if (ms.length < p.changes) {
    const tail = target.output?.().trim().split('\n').slice(-4).join(' / ').slice(-400);
    problems.push(`${ms.length} of ${p.changes} changes seen to take effect within ${applyBoundMs / 1000} s${tail ? ` (its output ends: ${tail})` : ''}`);
  }
  const disagree = await reloader.check?.(ms.length);
  if (disagree) problems.push(disagree);
  if (ms.length > 0) {
    out.churnApplyMs = median(ms);
    out.churnApplyMaxMs = Math.max(...ms);
  }
  out.churnClosed = r.closed ?? 0;
  out.churnLost = r.lost ?? 0;
  out.churnArrivals = (r.arrivals ?? 0) + (r.arrivalFailures ?? 0);
  out.churnArrivalFailed = r.arrivalFailures ?? 0;
  const add = added(r);
  if (add) [out.churnAddP50, out.churnAddP99] = add;
  out.churnOld = old.length;
  out.churnOldMiB = oldKiB / 1024;
  return { values: out, problems };
}
