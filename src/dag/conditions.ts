// Route conditions as data: the builder computes them, the status writer (leader only) puts them on the API.
import type { Condition, ConditionType } from '../model/snapshot.ts';
import type { RuleWithoutReady } from './backend-status.ts';
import type { ShadowReport } from './rule-matches.ts';

export function condition(
  type: ConditionType,
  ok: boolean,
  reason: string,
  message: string,
  observedGeneration: number,
): Condition {
  return Object.freeze({ type, status: ok ? 'True' : 'False', reason, message, observedGeneration });
}

/** Accepted=False: the route is left out; ResolvedRefs and Programmed follow from it. */
export function rejected(generation: number, reason: string, message: string): Condition[] {
  return [
    condition('Accepted', false, reason, message, generation),
    condition('ResolvedRefs', false, 'NotAccepted', 'the route was not accepted', generation),
    condition('Programmed', false, 'NotAccepted', 'the route is not served', generation),
  ];
}

export interface AcceptedNotes {
  /** ResolvedRefs problems, with the reason they share. */
  readonly refFailures: readonly string[];
  readonly refReason: string;
  /** Rules or matches that can never decide a request: the route serves, Accepted stays True and says so. */
  readonly shadowed?: ShadowReport;
  /** Rules with no ready endpoint: the route is programmed, Programmed stays True and says so. */
  readonly withoutReady: readonly RuleWithoutReady[];
}

export function accepted(generation: number, n: AcceptedNotes): Condition[] {
  const resolved = n.refFailures.length === 0;
  const served = ['route is served'];
  if (!resolved) served.push('what did not resolve (see ResolvedRefs) answers 503');
  for (const r of n.withoutReady) {
    served.push(`rules[${r.rule}] has no ready endpoint: ${r.draining ? 'draining endpoints take its new connections' : 'new connections get 503'}`);
  }
  return [
    n.shadowed
      ? condition('Accepted', true, n.shadowed.reason, `route accepted; ${n.shadowed.message}`, generation)
      : condition('Accepted', true, 'Accepted', 'route accepted', generation),
    resolved
      ? condition('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved', generation)
      : condition('ResolvedRefs', false, n.refReason, n.refFailures.join('; '), generation),
    condition('Programmed', true, n.withoutReady.length > 0 ? 'NoReadyEndpoints' : 'Programmed', served.join('; '), generation),
  ];
}
