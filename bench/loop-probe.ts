// Preloaded into a wsgate under bench (`node --import tsx --import bench/loop-probe.ts src/cli.ts ...`): the
// relay's event-loop delay, finer than wsgate's own gauge. prom-client samples monitorEventLoopDelay every 10 ms,
// and a sample is the whole interval between two timer callbacks, so a loop that never waits reads 10 ms and a
// 4 ms stall inside a 10 ms tick reads nothing at all. Here the timer fires every 1 ms and the 1 ms is taken off
// each figure: what is left is how late the loop was. Asked over the IPC channel the bench opens; every answer
// resets the histogram, so each answer covers the time since the previous one.
// (Node's ELD histogram records the interval between timer callbacks: nodejs/node src/histogram.cc, RecordDelta.)
import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopDelayAnswer {
  readonly t: 'loop-delay';
  /** ms the loop was late beyond the 1 ms tick, over the period since the previous answer. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
  /** The process's memory now, MiB: resident, and V8's heap in use. */
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
}

const resolutionMs = 1;
const h = monitorEventLoopDelay({ resolution: resolutionMs });
h.enable();
const memory = () => {
  const m = process.memoryUsage();
  return { rssMiB: m.rss / 2 ** 20, heapUsedMiB: m.heapUsed / 2 ** 20 };
};
const late = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs);
process.on('message', (m: { t?: string }) => {
  if (m?.t !== 'loop-delay') return;
  const answer: LoopDelayAnswer = { t: 'loop-delay', p50: late(h.percentile(50)), p99: late(h.percentile(99)), max: late(h.max), samples: h.count, ...memory() };
  h.reset();
  process.send?.(answer);
});
// The channel must not keep wsgate alive, nor be taken for a primary's (wsgate's workers are cluster workers).
process.channel?.unref();
