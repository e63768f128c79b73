// WebSocketPolicy by direct attachment (GEP-713, https://gateway-api.sigs.k8s.io/geps/gep-713/): a policy names
// its targets in its own namespace; when several policies target the same object the oldest wins (then the
// alphabetically first namespace/name) and the others are Conflicted for that target. A Gateway's policy is the
// default for its routes; a route's own policy replaces it block by block (affinity, limits, drain, ...).
import { Ajv } from 'ajv';
import { policyBlocks, policySpecSchema } from '../../api/policy-schema.ts';
import { cmp } from '../backends.ts';
import type { WebSocketPolicyLite } from './types.ts';

export type TargetKind = 'Gateway' | 'HTTPRoute' | 'Ingress';
export const targetKey = (kind: TargetKind, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

export type PolicyOutcome = { readonly reason: 'Accepted' } | { readonly reason: 'Conflicted'; readonly winner: string } | { readonly reason: 'Invalid'; readonly message: string };

export interface CheckedPolicies {
  /** The winning policy's blocks per target key. */
  readonly byTarget: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Per policy (namespace/name), per target key, what became of it. */
  readonly outcomes: ReadonlyMap<string, ReadonlyMap<string, PolicyOutcome>>;
}

export type PolicyValidator = (spec: unknown) => string[];

export function createPolicyValidator(): PolicyValidator {
  const check = new Ajv({ allErrors: true, strict: false }).compile(policySpecSchema);
  return (spec) => (check(structuredClone(spec)) ? [] : (check.errors ?? []).map((e) => `spec${e.instancePath.replaceAll('/', '.')}: ${e.message ?? e.keyword}`));
}

const groupOf: Readonly<Record<TargetKind, string>> = { Gateway: 'gateway.networking.k8s.io', HTTPRoute: 'gateway.networking.k8s.io', Ingress: 'networking.k8s.io' };

export function checkPolicies(policies: readonly WebSocketPolicyLite[], validate: PolicyValidator): CheckedPolicies {
  const sorted = policies
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({ p, key: `${p.metadata.namespace ?? 'default'}/${p.metadata.name}` }))
    .sort((a, b) => cmp(a.p.metadata.creationTimestamp ?? '', b.p.metadata.creationTimestamp ?? '') || cmp(a.key, b.key));
  const byTarget = new Map<string, Readonly<Record<string, unknown>>>();
  const winners = new Map<string, string>();
  const outcomes = new Map<string, Map<string, PolicyOutcome>>();
  for (const { p, key } of sorted) {
    const mine = new Map<string, PolicyOutcome>();
    outcomes.set(key, mine);
    const ns = p.metadata.namespace ?? 'default';
    const problems = validate(p.spec);
    for (const t of p.spec.targetRefs ?? []) {
      const kind = t.kind as TargetKind;
      const tk = targetKey(kind, ns, t.name);
      if (problems.length > 0) {
        mine.set(tk, { reason: 'Invalid', message: problems.join('; ') });
        continue;
      }
      if (groupOf[kind] !== t.group) {
        mine.set(tk, { reason: 'Invalid', message: `targetRef ${t.group}/${t.kind}: group must be ${groupOf[kind]}` });
        continue;
      }
      const winner = winners.get(tk);
      if (winner !== undefined) {
        mine.set(tk, { reason: 'Conflicted', winner });
        continue;
      }
      winners.set(tk, key);
      byTarget.set(tk, blocksOf(p.spec));
      mine.set(tk, { reason: 'Accepted' });
    }
  }
  return { byTarget, outcomes };
}

function blocksOf(spec: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const b of policyBlocks) if (spec[b] !== undefined) out[b] = spec[b];
  return out;
}

/** The blocks for one route: its Gateways' policies (first Gateway by key first), then its own on top. */
export function mergedBlocks(checked: CheckedPolicies, gatewayKeys: readonly string[], ownKey: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const gk of [...gatewayKeys].sort(cmp).reverse()) Object.assign(out, checked.byTarget.get(gk));
  Object.assign(out, checked.byTarget.get(ownKey));
  return out;
}
