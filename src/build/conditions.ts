// Route conditions as data: the builder computes them, the status writer (leader only) puts them on the API.
import type { Condition, ConditionType } from '../model/snapshot.ts';

export type ConditionSet = Map<ConditionType, Condition>;

export function condition(
  type: ConditionType,
  ok: boolean,
  reason: string,
  message: string,
  observedGeneration: number,
): Condition {
  return Object.freeze({ type, status: ok ? 'True' : 'False', reason, message, observedGeneration });
}

export const conditionOrder: readonly ConditionType[] = ['Accepted', 'ResolvedRefs', 'Programmed'];

/** Accepted=False: the route is left out; ResolvedRefs and Programmed follow from it. */
export function rejected(generation: number, reason: string, message: string): Condition[] {
  return [
    condition('Accepted', false, reason, message, generation),
    condition('ResolvedRefs', false, 'NotAccepted', 'the route was not accepted', generation),
    condition('Programmed', false, 'NotAccepted', 'the route is not served', generation),
  ];
}

export function accepted(generation: number, refFailures: readonly string[], refReason: string): Condition[] {
  const resolved = refFailures.length === 0;
  return [
    condition('Accepted', true, 'Accepted', 'route accepted', generation),
    resolved
      ? condition('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', generation)
      : condition('ResolvedRefs', false, refReason, refFailures.join('; '), generation),
    condition(
      'Programmed',
      true,
      'Programmed',
      resolved ? 'route is served' : 'route is served; rules with unresolved backends answer 503',
      generation,
    ),
  ];
}
