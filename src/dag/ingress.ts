// Ingress (networking.k8s.io/v1) → the builder's input. wsgate serves the Ingresses whose ingressClassName names
// an IngressClass of controller wsgate.io/ingress-controller (or, without a class, when that IngressClass is the
// cluster default: https://kubernetes.io/docs/concepts/services-networking/ingress/#default-ingress-class).
// One WebSocketRoute-shaped object per Ingress host, named ingress:<name>:<host> (no Kubernetes name has a colon);
// pathType Prefix and ImplementationSpecific are PathPrefix, Exact is Exact. Pure and deterministic.
import type { ObjectMeta } from '../api/types.ts';
import { cmp } from './backends.ts';
import { mapNginxAnnotations, nginxPrefix } from './ingress-annotations.ts';
import { checkPolicies, createPolicyValidator, targetKey, type PolicyValidator } from './gateway/policy.ts';
import { unresolvableName } from './gateway/route-rules.ts';
import { tlsSecretCertificate } from './gateway/tls-secret.ts';
import type { SecretLite } from './input.ts';
import { apiCondition, type ListenerCertificate, type PolicyStatus, type PublishedAddress, type TranslatedRoute, type WebSocketPolicyLite } from './gateway/types.ts';

export const ingressControllerName = 'wsgate.io/ingress-controller';
const defaultClassAnnotation = 'ingressclass.kubernetes.io/is-default-class';

export interface IngressClassLite {
  readonly metadata: ObjectMeta;
  readonly spec: { readonly controller?: string };
}

export interface IngressBackend {
  readonly service?: { readonly name: string; readonly port?: { readonly number?: number; readonly name?: string } };
  readonly resource?: { readonly apiGroup?: string; readonly kind: string; readonly name: string };
}

export interface IngressLite {
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly ingressClassName?: string;
    readonly defaultBackend?: IngressBackend;
    readonly tls?: readonly { readonly hosts?: readonly string[]; readonly secretName?: string }[];
    readonly rules?: readonly {
      readonly host?: string;
      readonly http?: { readonly paths: readonly { readonly path?: string; readonly pathType: string; readonly backend: IngressBackend }[] };
    }[];
  };
}

export interface IngressInput {
  readonly ingressClasses: readonly IngressClassLite[];
  readonly ingresses: readonly IngressLite[];
  readonly policies: readonly WebSocketPolicyLite[];
  readonly secrets: readonly SecretLite[];
}


export interface IngressStatus {
  readonly namespace: string;
  readonly name: string;
  /** metadata.uid, when known: the Events for the warnings name the Ingress by it (kubectl describe matches on it). */
  readonly uid?: string;
  readonly loadBalancer: readonly ({ readonly ip: string } | { readonly hostname: string })[];
  /** Annotations ignored or not mapped, backends and certificates that cannot be served: one Event and one log
   *  line each time the list changes. */
  readonly warnings: readonly string[];
}

/**
 * The Event reason for a warning, by the part of the Ingress it is about (the texts are made here and in
 * routing-apis.ts): an nginx annotation ignored or not mapped, a backend or TLS Secret that cannot be used, a
 * host the builder did not serve.
 */
export function ingressWarningReason(warning: string): string {
  if (warning.startsWith(nginxPrefix)) return 'IgnoredAnnotation';
  if (warning.startsWith('spec.tls')) return 'InvalidCertificateRef';
  if (warning.startsWith('spec.rules') || warning.startsWith('spec.defaultBackend')) return 'UnsupportedBackend';
  if (warning.startsWith('host ')) return 'HostNotServed';
  return 'IngressWarning';
}

export interface IngressTranslation {
  readonly routes: readonly TranslatedRoute[];
  readonly certificates: readonly ListenerCertificate[];
  readonly ingresses: readonly IngressStatus[];
  readonly policies: readonly PolicyStatus[];
}

/** `addresses`: of the Service wsgate runs behind (status.loadBalancer.ingress). */
export type IngressTranslator = (input: IngressInput, addresses: readonly PublishedAddress[]) => IngressTranslation;

export function createIngressTranslator(): IngressTranslator {
  const validatePolicy = createPolicyValidator();
  return (input, addresses) => translate(input, addresses, validatePolicy);
}

const keyOf = (m: { namespace?: string; name: string }) => `${m.namespace ?? 'default'}/${m.name}`;

function ourIngresses(input: IngressInput): IngressLite[] {
  const classes = input.ingressClasses.filter((c) => !c.metadata.deletionTimestamp && c.spec.controller === ingressControllerName);
  const names = new Set(classes.map((c) => c.metadata.name));
  const isDefault = classes.some((c) => c.metadata.annotations?.[defaultClassAnnotation] === 'true');
  return input.ingresses
    .filter((i) => !i.metadata.deletionTimestamp)
    .filter((i) => {
      const cls = i.spec.ingressClassName ?? i.metadata.annotations?.['kubernetes.io/ingress.class'];
      return cls === undefined ? isDefault : names.has(cls);
    })
    .sort((a, b) => cmp(keyOf(a.metadata), keyOf(b.metadata)));
}

function backendRef(b: IngressBackend, ignored: string[], where: string) {
  const port = b.service?.port?.number ?? b.service?.port?.name;
  if (b.service && port !== undefined) return { name: b.service.name, port, weight: 1 };
  ignored.push(`${where}: ${b.resource ? `resource ${b.resource.kind}/${b.resource.name}` : 'backend without a Service port'} cannot be served (503)`);
  return { name: unresolvableName('IngressBackend'), port: 1, weight: 1 };
}

function translate(input: IngressInput, addresses: readonly PublishedAddress[], validatePolicy: PolicyValidator): IngressTranslation {
  const policies = checkPolicies(input.policies, validatePolicy);
  const routes: TranslatedRoute[] = [];
  const certificates: ListenerCertificate[] = [];
  const statuses: IngressStatus[] = [];
  const served = new Set<string>();
  for (const ing of ourIngresses(input)) {
    const ns = ing.metadata.namespace ?? 'default';
    served.add(targetKey('Ingress', ns, ing.metadata.name));
    const mapped = mapNginxAnnotations(ing.metadata.annotations);
    const ignored = [...mapped.ignored];
    const blocks = { ...mapped.blocks, ...policies.byTarget.get(targetKey('Ingress', ns, ing.metadata.name)) };
    const byHost = new Map<string, { matches: unknown[]; backendRefs: unknown[] }[]>();
    (ing.spec.rules ?? []).forEach((r, i) => {
      const host = (r.host ?? '').toLowerCase();
      const rules = byHost.get(host) ?? [];
      byHost.set(host, rules);
      (r.http?.paths ?? []).forEach((p, j) => {
        const type = p.pathType === 'Exact' ? 'Exact' : 'PathPrefix';
        rules.push({ matches: [{ path: { type, value: p.path ?? '/' } }], backendRefs: [backendRef(p.backend, ignored, `spec.rules[${i}].http.paths[${j}]`)] });
      });
    });
    if (ing.spec.defaultBackend) {
      // The default backend takes what no rule matches, on every host (https://kubernetes.io/docs/concepts/services-networking/ingress/#default-backend).
      const rule = { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [backendRef(ing.spec.defaultBackend, ignored, 'spec.defaultBackend')] };
      const coversAll = (r: { matches: unknown[] }) => JSON.stringify(r.matches) === JSON.stringify(rule.matches);
      for (const rules of byHost.values()) if (!rules.some(coversAll)) rules.push(rule);
      if (!byHost.has('')) byHost.set('', [rule]);
    }
    for (const [host, rules] of [...byHost].sort(([a], [b]) => cmp(a, b))) {
      if (rules.length === 0) continue;
      const tlsSecret = ing.spec.tls?.find((t) => (t.hosts ?? []).map((h) => h.toLowerCase()).includes(host))?.secretName;
      if (tlsSecret && host) {
        const got = tlsSecretCertificate(input.secrets, ns, tlsSecret);
        if ('problem' in got) ignored.push(`spec.tls: Secret ${tlsSecret} for ${host}: ${got.problem}`);
        else certificates.push({ hostname: host, secret: { namespace: ns, name: tlsSecret }, certificate: got.certificate });
      }
      routes.push({
        apiVersion: 'wsgate.io/v1alpha1',
        kind: 'WebSocketRoute',
        metadata: {
          namespace: ns,
          name: `ingress:${ing.metadata.name}:${host || '*'}`,
          generation: ing.metadata.generation ?? 0,
          ...(ing.metadata.creationTimestamp ? { creationTimestamp: ing.metadata.creationTimestamp } : {}),
        },
        spec: { ...blocks, ...(host ? { hostnames: [host] } : {}), rules },
        permittedNamespaces: [],
      });
    }
    statuses.push({
      namespace: ns,
      name: ing.metadata.name,
      ...(ing.metadata.uid ? { uid: ing.metadata.uid } : {}),
      loadBalancer: addresses.map((a) => (a.type === 'IPAddress' ? { ip: a.value } : { hostname: a.value })),
      warnings: ignored.sort(),
    });
  }

  const policyStatuses: PolicyStatus[] = [];
  for (const p of [...input.policies].filter((x) => !x.metadata.deletionTimestamp).sort((a, b) => cmp(keyOf(a.metadata), keyOf(b.metadata)))) {
    const gen = p.metadata.generation ?? 0;
    const ancestors = [...(policies.outcomes.get(keyOf(p.metadata)) ?? [])]
      .filter(([tk]) => tk.startsWith('Ingress/'))
      .map(([tk, o]) => {
        const [, ns, name] = tk.split('/') as [string, string, string];
        const c = !served.has(tk)
          ? apiCondition('Accepted', false, 'TargetNotFound', `Ingress ${ns}/${name} is not served by wsgate`, gen)
          : o.reason === 'Accepted'
            ? apiCondition('Accepted', true, 'Accepted', 'policy accepted', gen)
            : o.reason === 'Conflicted'
              ? apiCondition('Accepted', false, 'Conflicted', `the older policy ${o.winner} targets Ingress ${ns}/${name}`, gen)
              : apiCondition('Accepted', false, 'Invalid', o.message, gen);
        return { ancestorRef: { group: 'networking.k8s.io', kind: 'Ingress', namespace: ns, name }, controllerName: ingressControllerName, conditions: [c] };
      });
    if (ancestors.length > 0) policyStatuses.push({ namespace: p.metadata.namespace ?? 'default', name: p.metadata.name, ancestors });
  }
  return {
    routes,
    certificates: certificates.sort((a, b) => cmp(a.hostname, b.hostname) || cmp(keyOf(a.secret), keyOf(b.secret))),
    ingresses: statuses,
    policies: policyStatuses,
  };
}
