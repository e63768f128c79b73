// API objects trimmed to what the builder reads (build/input.ts, and for the Gateway API and Ingress the
// translators' input: dag/gateway/types.ts, dag/ingress.ts). Trimming drops resourceVersion, managedFields and
// status, so a write that changes none of the kept fields (a status update, a no-op resync) signals nothing. The
// spec of a routing-API object is kept whole: the translators refuse fields they do not support, so none may be
// dropped on the way.
import type { EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../../dag/input.ts';
import type { GatewayClassLite, GatewayLite, HTTPRouteLite, NamespaceLite, PublishedAddress, ReferenceGrantLite, WebSocketPolicyLite } from '../../dag/gateway/types.ts';
import type { IngressClassLite, IngressLite } from '../../dag/ingress.ts';
import type { PublishedServiceLite, SourceObject } from '../source.ts';
import type { ObjectMeta } from '../../api/types.ts';
import type { RawObject, WatchedResource } from '../../kube/kube-client.ts';

type Meta = RawObject['metadata'];

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function record(v: unknown): Record<string, string> | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

function ident(m: Meta): { namespace: string; name: string } {
  return { namespace: m.namespace ?? '', name: m.name ?? '' };
}

/** The metadata the builder and the translators read: identity, generation (observedGeneration), age (conflicts),
 *  deletion, labels (namespace selectors) and annotations (ingress-nginx, the default IngressClass). */
function metaLite(m: Meta): ObjectMeta {
  const labels = record(m['labels']);
  const annotations = record(m['annotations']);
  const metadata: ObjectMeta = {
    ...ident(m),
    ...(str(m['uid']) ? { uid: str(m['uid']) } : {}),
    ...(typeof m['generation'] === 'number' ? { generation: m['generation'] } : {}),
    ...(str(m['creationTimestamp']) ? { creationTimestamp: str(m['creationTimestamp']) } : {}),
    ...(str(m['deletionTimestamp']) ? { deletionTimestamp: str(m['deletionTimestamp']) } : {}),
    ...(labels ? { labels } : {}),
    ...(annotations ? { annotations } : {}),
  };
  return metadata;
}

export function routeLite(o: RawObject): RouteObject {
  return { apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: metaLite(o.metadata), spec: o['spec'] };
}

/** A cluster-scoped object has no namespace; the translators read its name only. */
function clusterMeta(m: Meta): ObjectMeta {
  const { namespace: _, ...rest } = metaLite(m);
  return rest as ObjectMeta;
}

function specOf<T>(o: RawObject): T {
  return (o['spec'] ?? {}) as T;
}

export function gatewayClassLite(o: RawObject): GatewayClassLite {
  return { metadata: clusterMeta(o.metadata), spec: specOf(o) };
}

export function gatewayLite(o: RawObject): GatewayLite {
  const spec = specOf<GatewayLite['spec']>(o);
  return { metadata: metaLite(o.metadata), spec: { ...spec, listeners: spec.listeners ?? [] } };
}

export function httpRouteLite(o: RawObject): HTTPRouteLite {
  return { metadata: metaLite(o.metadata), spec: specOf(o) };
}

export function referenceGrantLite(o: RawObject): ReferenceGrantLite {
  const spec = specOf<Partial<ReferenceGrantLite['spec']>>(o);
  return { metadata: metaLite(o.metadata), spec: { from: spec.from ?? [], to: spec.to ?? [] } };
}

export function policyLite(o: RawObject): WebSocketPolicyLite {
  return { metadata: metaLite(o.metadata), spec: specOf(o) };
}

export function ingressLite(o: RawObject): IngressLite {
  return { metadata: metaLite(o.metadata), spec: specOf(o) };
}

export function ingressClassLite(o: RawObject): IngressClassLite {
  return { metadata: clusterMeta(o.metadata), spec: specOf(o) };
}

/** Namespaces are read for allowedRoutes selectors: their name and labels only. */
export function namespaceLite(o: RawObject): NamespaceLite {
  const labels = record(o.metadata['labels']);
  return { metadata: { name: o.metadata.name ?? '', ...(labels ? { labels } : {}) } };
}

/** The Service wsgate runs behind, as the addresses it publishes: its load balancer's, else its external IPs
 *  (https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceStatus). */
export function publishedServiceLite(o: RawObject): PublishedServiceLite {
  const status = (o['status'] ?? {}) as { loadBalancer?: { ingress?: { ip?: unknown; hostname?: unknown }[] } };
  const spec = (o['spec'] ?? {}) as { externalIPs?: unknown[] };
  const addresses: PublishedAddress[] = [];
  for (const i of status.loadBalancer?.ingress ?? []) {
    if (str(i.ip)) addresses.push({ type: 'IPAddress', value: str(i.ip)! });
    else if (str(i.hostname)) addresses.push({ type: 'Hostname', value: str(i.hostname)! });
  }
  if (addresses.length === 0) for (const ip of spec.externalIPs ?? []) if (str(ip)) addresses.push({ type: 'IPAddress', value: str(ip)! });
  return { metadata: ident(o.metadata), addresses };
}

export function serviceLite(o: RawObject): ServiceLite {
  const spec = (o['spec'] ?? {}) as { ports?: { name?: unknown; port?: unknown; targetPort?: unknown; protocol?: unknown; appProtocol?: unknown }[] };
  return {
    metadata: ident(o.metadata),
    spec: {
      ports: (spec.ports ?? []).map((p) => ({
        ...(str(p.name) ? { name: str(p.name) } : {}),
        port: Number(p.port),
        ...(typeof p.targetPort === 'number' || typeof p.targetPort === 'string' ? { targetPort: p.targetPort } : {}),
        ...(str(p.protocol) ? { protocol: str(p.protocol) } : {}),
        // The Gateway API's backend-protocol rules read it (dag/gateway/route-rules.ts).
        ...(str(p.appProtocol) ? { appProtocol: str(p.appProtocol) } : {}),
      })),
    },
  };
}

export function endpointSliceLite(o: RawObject): EndpointSliceLite {
  type RawEndpoint = { addresses?: unknown[]; conditions?: Record<string, unknown>; zone?: unknown; targetRef?: { name?: unknown } };
  const ports = o['ports'] as { name?: unknown; port?: unknown; protocol?: unknown }[] | null | undefined;
  const endpoints = (o['endpoints'] ?? []) as RawEndpoint[];
  const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
  return {
    metadata: { ...ident(o.metadata), labels: record(o.metadata['labels']) ?? {} },
    addressType: o['addressType'] as EndpointSliceLite['addressType'],
    ports: ports
      ? ports.map((p) => ({
          ...(str(p.name) !== undefined ? { name: str(p.name) } : {}),
          ...(typeof p.port === 'number' ? { port: p.port } : {}),
          ...(str(p.protocol) ? { protocol: str(p.protocol) } : {}),
        }))
      : null,
    endpoints: endpoints.map((e) => {
      const c = e.conditions ?? {};
      const conditions = {
        ...(bool(c['ready']) !== undefined ? { ready: bool(c['ready']) } : {}),
        ...(bool(c['serving']) !== undefined ? { serving: bool(c['serving']) } : {}),
        ...(bool(c['terminating']) !== undefined ? { terminating: bool(c['terminating']) } : {}),
      };
      return {
        addresses: (e.addresses ?? []).filter((a): a is string => typeof a === 'string'),
        conditions,
        ...(str(e.zone) ? { zone: str(e.zone) } : {}),
        ...(str(e.targetRef?.name) ? { targetRef: { name: str(e.targetRef?.name) } } : {}),
      };
    }),
  };
}

export function secretLite(o: RawObject): SecretLite {
  return { metadata: ident(o.metadata), ...(str(o['type']) ? { type: str(o['type']) } : {}), data: record(o['data']) ?? {} };
}

export type Lite = SourceObject;

export const trimmers: { readonly [R in WatchedResource]: (o: RawObject) => Lite } = {
  websocketroutes: routeLite,
  services: serviceLite,
  endpointslices: endpointSliceLite,
  secrets: secretLite,
  gatewayclasses: gatewayClassLite,
  gateways: gatewayLite,
  httproutes: httpRouteLite,
  referencegrants: referenceGrantLite,
  websocketpolicies: policyLite,
  ingresses: ingressLite,
  ingressclasses: ingressClassLite,
  namespaces: namespaceLite,
};
