// The Services and Secrets the Gateway API and Ingress translators read, whether or not a route came of them: a
// listener's certificateRefs, an Ingress's tls secretName, every Service a backendRef or an Ingress backend
// names (a missing one is BackendNotFound until it appears). A change to any of them can change a translated
// route or a status; a change to any other Service or Secret cannot, so the controller ignores it (relevance.ts).
import type { ReferenceIndex } from './references.ts';
import type { RoutingApisInput } from './routing-apis.ts';

const core = (group: string | undefined) => group === undefined || group === '';

export function routingReferences(apis: RoutingApisInput): ReferenceIndex {
  const services = new Set<string>();
  const secrets = new Set<string>();
  for (const g of apis.gatewayApi?.gateways ?? []) {
    const ns = g.metadata.namespace ?? 'default';
    for (const l of g.spec.listeners) {
      for (const ref of l.tls?.certificateRefs ?? []) if (core(ref.group) && (ref.kind ?? 'Secret') === 'Secret') secrets.add(`${ref.namespace ?? ns}/${ref.name}`);
    }
  }
  for (const r of apis.gatewayApi?.httpRoutes ?? []) {
    const ns = r.metadata.namespace ?? 'default';
    for (const rule of r.spec.rules ?? []) {
      for (const ref of rule.backendRefs ?? []) if (core(ref.group) && (ref.kind ?? 'Service') === 'Service') services.add(`${ref.namespace ?? ns}/${ref.name}`);
    }
  }
  for (const i of apis.ingress?.ingresses ?? []) {
    const ns = i.metadata.namespace ?? 'default';
    const backends = [i.spec.defaultBackend, ...(i.spec.rules ?? []).flatMap((rule) => (rule.http?.paths ?? []).map((p) => p.backend))];
    for (const b of backends) if (b?.service?.name) services.add(`${ns}/${b.service.name}`);
    for (const t of i.spec.tls ?? []) if (t.secretName) secrets.add(`${ns}/${t.secretName}`);
  }
  return { services, secrets };
}

/** Both indexes in one. */
export function mergeReferences(a: ReferenceIndex, b: ReferenceIndex): ReferenceIndex {
  if (b.services.size === 0 && b.secrets.size === 0) return a;
  return { services: new Set([...a.services, ...b.services]), secrets: new Set([...a.secrets, ...b.secrets]) };
}
