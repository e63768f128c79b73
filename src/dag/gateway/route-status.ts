// The builder has the last word on a translated route: a route it leaves out (the older WebSocketRoute or
// HTTPRoute holds the same host, path and headers, or the spec a policy produced is invalid) is not served, so
// each parent that accepted it says so with the builder's reason. The WebSocketRoute side of a conflict is
// reported by the builder's own status.
import type { RouteStatus } from '../../model/snapshot.ts';
import { apiCondition, type HTTPRouteStatus } from './types.ts';

export const translatedName = (kind: 'httproute' | 'ingress', name: string) => `${kind}:${name}`;

export function foldBuildStatuses(routes: readonly HTTPRouteStatus[], built: readonly RouteStatus[]): HTTPRouteStatus[] {
  const byKey = new Map(built.map((s) => [s.key as string, s]));
  return routes.map((r) => {
    const accepted = byKey.get(`${r.namespace}/${translatedName('httproute', r.name)}`)?.conditions.find((c) => c.type === 'Accepted');
    if (!accepted) return r;
    // Accepted by the builder: its message may name a younger route of another API that this one keeps out.
    const note = accepted.status === 'True' ? accepted.message.split('; keeps out ')[1] : undefined;
    if (accepted.status === 'True' && !note) return r;
    return {
      ...r,
      parents: r.parents.map((p) => ({
        ...p,
        conditions: p.conditions.map((c) =>
          c.type !== 'Accepted' || c.status !== 'True'
            ? c
            : note
              ? { ...c, message: `${c.message}; keeps out ${note}` }
              : apiCondition('Accepted', false, accepted.reason, accepted.message, c.observedGeneration),
        ),
      })),
    };
  });
}
