// Preloaded into a wsgate under bench (`node --import tsx --import bench/loop-probe.ts src/cli.ts ...`): the
// relay's event-loop delay, finer than wsgate's own gauge. prom-client samples monitorEventLoopDelay every 10 ms,
// and a sample is the whole interval between two timer callbacks, so a loop that never waits reads 10 ms and a
// 4 ms stall inside a 10 ms tick reads nothing at all. Here the timer fires every 1 ms and the 1 ms is taken off
// each figure: what is left is how late the loop was. (Node's ELD histogram records the interval between timer
// callbacks: nodejs/node src/histogram.cc, RecordDelta.)
//
// Two readings. `raw` is monitorEventLoopDelay's own: one sample per timer callback, so a loop stalled for a
// second gives one sample where a free loop gives a thousand, and its percentiles understate long stalls (the
// "coordinated omission" of HdrHistogram's docs). `timed` corrects that: a stall of d ms also stands for the
// ticks it swallowed, each d−1, d−2, … ms late, so its p99 reads "99% of the time, the loop would have answered
// within this", which is what a frame arriving at a random moment meets.
// Asked over the IPC channel the bench opens; every answer resets both, so each covers the time since the last.
import { createHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';

export interface LoopFigures {
  /** ms the loop was late beyond the 1 ms tick. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface LoopDelayAnswer {
  readonly t: 'loop-delay';
  readonly raw: LoopFigures;
  readonly timed: LoopFigures;
  /** The process's memory now, MiB: resident, and V8's heap in use. */
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
}

const resolutionMs = 1;
const raw = monitorEventLoopDelay({ resolution: resolutionMs });
raw.enable();
/** Microseconds late, at least 1 (the histogram records positive integers). */
const timed = createHistogram();
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const late = now - last - resolutionMs;
  last = now;
  if (late <= 0) timed.record(1);
  for (let d = late; d > 0; d -= resolutionMs) timed.record(Math.max(1, Math.round(d * 1000)));
}, resolutionMs).unref();

const lateMs = (ns: number): number => Math.max(0, ns / 1e6 - resolutionMs);
const usMs = (us: number): number => (us <= 1 ? 0 : us / 1000);
process.on('message', (m: { t?: string }) => {
  if (m?.t !== 'loop-delay') return;
  const mem = process.memoryUsage();
  const answer: LoopDelayAnswer = {
    t: 'loop-delay',
    raw: { p50: lateMs(raw.percentile(50)), p99: lateMs(raw.percentile(99)), max: lateMs(raw.max) },
    timed: { p50: usMs(timed.percentile(50)), p99: usMs(timed.percentile(99)), max: usMs(timed.max) },
    rssMiB: mem.rss / 2 ** 20,
    heapUsedMiB: mem.heapUsed / 2 ** 20,
  };
  raw.reset();
  timed.reset();
  process.send?.(answer);
});
// The channel must not keep wsgate alive, nor be taken for a primary's (wsgate's workers are cluster workers).
process.channel?.unref();
