// HTTPRoute rules → WebSocketRoute rules. What an upgrade-only gateway can honour is translated (a rule's
// RequestHeaderModifier becomes its requestHeaders); anything else (regular expressions, query or method matches,
// other filters, a RequestHeaderModifier naming a header wsgate writes on the upgrade or with a value it cannot
// send, timeouts) makes the route Accepted=False UnsupportedValue, as the HTTPRoute spec asks of an
// implementation that does not support a field (https://gateway-api.sigs.k8s.io/reference/spec/#routeconditionreason).
import { headerNamePattern, headerValuePattern } from '../../api/schema.ts';
import { reservedHeaders } from '../cross-field.ts';
import { httpRouteFrom, referencePermitted } from './references.ts';
import type { BackendServiceLite, GatewayApiInput, HTTPBackendRef, HTTPRouteFilter, HTTPRouteLite, HTTPRouteMatch, HTTPRouteRule } from './types.ts';

export interface TranslatedBackendRef {
  readonly name: string;
  readonly namespace?: string;
  readonly port: number;
  readonly weight: number;
}

export interface TranslatedRule {
  readonly matches: readonly { readonly path: { readonly type: 'Exact' | 'PathPrefix'; readonly value: string }; readonly headers?: readonly { readonly name: string; readonly value: string }[] }[];
  readonly backendRefs: readonly TranslatedBackendRef[];
  /** The rule's RequestHeaderModifier, as the WebSocketRoute rule's requestHeaders (the same shape). */
  readonly requestHeaders?: NonNullable<HTTPRouteFilter['requestHeaderModifier']>;
}

export interface RefProblem {
  readonly reason: 'InvalidKind' | 'RefNotPermitted' | 'BackendNotFound' | 'UnsupportedProtocol';
  readonly message: string;
}

export interface TranslatedRules {
  readonly rules: readonly TranslatedRule[];
  /** Fields wsgate cannot honour: non-empty means Accepted=False UnsupportedValue. */
  readonly unsupported: readonly string[];
  readonly refProblems: readonly RefProblem[];
  /** From the backends' appProtocol; undefined when no backend says. */
  readonly protocol?: 'ws' | 'wss';
  /** Namespaces the route's backendRefs reach through a ReferenceGrant. */
  readonly grantedNamespaces: readonly string[];
}

/**
 * A backendRef that can never resolve: the name is not a valid Service name, so the builder reports it not found
 * and its share of the weight answers 503, as the spec asks for an invalid backendRef
 * (https://gateway-api.sigs.k8s.io/reference/spec/#httpbackendref).
 */
export const unresolvableName = (why: string) => `unresolved/${why}`.slice(0, 63);

// Backend protocol by appProtocol (https://gateway-api.sigs.k8s.io/guides/backend-protocol/): the standard
// kubernetes.io/ws and kubernetes.io/wss, and the IANA names http/https for the HTTP that upgrades.
const protocolByAppProtocol: Readonly<Record<string, 'ws' | 'wss'>> = {
  'kubernetes.io/ws': 'ws',
  'kubernetes.io/wss': 'wss',
  http: 'ws',
  https: 'wss',
};

const headerValue = new RegExp(headerValuePattern);
const headerName = new RegExp(headerNamePattern);

function translateMatch(m: HTTPRouteMatch, where: string, unsupported: string[]): TranslatedRule['matches'][number] | undefined {
  const pathType = m.path?.type ?? 'PathPrefix';
  let ok = true;
  if (pathType !== 'Exact' && pathType !== 'PathPrefix') {
    unsupported.push(`${where}.path.type ${pathType}`);
    ok = false;
  }
  for (const [i, h] of (m.headers ?? []).entries()) {
    if ((h.type ?? 'Exact') !== 'Exact') {
      unsupported.push(`${where}.headers[${i}].type ${h.type}`);
      ok = false;
    }
  }
  if ((m.queryParams ?? []).length > 0) {
    unsupported.push(`${where}.queryParams`);
    ok = false;
  }
  // A WebSocket upgrade is always a GET (RFC 6455 section 4.1), so a GET match is always met and any other never is.
  if (m.method !== undefined && m.method !== 'GET') {
    unsupported.push(`${where}.method ${m.method}`);
    ok = false;
  }
  if (!ok) return undefined;
  const headers = (m.headers ?? []).map((h) => ({ name: h.name, value: h.value }));
  return { path: { type: pathType as 'Exact' | 'PathPrefix', value: m.path?.value ?? '/' }, ...(headers.length ? { headers } : {}) };
}

function servicePort(services: readonly BackendServiceLite[], ns: string, name: string, port: number) {
  const svc = services.find((s) => s.metadata.namespace === ns && s.metadata.name === name);
  return { svc, port: svc?.spec.ports?.find((p) => p.port === port) };
}

export function translateRules(route: HTTPRouteLite, input: Pick<GatewayApiInput, 'services' | 'referenceGrants'>): TranslatedRules {
  const ns = route.metadata.namespace ?? 'default';
  const unsupported: string[] = [];
  const refProblems: RefProblem[] = [];
  const granted = new Set<string>();
  const protocols = new Set<'ws' | 'wss'>();

  const backend = (ref: HTTPBackendRef, where: string): TranslatedBackendRef => {
    const weight = ref.weight ?? 1;
    const refNs = ref.namespace ?? ns;
    const unresolved = (p: RefProblem): TranslatedBackendRef => {
      refProblems.push(p);
      return { name: unresolvableName(p.reason), port: 1, weight };
    };
    if ((ref.filters ?? []).length > 0) unsupported.push(`${where}.filters`);
    if ((ref.group ?? '') !== '' || (ref.kind ?? 'Service') !== 'Service') {
      return unresolved({ reason: 'InvalidKind', message: `${where}: kind ${ref.group ? `${ref.group}/` : ''}${ref.kind}: only core Services are supported` });
    }
    if (!referencePermitted(input.referenceGrants, httpRouteFrom(ns), { group: '', kind: 'Service', namespace: refNs, name: ref.name })) {
      return unresolved({ reason: 'RefNotPermitted', message: `${where}: Service ${refNs}/${ref.name}: no ReferenceGrant in ${refNs} permits it` });
    }
    if (ref.port === undefined) return unresolved({ reason: 'BackendNotFound', message: `${where}: Service ${refNs}/${ref.name}: port is required` });
    const { svc, port } = servicePort(input.services, refNs, ref.name, ref.port);
    if (!svc) return unresolved({ reason: 'BackendNotFound', message: `${where}: Service ${refNs}/${ref.name} not found` });
    if (!port) return unresolved({ reason: 'BackendNotFound', message: `${where}: Service ${refNs}/${ref.name} has no port ${ref.port}` });
    if (port.appProtocol !== undefined) {
      const p = protocolByAppProtocol[port.appProtocol];
      if (!p) return unresolved({ reason: 'UnsupportedProtocol', message: `${where}: appProtocol ${port.appProtocol} is not a WebSocket protocol` });
      protocols.add(p);
    }
    if (refNs !== ns) granted.add(refNs);
    return { name: ref.name, ...(refNs !== ns ? { namespace: refNs } : {}), port: ref.port, weight };
  };

  const rules = (route.spec.rules?.length ? route.spec.rules : [{} as HTTPRouteRule]).map((rule, i): TranslatedRule => {
    const where = `spec.rules[${i}]`;
    if (rule.timeouts !== undefined) unsupported.push(`${where}.timeouts`);
    if (rule.retry !== undefined) unsupported.push(`${where}.retry`);
    if (rule.sessionPersistence !== undefined) unsupported.push(`${where}.sessionPersistence (use a WebSocketPolicy sessionAffinity)`);
    let requestHeaders: TranslatedRule['requestHeaders'];
    for (const [j, f] of (rule.filters ?? []).entries()) {
      if (f.type === 'RequestHeaderModifier' && f.requestHeaderModifier && !requestHeaders) {
        requestHeaders = f.requestHeaderModifier;
        const at = `${where}.filters[${j}].requestHeaderModifier`;
        for (const r of reservedHeaders(requestHeaders, at)) unsupported.push(`${r.path} ${r.name} (written by wsgate on the upgrade)`);
        // The HTTPRoute CRD bounds a value's length only, and gives remove's names no pattern; wsgate sends
        // printable US-ASCII and refuses what is no header name (schema.ts).
        for (const list of ['set', 'add'] as const) {
          for (const [k, h] of (requestHeaders[list] ?? []).entries()) if (!headerValue.test(h.value)) unsupported.push(`${at}.${list}[${k}].value (not printable US-ASCII)`);
        }
        for (const [k, n] of (requestHeaders.remove ?? []).entries()) if (!headerName.test(n)) unsupported.push(`${at}.remove[${k}] (not a header name)`);
      } else unsupported.push(`${where}.filters[${j}].type ${f.type}`);
    }
    const matches = (rule.matches?.length ? rule.matches : [{}]).flatMap((m, j) => translateMatch(m, `${where}.matches[${j}]`, unsupported) ?? []);
    const refs = rule.backendRefs ?? [];
    // A rule without backendRefs answers every request with an error (500 in the spec; 503 here).
    const backendRefs = refs.length > 0 ? refs.map((r, j) => backend(r, `${where}.backendRefs[${j}]`)) : [{ name: unresolvableName('NoBackendRefs'), port: 1, weight: 1 }];
    return { matches, backendRefs, ...(requestHeaders ? { requestHeaders } : {}) };
  });

  if (protocols.size > 1) {
    refProblems.push({ reason: 'UnsupportedProtocol', message: 'backends mix kubernetes.io/ws and kubernetes.io/wss; one route dials one protocol' });
  }
  const protocol = protocols.size === 1 ? [...protocols][0] : undefined;
  return { rules, unsupported, refProblems, ...(protocol ? { protocol } : {}), grantedNamespaces: [...granted].sort() };
}
