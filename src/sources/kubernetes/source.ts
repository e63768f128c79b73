// The Kubernetes source: one supervised informer per resource the builder reads (WebSocketRoutes, Services,
// EndpointSlices that belong to a Service, Secrets of the types routes can use; with the Gateway API and Ingress
// on, their kinds, WebSocketPolicies, Namespaces and the published Service) across all namespaces, or one per
// resource and listed namespace (the API has no multi-namespace list: a Role per namespace grants exactly those
// paths); cluster-scoped kinds have one. Informer callbacks only signal; current() hands out the cached, trimmed
// objects.
import type { Logger } from 'pino';
import { group as wsgateGroup, version as wsgateVersion } from '../../api/schema.ts';
import { serviceNameLabel } from '../../api/labels.ts';
import type { BuildInput, EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../../dag/input.ts';
import { routingApisInput, type ObjectChange, type ObjectKind, type Source, type SourceChange } from '../source.ts';
import { systemClock, type Clock } from '../../util/clock.ts';
import { Backoff, defaultBackoffPolicy } from './backoff.ts';
import { InformerSupervisor, type CacheChange, type InformerState, type InformerTimings, type RestartReason } from './informer.ts';
import { publishedServiceLite, type Lite } from './lite.ts';
import { clusterScoped, gatewayApiGroup, gatewayApiVersion, type KubeClient, type RawObject, type WatchedResource } from '../../kube/kube-client.ts';

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
  /** The standard routing APIs; absent: both off. */
  readonly routingApis?: RoutingApisOptions;
}

export interface RoutingApisOptions {
  /** Serve the Gateway API when its CRDs are installed (discovered at start). */
  readonly gatewayApi: boolean;
  readonly ingress: boolean;
  /** The Service wsgate runs behind: its addresses go to Gateway and Ingress statuses. */
  readonly publishService?: { readonly namespace: string; readonly name: string };
}

/** The routing-API kinds whose status the leader writes (and whose server-side status is kept for it). */
export type StatusKind = 'gatewayclasses' | 'gateways' | 'httproutes' | 'websocketpolicies' | 'ingresses';
const statusKinds: readonly ObjectKind[] = ['gatewayclasses', 'gateways', 'httproutes', 'websocketpolicies', 'ingresses'];

/** An object's `status` as last seen on the API server (the status writer merges into it). */
export type ObservedObjectStatus = Readonly<Record<string, unknown>>;

/** Which routing APIs are on once discovery has answered. */
export interface RoutingApisState {
  readonly gatewayApi: boolean;
  readonly ingress: boolean;
  readonly policies: boolean;
}

/** A route's status as last seen on the API server, for the status writer's lastTransitionTime. */
export interface ObservedRouteStatus {
  readonly conditions?: readonly { readonly type: string; readonly status: string; readonly lastTransitionTime?: string }[];
}

export class KubernetesSource implements Source {
  private readonly opts: KubernetesSourceOptions;
  private readonly namespaces: readonly (string | undefined)[];
  private readonly informers: InformerSupervisor[] = [];
  /** Informers the first build does not wait for. */
  private readonly optional = new Set<InformerSupervisor>();
  private readonly byKind = new Map<ObjectKind, InformerSupervisor[]>();
  private readonly listeners = new Set<(change: SourceChange) => void>();
  private readonly statuses = new Map<string, ObservedRouteStatus>();
  /** Kind → informer key → status, for the routing-API kinds the leader writes. */
  private readonly routingStatuses = new Map<ObjectKind, Map<string, ObservedObjectStatus>>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private routing: RoutingApisState | undefined;
  private discovered: Promise<void> | undefined;
  private discoveryTimer: ReturnType<Clock['setTimeout']> | undefined;
  private stopped = false;

  constructor(opts: KubernetesSourceOptions) {
    this.opts = opts;
    this.log = opts.log.child({ component: 'kubernetes-source' });
    this.clock = opts.clock ?? systemClock();
    this.namespaces = opts.watchNamespaces?.length ? [...new Set(opts.watchNamespaces)] : [undefined];
    this.add('websocketroutes', 'websocketroutes', { onRaw: (k, o) => this.observeRoute(k, o) });
    this.add('services', 'services');
    // Only slices a Service owns (the EndpointSlice controller labels them); same selector for list and watch.
    this.add('endpointslices', 'endpointslices', { labelSelector: serviceNameLabel });
    this.add('secrets', 'secrets', { fieldSelector: secretFieldSelector });
  }

  private add(kind: ObjectKind, resource: WatchedResource, extra: InformerExtra = {}): void {
    const o = this.opts;
    const namespaces = extra.namespace !== undefined ? [extra.namespace] : clusterScoped(resource) ? [undefined] : this.namespaces;
    const made = namespaces.map(
      (ns) =>
        new InformerSupervisor({
          resource,
          client: o.client,
          log: this.log,
          ...(ns ? { namespace: ns } : {}),
          ...(o.timings ? { timings: o.timings } : {}),
          ...(o.random ? { random: o.random } : {}),
          ...(o.clock ? { clock: o.clock } : {}),
          ...(extra.labelSelector !== undefined ? { labelSelector: extra.labelSelector } : {}),
          ...(extra.fieldSelector !== undefined ? { fieldSelector: extra.fieldSelector } : {}),
          ...(extra.version !== undefined ? { version: extra.version } : {}),
          ...(extra.trim ? { trim: extra.trim } : {}),
          ...(extra.onRaw ? { onRaw: extra.onRaw } : {}),
          onChange: (changes) => this.signal(kind, changes),
          onRestart: o.onRestart,
          // The API server answers again: the others need not wait out their backoff to find out.
          onRecovered: () => {
            for (const i of this.informers) i.retrySoon();
          },
        }),
    );
    this.byKind.set(kind, made);
    this.informers.push(...made);
    if (extra.optional) for (const i of made) this.optional.add(i);
  }

  async start(): Promise<void> {
    for (const i of this.informers) i.start();
    this.discovered = this.discoverRoutingApis();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.discoveryTimer);
    for (const i of this.informers) i.stop();
  }

  /**
   * Which routing APIs to watch: those switched on whose group the server serves. A Gateway API whose CRDs are
   * not installed is off, said once in the log, and WebSocketRoutes are served as ever; wsgate's own
   * WebSocketPolicy CRD missing leaves policies empty. A discovery that fails (not a 404) is retried with the
   * informers' backoff: the first build waits for it, so the routing APIs are never half-known.
   */
  private async discoverRoutingApis(): Promise<void> {
    const want = this.opts.routingApis;
    if (!want || (!want.gatewayApi && !want.ingress)) {
      this.routing = { gatewayApi: false, ingress: false, policies: false };
      return;
    }
    const backoff = new Backoff(this.opts.timings?.backoff ?? defaultBackoffPolicy, this.opts.random ?? Math.random);
    for (;;) {
      if (this.stopped) return;
      try {
        const gateway = want.gatewayApi ? await this.opts.client.servedResources(gatewayApiGroup, gatewayApiVersion) : undefined;
        const wsgate = await this.opts.client.servedResources(wsgateGroup, wsgateVersion);
        const grantVersion = gateway?.has('referencegrants') ? gatewayApiVersion : gateway && (await this.opts.client.servedResources(gatewayApiGroup, 'v1beta1'))?.has('referencegrants') ? 'v1beta1' : undefined;
        if (this.stopped) return;
        this.startRoutingInformers(want, gateway, wsgate?.has('websocketpolicies') === true, grantVersion);
        return;
      } catch (err) {
        const delay = backoff.next(this.clock.now());
        this.log.warn({ err, retryInMs: delay }, 'API discovery for the Gateway API and WebSocketPolicy failed; retrying');
        await new Promise<void>((resolve) => (this.discoveryTimer = this.clock.setTimeout(resolve, delay)));
      }
    }
  }

  private startRoutingInformers(want: RoutingApisOptions, gateway: ReadonlySet<string> | undefined, policies: boolean, grantVersion: string | undefined): void {
    const gatewayApi = want.gatewayApi && gateway !== undefined && ['gatewayclasses', 'gateways', 'httproutes'].every((r) => gateway.has(r));
    if (want.gatewayApi && !gatewayApi) {
      this.log.warn({ group: `${gatewayApiGroup}/${gatewayApiVersion}` }, 'Gateway API CRDs are not installed: the Gateway API is off (WebSocketRoutes and Ingresses are served); install them and restart to serve it');
    }
    if (!policies) this.log.warn({ group: `${wsgateGroup}/${wsgateVersion}` }, 'the WebSocketPolicy CRD is not installed: no WebSocketPolicy applies');
    const before = this.informers.length;
    const observe = (kind: ObjectKind) => (k: string, o: RawObject | undefined) => this.observeRouting(kind, k, o);
    if (gatewayApi) {
      this.add('gatewayclasses', 'gatewayclasses', { onRaw: observe('gatewayclasses') });
      this.add('gateways', 'gateways', { onRaw: observe('gateways') });
      this.add('httproutes', 'httproutes', { onRaw: observe('httproutes') });
      if (grantVersion) this.add('referencegrants', 'referencegrants', { version: grantVersion });
      this.add('namespaces', 'namespaces');
    }
    if (want.ingress) {
      this.add('ingresses', 'ingresses', { onRaw: observe('ingresses') });
      this.add('ingressclasses', 'ingressclasses');
    }
    if (policies) this.add('websocketpolicies', 'websocketpolicies', { onRaw: observe('websocketpolicies') });
    const p = want.publishService;
    // Routes are served without it: a Service that cannot be read (a namespace the RBAC does not cover) leaves
    // Gateways without an address (Programmed=False), not the whole table unbuilt.
    if (p) this.add('publishedservices', 'services', { namespace: p.namespace, fieldSelector: `metadata.name=${p.name}`, trim: publishedServiceLite, optional: true });
    this.routing = { gatewayApi, ingress: want.ingress, policies };
    for (const i of this.informers.slice(before)) i.start();
    // The first build waits for these lists; later builds see them as they change.
    this.signalAll();
  }

  /** Which routing APIs are watched; undefined until discovery has answered. */
  routingApis(): RoutingApisState | undefined {
    return this.routing;
  }

  /** True once discovery answered and every informer has listed once; stays true while they restart. */
  synced(): boolean {
    return this.routing !== undefined && this.informers.every((i) => this.optional.has(i) || i.synced());
  }

  async whenSynced(): Promise<void> {
    await this.discovered;
    await Promise.all(this.informers.filter((i) => !this.optional.has(i)).map((i) => i.whenSynced()));
  }

  /** What each informer is doing, keyed "resource" or "resource/namespace" (logs, debugging, tests). */
  informerStates(): Record<string, InformerState> {
    return Object.fromEntries(
      [...this.byKind].flatMap(([kind, is]) => is.map((i) => [kind === 'publishedservices' ? kind : i.namespace ? `${i.resource}/${i.namespace}` : i.resource, i.state])),
    );
  }

  current(): BuildInput {
    const values = <T>(k: ObjectKind): T[] => (this.byKind.get(k) ?? []).flatMap((i) => [...i.values()]) as T[];
    const base: BuildInput = {
      routes: values<RouteObject>('websocketroutes'),
      services: values<ServiceLite>('services'),
      endpointSlices: values<EndpointSliceLite>('endpointslices'),
      secrets: values<SecretLite>('secrets'),
    };
    const routingApis = routingApisInput(this.routing, values);
    if (!routingApis) return base;
    return { ...base, routingApis };
  }

  *keyedObjects(): Iterable<Pick<ObjectChange, 'kind' | 'key' | 'after'>> {
    for (const [kind, is] of this.byKind) for (const i of is) for (const [key, after] of i.entries()) yield { kind, key, after };
  }

  onChange(listener: (change: SourceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The status a route has on the server now ("ns/name"), as last seen by the informer. */
  observedStatus(key: string): ObservedRouteStatus | undefined {
    return this.statuses.get(key);
  }

  /**
   * The status a GatewayClass, Gateway, HTTPRoute, WebSocketPolicy or Ingress has on the server now, as last
   * seen by its informer: key "namespace/name", or the name of a GatewayClass.
   */
  observedRoutingStatus(kind: StatusKind, key: string): ObservedObjectStatus | undefined {
    return this.routingStatuses.get(kind)?.get(key.includes('/') ? key : `/${key}`);
  }

  private observeRoute(key: string, obj: RawObject | undefined): void {
    const status = obj?.['status'] as ObservedRouteStatus | undefined;
    if (status === undefined) this.statuses.delete(key);
    else this.statuses.set(key, status);
  }

  private observeRouting(kind: ObjectKind, key: string, obj: RawObject | undefined): void {
    if (!statusKinds.includes(kind)) return;
    let m = this.routingStatuses.get(kind);
    if (!m) this.routingStatuses.set(kind, (m = new Map()));
    const status = obj?.['status'] as ObservedObjectStatus | undefined;
    if (status === undefined) m.delete(key);
    else m.set(key, status);
  }

  private emit(change: SourceChange): void {
    for (const l of [...this.listeners]) {
      try {
        l(change);
      } catch (err) {
        this.log.error({ err }, 'change listener threw');
      }
    }
  }

  private signalAll(): void {
    this.emit({ all: true });
  }

  private signal(kind: ObjectKind, changes: readonly CacheChange[]): void {
    this.emit({ objects: changes.map((c): ObjectChange => ({ kind, ...c })) });
  }
}

interface InformerExtra {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly version?: string;
  /** One namespace whatever --watch-namespaces says (the published Service). */
  readonly namespace?: string;
  /** Not waited for before the first build. */
  readonly optional?: boolean;
  readonly trim?: (o: RawObject) => Lite;
  readonly onRaw?: (k: string, o: RawObject | undefined) => void;
}
