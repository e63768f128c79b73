// Chooses and assembles the source of objects for the configured mode. In Kubernetes mode that is the
// informers, plus the leader elector and the status writer that publish the builder's route statuses.
import { randomBytes } from 'node:crypto';
import type { SpecValidator } from '../api/validate.ts';
import type { Config } from '../config/config.ts';
import type { RoutingApiStatuses } from '../dag/routing-apis.ts';
import type { RouteStatus } from '../model/snapshot.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import type { Clock } from '../util/clock.ts';
import { FileSource } from './file/file-source.ts';
import type { RouteLoader } from './file/route-loader.ts';
import type { InformerTimings } from './kubernetes/informer.ts';
import type { Source } from './source.ts';

export interface SourceParts {
  readonly source: Source;
  /** Resolves when the source has its first full state (the first build waits for it). */
  whenSynced(): Promise<void>;
  /** Route statuses of each build (written by the leader in Kubernetes mode). */
  onStatuses(statuses: readonly RouteStatus[]): void;
  /** Gateway API and Ingress statuses of each build that had those APIs (Kubernetes mode only). */
  onRoutingApiStatuses(statuses: RoutingApiStatuses): void;
  /** Is this replica the one writing status? (always false in standalone mode) */
  isLeader(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function createSource(config: Config, deps: { validate: SpecValidator; log: Logger; metrics: Metrics; clock: Clock; loader?: RouteLoader }): Promise<SourceParts> {
  if (config.mode === 'standalone') {
    const source = new FileSource({ path: config.configPath, validate: deps.validate, log: deps.log, ...(deps.loader ? { loader: deps.loader } : {}) });
    return {
      source,
      whenSynced: () => Promise.resolve(),
      onStatuses: () => {},
      onRoutingApiStatuses: () => {},
      isLeader: () => false,
      start: () => source.start(),
      stop: () => source.stop(),
    };
  }
  // Loaded only in Kubernetes mode: standalone processes start without client-node.
  const { KubeClient, KubernetesSource, LeaderElector, RequestPacer, RoutingApiStatusWriter, StatusWriter, defaultInformerTimings } = await import('./kubernetes/index.ts');
  const client = new KubeClient({
    kubeconfig: config.kubeconfig ? { kind: 'file', path: config.kubeconfig } : { kind: 'in-cluster' },
    writes: new RequestPacer({ qps: config.kubeApiQps, burst: config.kubeApiBurst, clock: deps.clock }),
  });
  const source = new KubernetesSource({
    client,
    log: deps.log,
    watchNamespaces: config.watchNamespaces,
    onRestart: (resource) => deps.metrics.informerRestartsTotal.inc({ resource }),
    timings: informerTimings(config.informerWatchdogMs, defaultInformerTimings.watchdogMs),
    routingApis: {
      gatewayApi: config.watchGatewayApi,
      ingress: config.watchIngress,
      ...(config.publishService ? { publishService: config.publishService } : {}),
    },
  });
  const onRefused = (kind: string, status: number) => deps.metrics.statusWritesRefusedTotal.inc({ kind, code: String(status) });
  const writer = new StatusWriter({ client, log: deps.log, clock: deps.clock, onRefused, observed: (k) => source.observedStatus(k) });
  const routingWriter = new RoutingApiStatusWriter({ client, log: deps.log, clock: deps.clock, onRefused, instance: config.podName, observed: (kind, key) => source.observedRoutingStatus(statusKinds[kind], key) });
  const elector = config.leaderElection
    ? new LeaderElector({
        client,
        namespace: config.leaseNamespace,
        name: config.leaseName,
        // Two processes of one pod (a restart racing the old one) must not share an identity.
        identity: `${config.podName}_${randomBytes(4).toString('hex')}`,
        log: deps.log,
        clock: deps.clock,
        leaseDurationMs: config.leaseDurationMs,
        renewDeadlineMs: config.leaseRenewDeadlineMs,
        retryPeriodMs: config.leaseRetryPeriodMs,
        onStartedLeading: () => {
          writer.setLeading(true);
          routingWriter.setLeading(true);
        },
        onStoppedLeading: () => {
          writer.setLeading(false);
          routingWriter.setLeading(false);
        },
      })
    : undefined;
  return {
    source,
    whenSynced: () => source.whenSynced(),
    onStatuses: (s) => writer.update(s),
    onRoutingApiStatuses: (s) => routingWriter.update(s),
    isLeader: () => elector?.isLeader() ?? false,
    async start() {
      await source.start();
      if (elector) elector.start();
      else {
        writer.setLeading(true);
        routingWriter.setLeading(true);
      }
    },
    async stop() {
      await elector?.stop();
      writer.stop();
      routingWriter.stop();
      await source.stop();
      client.close();
    },
  };
}

/** The watchdog from --informer-watchdog-seconds; a server-side watch timeout that ends before it fires. */
function informerTimings(watchdogMs: number, defaultWatchdogMs: number): Partial<InformerTimings> {
  if (watchdogMs >= defaultWatchdogMs) return { watchdogMs };
  const s = watchdogMs / 1000;
  return { watchdogMs, watchTimeoutSeconds: [Math.max(1, Math.floor(s * 0.7)), Math.max(2, Math.floor(s * 0.9))] };
}

/** The status writer names kinds as the API does; the source keys its informers by resource. */
const statusKinds = { GatewayClass: 'gatewayclasses', Gateway: 'gateways', HTTPRoute: 'httproutes', WebSocketPolicy: 'websocketpolicies', Ingress: 'ingresses' } as const;
