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

/** An atomic list of per-controller entries (route parents, policy ancestors) with wsgate's part replaced:
 *  the entries of `controllerNames` (wsgate's controllers) are dropped and `ours` put in their place. */
function mergeEntries<E extends Entry, O extends { controllerName: string; conditions: readonly ApiCondition[] }>(
  existing: readonly E[] | undefined,
  ours: readonly O[],
  refOf: (x: E | O) => ParentReference,
  controllerNames: readonly string[],
  now: string,
): (E | (O & { conditions: StampedCondition[] }))[] {
  const foreign = (existing ?? []).filter((e) => !controllerNames.includes(e.controllerName));
  const mine = ours.map((o) => {
    const before = (existing ?? []).find((e) => e.controllerName === o.controllerName && sameRef(refOf(e), refOf(o)));
    return { ...o, conditions: stamp(o.conditions, before?.conditions, now) };
  });
  return [...foreign, ...mine];
}

/** Whether an atomic list on the server has entries of wsgate's controllers (something to withdraw). */
export function hasEntriesOf(existing: readonly Entry[] | undefined, controllerNames: readonly string[]): boolean {
  return (existing ?? []).some((e) => controllerNames.includes(e.controllerName));
}

export function httpRouteStatusBody(existing: { parents?: readonly (Entry & { parentRef: ParentReference })[] } | undefined, parents: readonly RouteParentStatus[], controllerNames: readonly string[], now: string) {
  return { parents: mergeEntries(existing?.parents, parents, (x) => x.parentRef, controllerNames, now) };
}

export function policyStatusBody(existing: { ancestors?: readonly (Entry & { ancestorRef: ParentReference })[] } | undefined, ancestors: readonly PolicyAncestorStatus[], controllerNames: readonly string[], now: string) {
  return { ancestors: mergeEntries(existing?.ancestors, ancestors, (x) => x.ancestorRef, controllerNames, now) };
}

/** Condition types wsgate does not set are kept (another controller's, or a newer wsgate's). */
function mergeConditions(existing: readonly ObservedCondition[] | undefined, ours: readonly ApiCondition[], now: string) {
  const ourTypes = new Set(ours.map((c) => c.type));
  return [...(existing ?? []).filter((c) => !ourTypes.has(c.type)), ...stamp(ours, existing, now)];
}

export function gatewayClassStatusBody(existing: { readonly conditions?: readonly ObservedCondition[] } | undefined, conditions: readonly ApiCondition[], now: string) {
  return { conditions: mergeConditions(existing?.conditions, conditions, now) };
}

interface ObservedGatewayStatus {
  readonly conditions?: readonly ObservedCondition[];
  readonly listeners?: readonly { readonly name: string; readonly conditions?: readonly ObservedCondition[] }[];
}

export function gatewayStatusBody(existing: ObservedGatewayStatus | undefined, g: GatewayStatus, now: string) {
  return {
    addresses: g.addresses,
    conditions: mergeConditions(existing?.conditions, g.conditions, now),
    listeners: g.listeners.map((l) => ({ ...l, conditions: stamp(l.conditions, existing?.listeners?.find((x) => x.name === l.name)?.conditions, now) })),
  };
}
