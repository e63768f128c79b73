// The status bodies wsgate writes for Gateway API objects, merged into what the server has. HTTPRoute
// status.parents and policy status.ancestors are atomic lists shared by every controller
// (x-kubernetes-list-type: atomic in the upstream CRDs), so a write keeps the entries of other controllers and
// replaces only wsgate's; Gateway conditions of types wsgate does not set are kept (conformance case
// gateway-preserve-foreign-conditions). A condition keeps its lastTransitionTime while its status stays the same.
import type { ApiCondition, GatewayStatus, ParentReference, PolicyAncestorStatus, RouteParentStatus } from '../dag/gateway/types.ts';

export interface StampedCondition extends ApiCondition {
  readonly lastTransitionTime: string;
}

interface ObservedCondition {
  readonly type: string;
  readonly status: string;
  readonly lastTransitionTime?: string;
}

export function stamp(next: readonly ApiCondition[], before: readonly ObservedCondition[] | undefined, now: string): StampedCondition[] {
  return next.map((c) => {
    const prev = before?.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now };
  });
}

const sameRef = (a: ParentReference, b: ParentReference) =>
  (a.group ?? '') === (b.group ?? '') && (a.kind ?? '') === (b.kind ?? '') && (a.namespace ?? '') === (b.namespace ?? '') && a.name === b.name && (a.sectionName ?? '') === (b.sectionName ?? '') && (a.port ?? 0) === (b.port ?? 0);

interface Entry {
  readonly controllerName: string;
  readonly conditions?: readonly ObservedCondition[];
}

/** An atomic list of per-controller entries (route parents, policy ancestors) with wsgate's part replaced. */
function mergeEntries<E extends Entry, O extends { controllerName: string; conditions: readonly ApiCondition[] }>(
  existing: readonly E[] | undefined,
  ours: readonly O[],
  refOf: (x: E | O) => ParentReference,
  controllerName: string,
  now: string,
): (E | (O & { conditions: StampedCondition[] }))[] {
  const foreign = (existing ?? []).filter((e) => e.controllerName !== controllerName);
  const mine = ours.map((o) => {
    const before = (existing ?? []).find((e) => e.controllerName === controllerName && sameRef(refOf(e), refOf(o)));
    return { ...o, conditions: stamp(o.conditions, before?.conditions, now) };
  });
  return [...foreign, ...mine];
}

export function httpRouteStatusBody(existing: { parents?: readonly (Entry & { parentRef: ParentReference })[] } | undefined, parents: readonly RouteParentStatus[], controllerName: string, now: string) {
  return { parents: mergeEntries(existing?.parents, parents, (x) => x.parentRef, controllerName, now) };
}

export function policyStatusBody(existing: { ancestors?: readonly (Entry & { ancestorRef: ParentReference })[] } | undefined, ancestors: readonly PolicyAncestorStatus[], controllerName: string, now: string) {
  return { ancestors: mergeEntries(existing?.ancestors, ancestors, (x) => x.ancestorRef, controllerName, now) };
}

interface ObservedGatewayStatus {
  readonly conditions?: readonly ObservedCondition[];
  readonly listeners?: readonly { readonly name: string; readonly conditions?: readonly ObservedCondition[] }[];
}

export function gatewayStatusBody(existing: ObservedGatewayStatus | undefined, g: GatewayStatus, now: string) {
  const ourTypes = new Set(g.conditions.map((c) => c.type));
  return {
    addresses: g.addresses,
    conditions: [...(existing?.conditions ?? []).filter((c) => !ourTypes.has(c.type)), ...stamp(g.conditions, existing?.conditions, now)],
    listeners: g.listeners.map((l) => ({ ...l, conditions: stamp(l.conditions, existing?.listeners?.find((x) => x.name === l.name)?.conditions, now) })),
  };
}
