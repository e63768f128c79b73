// The leader's writes for the Gateway API and Ingress objects: GatewayClass and Gateway status, HTTPRoute
// status.parents and WebSocketPolicy status.ancestors (merged into what the server has:
// gateway-api-status.ts), Ingress status.loadBalancer, and one Warning Event per Ingress warning. All go through
// one KeyedWriteQueue, so the concurrency bound covers them together: only while leading, a value equal to the
// last one written skipped, failed writes retried on the clock with backoff and refused ones held until they
// change (keyed-write-queue.ts), everything rewritten on winning leadership.
//
// Events are named from the Ingress uid and the warning text, so a warning is reported once: not again on the
// next build (the queue skips it), not again after leadership moves or the process restarts while the Event
// still exists (the create answers 409 AlreadyExists; Events live for the API server's --event-ttl, 1 h by
// default), and within this process not again at all while the Ingress exists.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { gatewayControllerName, type GatewayClassStatus, type GatewayStatus, type PolicyAncestorStatus, type RouteParentStatus } from '../dag/gateway/types.ts';
import { ingressControllerName, ingressWarningReason, type IngressStatus } from '../dag/ingress.ts';
import type { RoutingApiStatuses } from '../dag/routing-apis.ts';
import { KubeApiError, type KubeClient, type RoutingStatusKind } from '../kube/kube-client.ts';
import { gatewayClassStatusBody, gatewayStatusBody, hasEntriesOf, httpRouteStatusBody, policyStatusBody } from './gateway-api-status.ts';
import { QueuedStatusWriter, type StatusWriterQueueOptions } from './keyed-write-queue.ts';

/** reportingComponent (and source.component) of the Events. */
export const ingressEventComponent = ingressControllerName;

/** The controllers whose entries in status.parents and status.ancestors are wsgate's. */
const ourControllers = [gatewayControllerName, ingressControllerName];

/** The events.k8s.io/v1 limit on a note; core v1 Events are held to it too, so both APIs show the same text. */
const maxEventMessage = 1024;

export interface RoutingApiStatusWriterOptions extends StatusWriterQueueOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /**
   * The status an object has on the server (its informer's copy), by kind and key: "name" for a GatewayClass,
   * "namespace/name" otherwise. Other controllers' entries and the lastTransitionTime of unchanged conditions
   * come from it. Without it, wsgate's last write stands in.
   */
  readonly observed?: (kind: RoutingStatusKind, key: string) => unknown;
  /** Parallel writes, Events included (default defaultStatusConcurrency). */
  readonly concurrency?: number;
  /** Wall time, for lastTransitionTime and Event timestamps (default: the system's). */
  readonly now?: () => Date;
  /** reportingInstance of the Events: this replica (the leader election identity). */
  readonly instance?: string;
}

interface IngressEvent {
  readonly kind: 'Event';
  readonly name: string;
  readonly ingress: { readonly namespace: string; readonly name: string; readonly uid?: string };
  readonly reason: string;
  readonly message: string;
}

/** What one queue key writes. An HTTPRoute or policy with no entries left withdraws wsgate's. */
type Desired =
  | { readonly kind: 'GatewayClass'; readonly conditions: GatewayClassStatus['conditions'] }
  | { readonly kind: 'Gateway'; readonly status: GatewayStatus }
  | { readonly kind: 'HTTPRoute'; readonly parents: readonly RouteParentStatus[] }
  | { readonly kind: 'WebSocketPolicy'; readonly ancestors: readonly PolicyAncestorStatus[] }
  | { readonly kind: 'Ingress'; readonly loadBalancer: IngressStatus['loadBalancer'] }
  | IngressEvent;

/** metav1.Time: RFC 3339 in whole seconds. */
function metaTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const nsName = (o: { namespace: string; name: string }) => `${o.namespace}/${o.name}`;

/** A DNS subdomain, stable for one warning on one Ingress: <ingress>.<hash>. */
function eventName(ing: IngressStatus, warning: string): string {
  const hash = createHash('sha256').update(`${ing.uid ?? nsName(ing)}\n${warning}`).digest('hex').slice(0, 16);
  return `${ing.name.slice(0, 253 - 17).replace(/\.+$/, '')}.${hash}`;
}

export class RoutingApiStatusWriter extends QueuedStatusWriter<Desired, Record<string, unknown>> {
  private readonly o: RoutingApiStatusWriterOptions;
  private readonly log: Logger;
  private readonly now: () => Date;
  private desired = new Map<string, Desired>();
  /** Event names reported (created, or found existing) per Ingress, for as long as the Ingress is ours. */
  private readonly reported = new Map<string, Set<string>>();

  constructor(opts: RoutingApiStatusWriterOptions) {
    const log = opts.log.child({ component: 'routing-api-status-writer' });
    // Keys are "<kind> <name>" (update()).
    super(opts, log, (key) => key.slice(0, key.indexOf(' ')));
    this.o = opts;
    this.log = log;
    this.now = opts.now ?? (() => new Date());
  }

  /** The statuses of the last build; objects not listed are forgotten (HTTPRoutes and policies after withdrawing). */
  update(s: RoutingApiStatuses): void {
    const next = new Map<string, Desired>();
    for (const c of s.gatewayClasses) next.set(`GatewayClass ${c.name}`, { kind: 'GatewayClass', conditions: c.conditions });
    for (const g of s.gateways) next.set(`Gateway ${nsName(g)}`, { kind: 'Gateway', status: g });
    for (const r of s.httpRoutes) next.set(`HTTPRoute ${nsName(r)}`, { kind: 'HTTPRoute', parents: r.parents });
    for (const p of s.policies) next.set(`WebSocketPolicy ${nsName(p)}`, { kind: 'WebSocketPolicy', ancestors: p.ancestors });
    const ingresses = new Set<string>();
    for (const i of s.ingresses) {
      next.set(`Ingress ${nsName(i)}`, { kind: 'Ingress', loadBalancer: i.loadBalancer });
      ingresses.add(i.uid ?? nsName(i));
      for (const w of i.warnings) {
        const name = eventName(i, w);
        next.set(`Event ${i.namespace}/${name}`, { kind: 'Event', name, ingress: { namespace: i.namespace, name: i.name, ...(i.uid ? { uid: i.uid } : {}) }, reason: ingressWarningReason(w), message: w });
      }
    }
    // An HTTPRoute or policy no longer in the list (detached from wsgate's Gateways, its targets gone) still
    // carries wsgate's entries on the server: they are withdrawn once, then the object is forgotten.
    for (const [key, d] of this.desired) {
      if (next.has(key)) continue;
      if (d.kind === 'HTTPRoute' && !(d.parents.length === 0 && this.queue.isWritten(key))) next.set(key, { kind: 'HTTPRoute', parents: [] });
      if (d.kind === 'WebSocketPolicy' && !(d.ancestors.length === 0 && this.queue.isWritten(key))) next.set(key, { kind: 'WebSocketPolicy', ancestors: [] });
    }
    for (const ing of this.reported.keys()) if (!ingresses.has(ing)) this.reported.delete(ing);
    this.desired = next;
    this.setDesired(next);
  }

  protected async write(key: string, d: Desired): Promise<boolean> {
    try {
      return d.kind === 'Event' ? await this.report(d) : await this.writeStatus(key, d);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return false; // deleted meanwhile: nothing to report on
      throw err;
    }
  }

  private async writeStatus(key: string, d: Exclude<Desired, IngressEvent>): Promise<boolean> {
    const objKey = key.slice(key.indexOf(' ') + 1);
    const observed = this.o.observed?.(d.kind, objKey) as Record<string, never> | undefined;
    // The server's copy when the informer has one (other controllers' entries are only there), else our last write.
    const existing = observed ?? (this.applied.get(key)?.body as Record<string, never> | undefined);
    const now = metaTime(this.now());
    let body: Record<string, unknown>;
    switch (d.kind) {
      case 'GatewayClass':
        body = gatewayClassStatusBody(existing, d.conditions, now);
        break;
      case 'Gateway':
        body = gatewayStatusBody(existing, d.status, now);
        break;
      case 'HTTPRoute':
        if (d.parents.length === 0 && !hasEntriesOf(observed?.['parents'], ourControllers)) return true;
        body = httpRouteStatusBody(existing, d.parents, ourControllers, now);
        break;
      case 'WebSocketPolicy':
        if (d.ancestors.length === 0 && !hasEntriesOf(observed?.['ancestors'], ourControllers)) return true;
        body = policyStatusBody(existing, d.ancestors, ourControllers, now);
        break;
      case 'Ingress':
        body = { loadBalancer: { ingress: d.loadBalancer } };
        break;
    }
    const slash = objKey.indexOf('/');
    const [namespace, name] = slash < 0 ? [undefined, objKey] : [objKey.slice(0, slash), objKey.slice(slash + 1)];
    await this.sendChanged(key, body, (b) => this.o.client.patchRoutingStatus(d.kind, namespace, name, b));
    return true;
  }

  private async report(e: IngressEvent): Promise<boolean> {
    const ingKey = e.ingress.uid ?? nsName(e.ingress);
    if (this.reported.get(ingKey)?.has(e.name)) return true;
    this.writes++;
    try {
      await this.o.client.createEvent({
        name: e.name,
        involvedObject: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', ...e.ingress },
        type: 'Warning',
        reason: e.reason,
        message: e.message.length > maxEventMessage ? `${e.message.slice(0, maxEventMessage - 3)}...` : e.message,
        reportingComponent: ingressEventComponent,
        ...(this.o.instance === undefined ? {} : { reportingInstance: this.o.instance }),
        timestamp: this.now(),
      });
      this.log.warn({ ingress: nsName(e.ingress), reason: e.reason }, e.message);
    } catch (err) {
      // Reported before: by this process before leadership moved, by another leader, or before a restart.
      if (!(err instanceof KubeApiError && err.status === 409)) throw err;
    }
    // Looked up again: the writes for other warnings of this Ingress run concurrently.
    const seen = this.reported.get(ingKey) ?? new Set<string>();
    seen.add(e.name);
    this.reported.set(ingKey, seen);
    return true;
  }
}
