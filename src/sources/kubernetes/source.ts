// The Kubernetes source: one supervised informer per resource the builder reads (WebSocketRoutes, Services,
// EndpointSlices that belong to a Service, Secrets of the types routes can use) across all namespaces, or one
// per resource and listed namespace (the API has no multi-namespace list: a Role per namespace grants exactly
// those paths). Informer callbacks only signal; current() hands out the cached, trimmed objects.
import type { Logger } from 'pino';
import { serviceNameLabel } from '../../api/labels.ts';
import type { BuildInput, EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../../dag/input.ts';
import type { ObjectChange, Source, SourceChange } from '../source.ts';
import type { Clock } from '../../util/clock.ts';
import { InformerSupervisor, type CacheChange, type InformerState, type InformerTimings, type RestartReason } from './informer.ts';
import type { KubeClient, RawObject, WatchedResource } from '../../kube/kube-client.ts';

/**
 * Secret types no route can reference (wsgate reads kubernetes.io/tls and Opaque-style key material). Left out
 * on the server so the cache never holds them: Helm release Secrets alone are often megabytes each, and
 * service-account and registry credentials have no business in an ingress's memory.
 */
export const unusedSecretTypes = ['helm.sh/release.v1', 'kubernetes.io/service-account-token', 'kubernetes.io/dockerconfigjson', 'kubernetes.io/dockercfg', 'bootstrap.kubernetes.io/token'] as const;
export const secretFieldSelector = unusedSecretTypes.map((t) => `type!=${t}`).join(',');

export interface KubernetesSourceOptions {
  readonly client: KubeClient;
  /** Empty or unset: every namespace (cluster-wide list/watch); otherwise only these. */
  readonly watchNamespaces?: readonly string[];
  readonly log: Logger;
  /** Called on each unplanned informer restart: wire to wsgate_informer_restarts_total{resource}. */
  readonly onRestart: (resource: WatchedResource, reason: RestartReason) => void;
  readonly timings?: Partial<InformerTimings>;
  readonly random?: () => number;
  /** Retry backoff, watchdog and relist timers of every informer. */
  readonly clock?: Clock;
}

/** A route's status as last seen on the API server, for the status writer's lastTransitionTime. */
export interface ObservedRouteStatus {
  readonly conditions?: readonly { readonly type: string; readonly status: string; readonly lastTransitionTime?: string }[];
}

export class KubernetesSource implements Source {
  private readonly informers: readonly InformerSupervisor[];
  private readonly byResource: ReadonlyMap<WatchedResource, readonly InformerSupervisor[]>;
  private readonly listeners = new Set<(change: SourceChange) => void>();
  private readonly statuses = new Map<string, ObservedRouteStatus>();
  private readonly log: Logger;

  constructor(opts: KubernetesSourceOptions) {
    this.log = opts.log.child({ component: 'kubernetes-source' });
    const namespaces: readonly (string | undefined)[] = opts.watchNamespaces?.length ? [...new Set(opts.watchNamespaces)] : [undefined];
    type Extra = { labelSelector?: string; fieldSelector?: string; onRaw?: (k: string, o: RawObject | undefined) => void };
    const make = (resource: WatchedResource, extra: Extra = {}): InformerSupervisor[] =>
      namespaces.map(
        (ns) =>
          new InformerSupervisor({
            resource,
            client: opts.client,
            log: this.log,
            ...(ns ? { namespace: ns } : {}),
            ...(opts.timings ? { timings: opts.timings } : {}),
            ...(opts.random ? { random: opts.random } : {}),
            ...(opts.clock ? { clock: opts.clock } : {}),
            ...extra,
            onChange: (changes) => this.signal(resource, changes),
            onRestart: opts.onRestart,
            // The API server answers again: the others need not wait out their backoff to find out.
            onRecovered: () => {
              for (const i of this.informers) i.retrySoon();
            },
          }),
      );
    const byResource = new Map<WatchedResource, InformerSupervisor[]>([
      ['websocketroutes', make('websocketroutes', { onRaw: (k, o) => this.observeRoute(k, o) })],
      ['services', make('services')],
      // Only slices a Service owns (the EndpointSlice controller labels them); same selector for list and watch.
      ['endpointslices', make('endpointslices', { labelSelector: serviceNameLabel })],
      ['secrets', make('secrets', { fieldSelector: secretFieldSelector })],
    ]);
    this.byResource = byResource;
    this.informers = [...byResource.values()].flat();
  }

  async start(): Promise<void> {
    for (const i of this.informers) i.start();
  }

  async stop(): Promise<void> {
    for (const i of this.informers) i.stop();
  }

  /** True once every informer has listed once; stays true while they restart (the cache keeps serving). */
  synced(): boolean {
    return this.informers.every((i) => i.synced());
  }

  async whenSynced(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.whenSynced()));
  }

  /** What each informer is doing, keyed "resource" or "resource/namespace" (logs, debugging, tests). */
  informerStates(): Record<string, InformerState> {
    return Object.fromEntries(this.informers.map((i) => [i.namespace ? `${i.resource}/${i.namespace}` : i.resource, i.state]));
  }

  current(): BuildInput {
    const values = <T>(r: WatchedResource): T[] => this.byResource.get(r)!.flatMap((i) => [...i.values()]) as T[];
    return {
      routes: values<RouteObject>('websocketroutes'),
      services: values<ServiceLite>('services'),
      endpointSlices: values<EndpointSliceLite>('endpointslices'),
      secrets: values<SecretLite>('secrets'),
    };
  }

  onChange(listener: (change: SourceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The status a route has on the server now ("ns/name"), as last seen by the informer. */
  observedStatus(key: string): ObservedRouteStatus | undefined {
    return this.statuses.get(key);
  }

  private observeRoute(key: string, obj: RawObject | undefined): void {
    const status = obj?.['status'] as ObservedRouteStatus | undefined;
    if (status === undefined) this.statuses.delete(key);
    else this.statuses.set(key, status);
  }

  private signal(kind: WatchedResource, changes: readonly CacheChange[]): void {
    const change: SourceChange = { objects: changes.map((c): ObjectChange => ({ kind, ...c })) };
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (err) {
        this.log.error({ err }, 'change listener threw');
      }
    }
  }
}
