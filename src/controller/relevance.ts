// Can this change alter the routing table or a route's status? A Service, EndpointSlice or Secret that no route
// names cannot; nor can a change confined to fields the builder never reads (labels other than the Service
// name on a slice, a Service's targetPort or protocol, a Secret's type, a route's labels and annotations). Each
// projection below keeps exactly the fields src/dag reads (backends.ts, secrets.ts, build.ts); the
// controller's tests build before and after and check that what the projection drops leaves the result equal.
// The Gateway API and Ingress objects are trimmed to what their translators read (sources/kubernetes/lite.ts),
// so any change that reaches here matters; the Services and Secrets those translators read are in the last
// build's references (dag/routing-references.ts).
import { serviceNameLabel } from '../api/labels.ts';
import type { EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../dag/input.ts';
import type { ReferenceIndex } from '../dag/references.ts';
import { isRoutingApiKind, type ObjectChange, type SourceChange } from '../sources/source.ts';
import { isDeepStrictEqual } from 'node:util';

export function routeProjection(r: RouteObject): unknown {
  const m = r.metadata;
  return [m.namespace, m.name, m.generation, m.creationTimestamp, m.deletionTimestamp, r.spec];
}

export function serviceProjection(s: ServiceLite): unknown {
  return (s.spec.ports ?? []).map((p) => [p.name, p.port, p.appProtocol]);
}

export function sliceOwner(s: EndpointSliceLite): string | undefined {
  const owner = s.metadata.labels?.[serviceNameLabel];
  return owner ? `${s.metadata.namespace}/${owner}` : undefined;
}

export function sliceProjection(s: EndpointSliceLite): unknown {
  return [
    sliceOwner(s),
    (s.ports ?? []).map((p) => [p.name, p.port]),
    (s.endpoints ?? []).map((e) => [e.addresses, e.conditions?.ready, e.conditions?.serving, e.conditions?.terminating, e.zone, e.targetRef?.name]),
  ];
}

export function secretProjection(s: SecretLite): unknown {
  return s.data ?? {};
}

/** Is one object's change able to change the build? */
export function objectChangeMatters(c: ObjectChange, refs: ReferenceIndex): boolean {
  const same = (project: (o: never) => unknown): boolean =>
    c.before !== undefined && c.after !== undefined && isDeepStrictEqual(project(c.before as never), project(c.after as never));
  switch (c.kind) {
    case 'websocketroutes':
      return !same(routeProjection);
    case 'services':
      return refs.services.has(c.key) && !same(serviceProjection);
    case 'secrets':
      return refs.secrets.has(c.key) && !same(secretProjection);
    case 'endpointslices': {
      // The owner label can change: a slice moving to or from a referenced Service matters either way.
      const owners = [c.before, c.after].map((o) => (o ? sliceOwner(o as EndpointSliceLite) : undefined));
      return owners.some((o) => o !== undefined && refs.services.has(o)) && !same(sliceProjection);
    }
    default:
      return isRoutingApiKind(c.kind);
  }
}

/** Does any part of this signal matter? Before the first build every change does. */
export function changeMatters(change: SourceChange, refs: ReferenceIndex | undefined): boolean {
  if (refs === undefined || 'all' in change) return true;
  return change.objects.some((c) => objectChangeMatters(c, refs));
}
