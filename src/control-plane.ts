// The control plane of one process group: the source for the mode, the controller that builds and publishes
// into the holder, and (Kubernetes) leader election and status writing. Workers never run one.
import { createSpecValidator } from './api/validate.ts';
import { createRoutingBuilder } from './dag/routing-apis.ts';
import type { Config } from './config/config.ts';
import { Controller } from './controller/controller.ts';
import { ThreadBuilder } from './controller/thread-builder.ts';
import type { SnapshotHolder } from './model/holder.ts';
import { createSource } from './sources/create-source.ts';
import type { Logger } from './telemetry/logger.ts';
import type { Clock } from './util/clock.ts';
import type { Metrics } from './telemetry/metrics.ts';

export interface ControlPlane {
  /** Every source has delivered its first full state. */
  synced(): boolean;
  stop(): Promise<void>;
}

export async function startControlPlane(config: Config, log: Logger, metrics: Metrics, holder: SnapshotHolder, clock: Clock): Promise<ControlPlane> {
  const validate = createSpecValidator();
  const options = { className: config.className, allowStaticEndpoints: config.allowStaticEndpoints, mode: config.mode };
  // Full builds (and reading the route file) run in a thread, so that they never hold up the relay's loop.
  const thread = config.buildThread ? new ThreadBuilder(options) : undefined;
  const build = thread ?? createRoutingBuilder(options);
  const sources = await createSource(config, { validate, log, metrics, clock, ...(thread ? { loader: thread } : {}) });
  const controller = new Controller({
    source: sources.source,
    build,
    holder,
    log,
    metrics,
    holdoffMs: config.buildHoldoffMs,
    maxHoldoffMs: config.buildMaxHoldoffMs,
    clock,
    onStatuses: (statuses) => sources.onStatuses(statuses),
    onRoutingApiStatuses: (statuses) => sources.onRoutingApiStatuses(statuses),
  });
  try {
    await sources.start();
  } catch (err) {
    await thread?.close();
    throw err;
  }
  // Standalone has its state already; Kubernetes builds once every informer has listed (readyz waits too).
  if (config.mode === 'standalone') await controller.start();
  else void sources.whenSynced().then(() => controller.start());
  return {
    synced: () => sources.source.synced(),
    async stop() {
      controller.stop();
      await sources.stop();
      await thread?.close();
    },
  };
}
