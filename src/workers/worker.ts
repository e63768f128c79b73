// A worker of `--workers N`: one data plane on the shared listening port, its routing table pushed by the
// primary (built once there), its metrics collected by the primary's /metrics, its shutdown ordered by it.
import type { Config } from '../config/config.ts';
import { startDataPlane } from '../data-plane.ts';
import { ChunkedMap } from '../model/chunked-map.ts';
import { SnapshotHolder } from '../model/holder.ts';
import type { ObjectKey, Route, SnapshotContent } from '../model/snapshot.ts';
import type { Logger } from '../telemetry/logger.ts';
import { Metrics } from '../telemetry/metrics.ts';
import type { Clock } from '../util/clock.ts';
import type { ToPrimary, ToWorker } from './messages.ts';

export async function runWorker(config: Config, log: Logger, clock: Clock): Promise<number> {
  const send = (m: ToPrimary) => process.send?.(m);
  const metrics = new Metrics();
  const holder = new SnapshotHolder();
  let stopping: Promise<void> | undefined;
  // Filled once the data plane listens; a stop that comes earlier finds nothing to drain.
  const plane: { data?: Awaited<ReturnType<typeof startDataPlane>> } = {};
  const done = new Promise<number>((resolve) => {
    const stop = (how: 'shutdown' | 'close') => {
      stopping ??= (async () => {
        const data = plane.data;
        if (data) await (how === 'shutdown' ? data.shutdown() : data.close());
      })().then(() => resolve(0), (err: unknown) => {
        log.error({ err }, 'worker stop failed');
        resolve(1);
      });
    };
    process.on('message', (m: ToWorker) => {
      if (m.t === 'snapshot') holder.publish(fromPrimary(m.content));
      else if (m.t === 'shutdown') stop('shutdown');
      else if (m.t === 'metrics') {
        void metrics.registry.getMetricsAsJSON().then((d) => send({ t: 'metrics', id: m.id, data: d }));
      }
    });
    // The primary owns SIGTERM (the paced drain); an interactive Ctrl-C reaches the whole group: stop now.
    process.on('SIGTERM', () => {});
    process.on('SIGINT', () => stop('close'));
    process.on('disconnect', () => stop('close'));
  });
  send({ t: 'hello' });
  plane.data = await startDataPlane(config, log, metrics, holder, clock);
  send({ t: 'listening' });
  return done;
}

/** The snapshot as the primary sent it (a structured clone): its routes, a ChunkedMap, arrive as a plain object
 *  of the map's fields, and are made a map again here. */
export function fromPrimary(c: SnapshotContent): SnapshotContent {
  return Object.freeze({ ...c, routes: ChunkedMap.revive<ObjectKey, Route>(c.routes) ?? c.routes });
}
