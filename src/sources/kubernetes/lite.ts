// API objects trimmed to what the builder reads (build/input.ts). Trimming drops resourceVersion, managedFields
// and status, so a write that changes none of the kept fields (a status update, a no-op resync) signals nothing.
import type { EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../../dag/input.ts';
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

export function routeLite(o: RawObject): RouteObject {
  const m = o.metadata;
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
  return { apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata, spec: o['spec'] };
}

export function serviceLite(o: RawObject): ServiceLite {
  const spec = (o['spec'] ?? {}) as { ports?: { name?: unknown; port?: unknown; targetPort?: unknown; protocol?: unknown }[] };
  return {
    metadata: ident(o.metadata),
    spec: {
      ports: (spec.ports ?? []).map((p) => ({
        ...(str(p.name) ? { name: str(p.name) } : {}),
        port: Number(p.port),
        ...(typeof p.targetPort === 'number' || typeof p.targetPort === 'string' ? { targetPort: p.targetPort } : {}),
        ...(str(p.protocol) ? { protocol: str(p.protocol) } : {}),
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

export type Lite = RouteObject | ServiceLite | EndpointSliceLite | SecretLite;

export const trimmers: { readonly [R in WatchedResource]: (o: RawObject) => Lite } = {
  websocketroutes: routeLite,
  services: serviceLite,
  endpointslices: endpointSliceLite,
  secrets: secretLite,
};
