// Cross-namespace references and the ReferenceGrants that permit them
// (https://gateway-api.sigs.k8s.io/api-types/referencegrant/): a grant lives in the namespace of the target and
// names the kind and namespace references may come from; a grant without a target name admits every object of
// that kind.
import { gatewayGroup, type LabelSelector, type NamespaceLite, type ReferenceGrantLite } from './types.ts';

export interface ReferenceFrom {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
}

export interface ReferenceTo {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export function referencePermitted(grants: readonly ReferenceGrantLite[], from: ReferenceFrom, to: ReferenceTo): boolean {
  if (from.namespace === to.namespace) return true;
  return grants.some(
    (g) =>
      g.metadata.namespace === to.namespace &&
      !g.metadata.deletionTimestamp &&
      g.spec.from.some((f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace) &&
      g.spec.to.some((t) => t.group === to.group && t.kind === to.kind && (t.name === undefined || t.name === '' || t.name === to.name)),
  );
}

export const httpRouteFrom = (namespace: string): ReferenceFrom => ({ group: gatewayGroup, kind: 'HTTPRoute', namespace });
export const gatewayFrom = (namespace: string): ReferenceFrom => ({ group: gatewayGroup, kind: 'Gateway', namespace });

/** A Kubernetes label selector (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors). */
export function selectorMatches(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key] as string);
    if (e.operator === 'In' && !inValues) return false;
    if (e.operator === 'NotIn' && inValues) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

export function namespaceLabels(namespaces: readonly NamespaceLite[], name: string): Readonly<Record<string, string>> {
  // The API server labels every namespace with its own name
  // (https://kubernetes.io/docs/concepts/services-networking/network-policies/#targeting-a-namespace-by-its-name).
  return { 'kubernetes.io/metadata.name': name, ...namespaces.find((n) => n.metadata.name === name)?.metadata.labels };
}
