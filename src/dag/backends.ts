// Backend resolution: a backendRef becomes a Backend with its endpoints and their states (docs/architecture.md §3).
// All EndpointSlices of a Service are joined by the kubernetes.io/service-name label, the port is resolved per
// slice by the Service port's name, and addresses are deduplicated keeping the best state.
import type { Backend, Endpoint, EndpointState } from '../model/snapshot.ts';
import { serviceNameLabel } from '../api/labels.ts';
import type { EndpointSliceLite, ServiceLite } from './input.ts';

export type RefFailure = { reason: 'BackendNotFound' | 'RefNotPermitted'; message: string };

export interface BackendIndex {
  readonly services: ReadonlyMap<string, ServiceLite>;
  /** "ns/service" → its slices, sorted by name. */
  readonly slices: ReadonlyMap<string, readonly EndpointSliceLite[]>;
}

export function indexBackends(services: readonly ServiceLite[], slices: readonly EndpointSliceLite[]): BackendIndex {
  const svc = new Map<string, ServiceLite>();
  for (const s of services) svc.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
  const bySvc = new Map<string, EndpointSliceLite[]>();
  for (const sl of slices) {
    const owner = sl.metadata.labels?.[serviceNameLabel];
    if (!owner) continue;
    const k = `${sl.metadata.namespace}/${owner}`;
    const list = bySvc.get(k);
    if (list) list.push(sl);
    else bySvc.set(k, [sl]);
  }
  for (const list of bySvc.values()) list.sort((a, b) => cmp(a.metadata.name, b.metadata.name));
  return { services: svc, slices: bySvc };
}

/** Static endpoints keep their key (`static|address`) when they move to drainingEndpoints, so the connections
 *  on one see it turn Draining (terminating: the paced drain starts) and then Gone (the rest close at once)
 *  exactly as a pod's do. */
export function staticBackend(id: string, weight: number, addresses: readonly string[], draining: readonly string[] = []): Backend {
  const eps = new Map<string, Endpoint>();
  const add = (a: string, state: 'Active' | 'Draining') => {
    const { host, port } = splitHostPort(a);
    const address = joinHostPort(host, port);
    eps.set(address, { key: `static|${address}`, address, host, port, state });
  };
  for (const a of addresses) add(a, 'Active');
  for (const a of draining) add(a, 'Draining');
  return { id, weight, resolved: true, endpoints: sortEndpoints(eps) };
}

export function serviceBackend(
  index: BackendIndex,
  namespace: string,
  name: string,
  port: number | string,
  weight: number,
): Backend | RefFailure {
  const svc = index.services.get(`${namespace}/${name}`);
  if (!svc) return { reason: 'BackendNotFound', message: `Service ${namespace}/${name} not found` };
  const sp = (svc.spec.ports ?? []).find((p) => (typeof port === 'number' ? p.port === port : p.name === port));
  if (!sp) return { reason: 'BackendNotFound', message: `Service ${namespace}/${name} has no port ${port}` };
  const portName = sp.name ?? '';
  const origin = `svc:${namespace}/${name}`;
  const eps = new Map<string, Endpoint>();
  for (const slice of index.slices.get(`${namespace}/${name}`) ?? []) {
    const slicePort = (slice.ports ?? []).find((p) => (p.name ?? '') === portName);
    if (!slicePort?.port) continue;
    for (const ep of slice.endpoints ?? []) {
      const state = endpointState(ep.conditions);
      if (!state) continue;
      for (const addr of ep.addresses) {
        const address = joinHostPort(addr, slicePort.port);
        const prev = eps.get(address);
        if (prev && stateRank[prev.state] <= stateRank[state]) continue;
        eps.set(address, {
          key: `${origin}|${address}`,
          address,
          host: addr,
          port: slicePort.port,
          state,
          ...(ep.zone ? { zone: ep.zone } : {}),
          ...(ep.targetRef?.name ? { podName: ep.targetRef.name } : {}),
        });
      }
    }
  }
  return { id: `${origin}:${sp.port}`, weight, resolved: true, endpoints: sortEndpoints(eps) };
}

/** The API's rules: unset ready means ready, unset serving defers to ready, unset terminating means not
 *  terminating. undefined = Gone: not published. Terminating wins over ready (a Service with
 *  publishNotReadyAddresses keeps ready=true on a terminating pod): a pod being deleted drains. Not ready and not
 *  terminating is a readiness flap: NotReady keeps its connections. */
export function endpointState(c: { ready?: boolean; serving?: boolean; terminating?: boolean } | undefined): EndpointState | undefined {
  const ready = c?.ready !== false;
  if (c?.terminating === true) return (c.serving ?? ready) ? 'Draining' : undefined;
  return ready ? 'Active' : 'NotReady';
}

/** The copy of an address kept when slices disagree (one is stale while the controller moves it between
 *  slices): the one that takes connections, then the one that keeps them; a drain starts only when no copy says
 *  otherwise. */
const stateRank: Readonly<Record<EndpointState, number>> = { Active: 0, NotReady: 1, Draining: 2 };

export function unresolvedBackend(id: string, weight: number): Backend {
  return { id, weight, resolved: false, endpoints: [] };
}

export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(s.slice(i + 1)) };
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function sortEndpoints(m: Map<string, Endpoint>): Endpoint[] {
  return [...m.values()].sort((a, b) => cmp(a.address, b.address));
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
