// The one place that calls @kubernetes/client-node (pinned ~1.4): parameter names and error shapes change
// between client-node majors, so nothing else sees them. Every call here is one of permissions.ts's rules.
import * as k8s from '@kubernetes/client-node';
import type { Agent, ClientRequest } from 'node:http';
import { group, plural, version, apiVersion, kind } from '../api/schema.ts';
import { policyPlural } from '../api/policy-schema.ts';
import { AgentPool } from './agent-pool.ts';
import { KubeApiError } from './api-error.ts';
import { isGetFailure, listPaged, PageTurns, type RequestAuth } from './paged-list.ts';
import type { RequestPacer } from './request-pacer.ts';

// Callers keep importing the error from the client they call.
export { KubeApiError };

/** Where the cluster credentials come from; main chooses (config is the only reader of the environment). */
export type KubeConfigInput =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'inline'; readonly yaml: string }
  | { readonly kind: 'in-cluster' }
  /** client-node's own lookup: $KUBECONFIG, ~/.kube/config, then in-cluster. */
  | { readonly kind: 'default' };

export type WatchedResource =
  | 'websocketroutes'
  | 'services'
  | 'endpointslices'
  | 'secrets'
  | 'gatewayclasses'
  | 'gateways'
  | 'httproutes'
  | 'referencegrants'
  | 'websocketpolicies'
  | 'ingresses'
  | 'ingressclasses'
  | 'namespaces';

export const gatewayApiGroup = 'gateway.networking.k8s.io';
export const gatewayApiVersion = 'v1';

/** Where each resource is served. Custom resources go through CustomObjectsApi, the others through the typed
 *  clients; `cluster`: not namespaced (no per-namespace list). */
const resourceInfo: { readonly [R in WatchedResource]: { readonly group: string; readonly version: string; readonly custom: boolean; readonly cluster?: true } } = {
  websocketroutes: { group, version, custom: true },
  websocketpolicies: { group, version, custom: true },
  gatewayclasses: { group: gatewayApiGroup, version: gatewayApiVersion, custom: true, cluster: true },
  gateways: { group: gatewayApiGroup, version: gatewayApiVersion, custom: true },
  httproutes: { group: gatewayApiGroup, version: gatewayApiVersion, custom: true },
  referencegrants: { group: gatewayApiGroup, version: gatewayApiVersion, custom: true },
  services: { group: '', version: 'v1', custom: false },
  secrets: { group: '', version: 'v1', custom: false },
  namespaces: { group: '', version: 'v1', custom: false, cluster: true },
  endpointslices: { group: 'discovery.k8s.io', version: 'v1', custom: false },
  ingresses: { group: 'networking.k8s.io', version: 'v1', custom: false },
  ingressclasses: { group: 'networking.k8s.io', version: 'v1', custom: false, cluster: true },
};

/** Is this resource cluster-scoped (one list for the cluster, whatever --watch-namespaces says)? */
export function clusterScoped(resource: WatchedResource): boolean {
  return resourceInfo[resource].cluster === true;
}

/** A plain object as the API serves it (list items are re-serialized to plain JSON too). */
export interface RawObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string; readonly resourceVersion?: string; readonly [k: string]: unknown };
  readonly [field: string]: unknown;
}

export interface ListWatchHandlers {
  /** A page of a full list (first list, or a relist after 410); `first`: the list starts again. */
  onListPage(items: readonly RawObject[], first: boolean): void;
  /** The list's last page came: what it held replaces everything known. */
  onList(): void;
  onEvent(type: 'add' | 'update' | 'delete', obj: RawObject): void;
  /** Any sign of life: a list, an event, a bookmark, a (re)connect. Feeds the watchdog. */
  onActivity(kind: 'list' | 'event' | 'bookmark' | 'connect'): void;
  onError(err: unknown): void;
}

export interface ListWatchOptions {
  readonly namespace?: string;
  readonly labelSelector?: string;
  /** Equality-based only (`type!=x`), on the fields the API server indexes for the resource. */
  readonly fieldSelector?: string;
  /** Server-side timeout for each watch request, in seconds (randomised by the caller). */
  readonly watchTimeoutSeconds: () => number;
  /** Abort a list page that has not answered by then. */
  readonly requestTimeoutMs: number;
  /** A custom resource served at another version than resourceInfo's (ReferenceGrant at v1beta1 on older
   *  Gateway API installs). */
  readonly version?: string;
}

export interface ListWatchHandle {
  /** Stops for good: aborts the in-flight list or watch, even one still waiting for response headers. */
  stop(): void;
}

export interface LeaseRecord {
  readonly resourceVersion: string;
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: string | undefined;
  readonly renewTime: string | undefined;
  readonly leaseTransitions: number;
}

export interface LeaseSpecInput {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: Date | string | undefined;
  readonly renewTime: Date | string | undefined;
  readonly leaseTransitions: number;
}

function toApiError(err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (isGetFailure(err)) return new KubeApiError(err.status, err.message, err.reason);
  if (err instanceof k8s.ApiException) {
    const body = (typeof err.body === 'string' ? safeParse(err.body) : err.body) as { reason?: string; message?: string } | undefined;
    return new KubeApiError(err.code, body?.message ?? `HTTP ${err.code}`, body?.reason, { cause: err });
  }
  const e = err as { statusCode?: number; message?: string };
  return new KubeApiError(typeof e?.statusCode === 'number' ? e.statusCode : 0, e?.message ?? String(err), undefined, { cause: err });
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** Lease times are MicroTime: six fraction digits, which Date#toISOString (three) is refused for. */
function microTime(t: Date | string | undefined): k8s.V1MicroTime | string | undefined {
  if (t === undefined || typeof t === 'string') return t;
  return new k8s.V1MicroTime(t.getTime());
}

function requestOptions(pool: AgentPool, signal: AbortSignal, contentType?: string): k8s.ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(signal);
          // Middleware runs after client-node attached its per-request agent: swap in the keep-alive one.
          const agent = pool.pooled(ctx.getAgent());
          if (agent) ctx.setAgent(agent);
          if (contentType) ctx.setHeaderParam('Content-Type', contentType);
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (ctx) => new k8s.Observable(Promise.resolve(ctx)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

/**
 * client-node's Watch with what 1.4 leaves out: `allowWatchBookmarks` and a server-side `timeoutSeconds` on
 * every request, bookmarks surfaced to the caller, keep-alive connections, and a hard abort. Watch.watch()
 * returns its controller only once headers arrive, so a watch hanging before them could not be aborted: each
 * watch's request is seen as it joins the shared agent (a per-watch view of it), and destroying that request
 * ends it at any stage without touching the other requests on the agent.
 */
class SupervisedWatch extends k8s.Watch {
  private readonly requests = new Set<ClientRequest>();
  private readonly controllers = new Set<AbortController>();
  private closed = false;

  constructor(kc: k8s.KubeConfig, pool: AgentPool, private readonly timeoutSeconds: () => number, private readonly onBookmark: () => void) {
    // A view of the KubeConfig whose fetch options carry the shared agent, seen through a per-watch view.
    const view = Object.create(kc) as k8s.KubeConfig;
    super(view);
    view.applyToFetchOptions = async (opts) => {
      const out = await kc.applyToFetchOptions(opts);
      const shared = out.agent && typeof out.agent === 'object' ? pool.pooled(out.agent as Agent) : undefined;
      if (shared) out.agent = this.tracking(shared);
      return out;
    };
  }

  private tracking(shared: Agent): Agent {
    const view = Object.create(shared) as Agent & { addRequest(req: ClientRequest, options: unknown): void };
    const addRequest = (shared as unknown as { addRequest(req: ClientRequest, options: unknown): void }).addRequest;
    view.addRequest = (req, options) => {
      if (this.closed) req.destroy();
      else {
        this.requests.add(req);
        req.once('close', () => this.requests.delete(req));
      }
      addRequest.call(shared, req, options);
    };
    return view;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.timeoutSeconds() };
    const wrapped = (phase: string, obj: unknown, watchObj?: unknown): void => {
      if (phase === 'BOOKMARK') this.onBookmark();
      callback(phase, obj, watchObj);
    };
    const controller = await super.watch(path, params, wrapped, done);
    if (this.closed) controller.abort();
    else this.controllers.add(controller);
    return controller;
  }

  close(): void {
    this.closed = true;
    for (const c of this.controllers) c.abort();
    for (const r of this.requests) r.destroy();
    this.controllers.clear();
    this.requests.clear();
  }
}

export class KubeClient {
  private readonly kc: k8s.KubeConfig;
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly coordination: k8s.CoordinationV1Api;
  private readonly networking: k8s.NetworkingV1Api;
  private readonly requestTimeoutMs: number;
  private readonly pool = new AgentPool();
  private readonly pageTurns = new PageTurns();

  /** Paces the leader's writes (status, Events); none: unpaced. */
  private readonly writes: RequestPacer | undefined;

  constructor(opts: { kubeconfig: KubeConfigInput; requestTimeoutMs?: number; writes?: RequestPacer }) {
    this.writes = opts.writes;
    this.kc = new k8s.KubeConfig();
    const input = opts.kubeconfig;
    if (input.kind === 'file') this.kc.loadFromFile(input.path);
    else if (input.kind === 'inline') this.kc.loadFromString(input.yaml);
    else if (input.kind === 'in-cluster') this.kc.loadFromCluster();
    else this.kc.loadFromDefault();
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.custom = this.kc.makeApiClient(k8s.CustomObjectsApi);
    this.coordination = this.kc.makeApiClient(k8s.CoordinationV1Api);
    this.networking = this.kc.makeApiClient(k8s.NetworkingV1Api);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  }

  /** The namespace of the current kubeconfig context (in-cluster: the pod's), for the Lease. */
  currentNamespace(): string | undefined {
    return this.kc.getContextObject(this.kc.getCurrentContext())?.namespace;
  }

  private watchPath(resource: WatchedResource, o: ListWatchOptions): string {
    const info = resourceInfo[resource];
    const gv = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${(info.custom && o.version) || info.version}`;
    const ns = info.cluster ? undefined : o.namespace;
    return ns ? `${gv}/namespaces/${encodeURIComponent(ns)}/${resource}` : `${gv}/${resource}`;
  }

  /**
   * The resources a group serves at a version, by plural; undefined when the server does not serve that group
   * version at all (its CRDs are not installed). Discovery is readable by every authenticated client
   * (the system:discovery ClusterRole), so it needs no rule of its own.
   */
  async servedResources(apiGroup: string, apiVersion: string): Promise<ReadonlySet<string> | undefined> {
    try {
      const list = await this.custom.getAPIResources({ group: apiGroup, version: apiVersion }, this.timeoutOptions());
      return new Set((list.resources ?? []).map((r) => r.name));
    } catch (err) {
      const e = toApiError(err);
      if (e.status === 404) return undefined;
      throw e;
    }
  }

  /**
   * List, then watch from the list's resourceVersion; a watch the server ends is resumed from the last version
   * seen (events and bookmarks), and a 410 (the version was compacted away, or a continue token expired) lists
   * again, as client-node's ListWatch does. Unlike it, the list is read in pages of plain JSON (paged-list.ts)
   * and handed on page by page, and no second cache of every object is kept here. Any other failure is
   * reported and ends it: restarting is the caller's job.
   */
  listWatch(resource: WatchedResource, o: ListWatchOptions, h: ListWatchHandlers): ListWatchHandle {
    const abort = new AbortController();
    const watch = new SupervisedWatch(this.kc, this.pool, o.watchTimeoutSeconds, () => h.onActivity('bookmark'));
    const path = this.watchPath(resource, o);
    const selectors: Record<string, string> = {
      ...(o.labelSelector !== undefined ? { labelSelector: o.labelSelector } : {}),
      ...(o.fieldSelector !== undefined ? { fieldSelector: o.fieldSelector } : {}),
    };
    const list = async (server: string): Promise<string> => {
      const url = new URL(server + path);
      for (const [k, v] of Object.entries(selectors)) url.searchParams.set(k, v);
      let first = true;
      return listPaged(url, this.auth, abort.signal, o.requestTimeoutMs, this.pageTurns, (items) => {
        if (abort.signal.aborted) return;
        h.onListPage(items, first);
        // Each page is a sign of life: a list of many pages is not a silent connection.
        h.onActivity('list');
        first = false;
      });
    };
    const run = async (): Promise<void> => {
      const cluster = this.kc.getCurrentCluster();
      if (!cluster) throw new Error('no current cluster in the kubeconfig');
      let rv = '';
      while (!abort.signal.aborted) {
        h.onActivity('connect');
        if (rv === '') {
          try {
            rv = await list(cluster.server);
          } catch (err) {
            if (isGetFailure(err) && err.status === 410 && !abort.signal.aborted) continue;
            throw err;
          }
          if (abort.signal.aborted) return;
          h.onList();
        }
        const ended = await new Promise<unknown>((done) => {
          void watch.watch(path, { ...selectors, resourceVersion: rv }, (phase, obj) => {
            if (abort.signal.aborted) return;
            // An ERROR event (410 Expired, or another Status) ends the watch's use: list again once it closes.
            if (phase === 'ERROR') {
              rv = '';
              return;
            }
            const raw = obj as RawObject;
            rv = raw.metadata?.resourceVersion || rv;
            const type = phase === 'ADDED' ? 'add' : phase === 'MODIFIED' ? 'update' : phase === 'DELETED' ? 'delete' : undefined;
            if (type === undefined) return;
            h.onActivity('event');
            h.onEvent(type, raw);
          }, done);
        });
        if (abort.signal.aborted) return;
        if (ended) {
          if ((ended as { statusCode?: number }).statusCode !== 410) throw ended;
          rv = '';
        }
      }
    };
    run().catch((err: unknown) => {
      if (!abort.signal.aborted) h.onError(toApiError(err));
    });
    return {
      stop: () => {
        abort.abort();
        watch.close();
      },
    };
  }

  /** The agent (the shared keep-alive one) and headers a plain request needs: the kubeconfig's TLS material and
   *  credentials, as client-node applies them to its own watch requests. */
  private readonly auth: RequestAuth = async () => {
    const init = await this.kc.applyToFetchOptions({});
    const headers: Record<string, string> = {};
    (init.headers as unknown as { forEach(f: (v: string, k: string) => void): void } | undefined)?.forEach((v, k) => (headers[k] = v));
    return { agent: this.pool.pooled(init.agent as Agent | undefined), headers };
  };

  async getLease(namespace: string, name: string): Promise<LeaseRecord | undefined> {
    try {
      const lease = await this.coordination.readNamespacedLease({ name, namespace }, this.timeoutOptions());
      return leaseRecord(lease);
    } catch (err) {
      const e = toApiError(err);
      if (e.status === 404) return undefined;
      throw e;
    }
  }

  /** Fails with status 409 when someone created it first. */
  async createLease(namespace: string, name: string, spec: LeaseSpecInput): Promise<LeaseRecord> {
    try {
      const body: k8s.V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: leaseSpec(spec) };
      return leaseRecord(await this.coordination.createNamespacedLease({ namespace, body }, this.timeoutOptions()));
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** Optimistic concurrency: fails with status 409 when the Lease changed since `resourceVersion`. */
  async updateLease(namespace: string, name: string, resourceVersion: string, spec: LeaseSpecInput): Promise<LeaseRecord> {
    try {
      const body: k8s.V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, resourceVersion }, spec: leaseSpec(spec) };
      return leaseRecord(await this.coordination.replaceNamespacedLease({ name, namespace, body }, this.timeoutOptions()));
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** Server-side apply of a WebSocketRoute's status (the /status subresource only). */
  async applyRouteStatus(namespace: string, name: string, status: Record<string, unknown>, fieldManager: string): Promise<void> {
    const body = { apiVersion, kind, metadata: { name, namespace }, status };
    await this.writes?.take();
    try {
      await this.custom.patchNamespacedCustomObjectStatus(
        { group, version, plural, namespace, name, body, fieldManager, force: true },
        requestOptions(this.pool, AbortSignal.timeout(this.requestTimeoutMs), k8s.PatchStrategy.ServerSideApply),
      );
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** Closes the idle keep-alive connections (open watches close as their informers stop). */
  close(): void {
    this.pool.close();
  }

  private timeoutOptions(): k8s.ConfigurationOptions {
    return requestOptions(this.pool, AbortSignal.timeout(this.requestTimeoutMs));
  }

  // --- The leader's writes for the Gateway API and Ingress objects (src/status/routing-api-status-writer.ts) ---
  //
  // JSON merge patch (RFC 7386) of the /status subresource, not server-side apply: the writer sends the whole
  // value of every field it writes, already merged with what the server has (the atomic status.parents and
  // status.ancestors lists keep other controllers' entries, a Gateway keeps foreign condition types), so
  // "replace these fields" is the intent. An apply would make wsgate's field manager a co-owner of every value
  // in the body, other controllers' Gateway conditions included, and an applied field is removed only when no
  // manager owns it any more: a condition another controller stops applying would be kept alive by wsgate. An
  // update (a merge patch) takes ownership only of the values it changes.

  /** Merge patch of status: GatewayClass (cluster-scoped: namespace undefined), Gateway, HTTPRoute, WebSocketPolicy, Ingress. */
  async patchRoutingStatus(kind: RoutingStatusKind, namespace: string | undefined, name: string, status: Record<string, unknown>): Promise<void> {
    const body = { status };
    await this.writes?.take();
    const opts = requestOptions(this.pool, AbortSignal.timeout(this.requestTimeoutMs), k8s.PatchStrategy.MergePatch);
    try {
      if (kind === 'Ingress') {
        await this.networking.patchNamespacedIngressStatus({ name, namespace: namespace ?? 'default', body }, opts);
        return;
      }
      const { group: g, version: v, plural: p } = routingStatusResources[kind];
      if (namespace === undefined) await this.custom.patchClusterCustomObjectStatus({ group: g, version: v, plural: p, name, body }, opts);
      else await this.custom.patchNamespacedCustomObjectStatus({ group: g, version: v, plural: p, namespace, name, body }, opts);
    } catch (err) {
      throw toApiError(err);
    }
  }

  /** Creates a core v1 Event; fails with status 409 when one of that name exists (the caller names them). */
  async createEvent(event: EventInput): Promise<void> {
    await this.writes?.take();
    const at = new Date(event.timestamp);
    const body: k8s.CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: event.name, namespace: event.involvedObject.namespace },
      involvedObject: event.involvedObject,
      type: event.type,
      reason: event.reason,
      message: event.message,
      source: { component: event.reportingComponent },
      reportingComponent: event.reportingComponent,
      ...(event.reportingInstance === undefined ? {} : { reportingInstance: event.reportingInstance }),
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    try {
      await this.core.createNamespacedEvent({ namespace: event.involvedObject.namespace, body }, this.timeoutOptions());
    } catch (err) {
      throw toApiError(err);
    }
  }
}

export type RoutingStatusKind = 'GatewayClass' | 'Gateway' | 'HTTPRoute' | 'WebSocketPolicy' | 'Ingress';

const routingStatusResources: Record<Exclude<RoutingStatusKind, 'Ingress'>, { group: string; version: string; plural: string }> = {
  GatewayClass: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gatewayclasses' },
  Gateway: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways' },
  HTTPRoute: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' },
  WebSocketPolicy: { group, version, plural: policyPlural },
};

export interface EventInput {
  readonly name: string;
  readonly involvedObject: { readonly apiVersion: string; readonly kind: string; readonly namespace: string; readonly name: string; readonly uid?: string };
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
  /** source.component and reportingComponent. */
  readonly reportingComponent: string;
  readonly reportingInstance?: string;
  /** Wall time of the report (firstTimestamp, lastTimestamp). */
  readonly timestamp: Date;
}

function leaseSpec(s: LeaseSpecInput): k8s.V1LeaseSpec {
  const acquireTime = microTime(s.acquireTime);
  const renewTime = microTime(s.renewTime);
  return {
    holderIdentity: s.holderIdentity,
    leaseDurationSeconds: s.leaseDurationSeconds,
    leaseTransitions: s.leaseTransitions,
    // Strings read back from the server keep their six digits; the generated types call them V1MicroTime.
    ...(acquireTime !== undefined ? { acquireTime: acquireTime as k8s.V1MicroTime } : {}),
    ...(renewTime !== undefined ? { renewTime: renewTime as k8s.V1MicroTime } : {}),
  };
}

function leaseRecord(l: k8s.V1Lease): LeaseRecord {
  const t = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : v instanceof Date ? new k8s.V1MicroTime(v.getTime()).toISOString() : String(v));
  return {
    resourceVersion: l.metadata?.resourceVersion ?? '',
    holderIdentity: l.spec?.holderIdentity ?? '',
    leaseDurationSeconds: l.spec?.leaseDurationSeconds ?? 0,
    acquireTime: t(l.spec?.acquireTime),
    renewTime: t(l.spec?.renewTime),
    leaseTransitions: l.spec?.leaseTransitions ?? 0,
  };
}
