// The CEL rules of the schema (x-kubernetes-validations), mirrored: a route that reached us without the API
// server checking them (standalone mode, an older CRD) gets the same answer. Keep the two in step; the CRD
// test reads the rules from the schema and this file names each one.
import { notReservedHeader, reservedRequestHeaders } from '../api/schema.ts';
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { SpecProblem } from '../api/validate.ts';

/** The schema's notReservedHeader rule: a request header wsgate writes itself, which no rewrite may name. */
export function isReservedHeader(name: string): boolean {
  const l = name.toLowerCase();
  return (reservedRequestHeaders.names as readonly string[]).includes(l) || reservedRequestHeaders.prefixes.some((p) => l.startsWith(p));
}

type RequestHeaders = NonNullable<WebSocketRouteSpec['rules'][number]['requestHeaders']>;

/** The reserved names a rewrite (a rule's requestHeaders or an HTTPRoute's RequestHeaderModifier) names, with
 *  their field paths under `where`. */
export function reservedHeaders(
  rh: { readonly set?: readonly { name: string }[]; readonly add?: readonly { name: string }[]; readonly remove?: readonly string[] },
  where: string,
): { path: string; name: string }[] {
  return [
    ...(['set', 'add'] as const).flatMap((list) => (rh[list] ?? []).flatMap((h, k) => (isReservedHeader(h.name) ? [{ path: `${where}.${list}[${k}].name`, name: h.name }] : []))),
    ...(rh.remove ?? []).flatMap((name, k) => (isReservedHeader(name) ? [{ path: `${where}.remove[${k}]`, name }] : [])),
  ];
}

function requestHeaderProblems(rh: RequestHeaders, where: string): SpecProblem[] {
  return reservedHeaders(rh, where).map(({ path, name }) => ({ path, message: `${JSON.stringify(name)} ${notReservedHeader.message}` }));
}

export function crossFieldProblems(spec: WebSocketRouteSpec): SpecProblem[] {
  const out: SpecProblem[] = [];
  spec.rules.forEach((rule, i) => {
    if ((rule.backendRefs !== undefined) === (rule.llm !== undefined)) out.push({ path: `spec.rules[${i}]`, message: 'set exactly one of backendRefs or llm' });
    if (rule.llm !== undefined && rule.requestHeaders !== undefined) {
      out.push({ path: `spec.rules[${i}]`, message: 'requestHeaders is for backendRefs: wsgate answers an llm rule itself' });
    }
    if (rule.requestHeaders) out.push(...requestHeaderProblems(rule.requestHeaders, `spec.rules[${i}].requestHeaders`));
    rule.llm?.providers.forEach((p, j) => {
      if ((p.credentials.secretName !== undefined) === (p.credentials.file !== undefined)) {
        out.push({ path: `spec.rules[${i}].llm.providers[${j}].credentials`, message: 'set exactly one of secretName or file' });
      }
    });
    (rule.backendRefs ?? []).forEach((ref, j) => {
      const path = `spec.rules[${i}].backendRefs[${j}]`;
      if ((ref.name !== undefined) === (ref.endpoints !== undefined)) {
        out.push({ path, message: 'exactly one of name (a Service) or endpoints must be set' });
      }
      if (ref.name !== undefined && ref.port === undefined) out.push({ path, message: 'port is required with name' });
      if (ref.endpoints !== undefined && ref.port !== undefined) {
        out.push({ path, message: 'port is only for a Service reference' });
      }
      if (ref.drainingEndpoints !== undefined && ref.endpoints === undefined) {
        out.push({ path, message: 'drainingEndpoints needs endpoints (an empty list when every endpoint drains)' });
      }
    });
  });
  const tls = spec.tls;
  if (tls && tls.secretName === undefined && (tls.certFile === undefined || tls.keyFile === undefined)) {
    out.push({ path: 'spec.tls', message: 'set secretName, or both certFile and keyFile' });
  }
  const aff = spec.sessionAffinity;
  if (aff?.type === 'Header' && !aff.header) out.push({ path: 'spec.sessionAffinity', message: 'type Header needs header.name' });
  if (aff?.type === 'QueryParam' && !aff.queryParam) {
    out.push({ path: 'spec.sessionAffinity', message: 'type QueryParam needs queryParam.name' });
  }
  if (aff?.type === 'JwtClaim' && !aff.jwtClaim) out.push({ path: 'spec.sessionAffinity', message: 'type JwtClaim needs jwtClaim.name' });
  const jwt = spec.auth?.jwt;
  if (jwt && [jwt.jwksUrl, jwt.secretName, jwt.keyFile].filter((x) => x !== undefined).length !== 1) {
    out.push({ path: 'spec.auth.jwt', message: 'set exactly one of jwksUrl, secretName or keyFile' });
  }
  const key = spec.auth?.apiKey;
  if (key && (key.secretName !== undefined) === (key.file !== undefined)) {
    out.push({ path: 'spec.auth.apiKey', message: 'set exactly one of secretName or file' });
  }
  if (key && key.header === undefined && key.queryParam === undefined) {
    out.push({ path: 'spec.auth.apiKey', message: 'set header or queryParam' });
  }
  return out;
}
