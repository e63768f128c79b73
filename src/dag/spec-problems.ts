// Everything the builder checks after the schema: the CEL rules mirrored (cross-field.ts) and values whose
// validity a pattern only approximates, decided by the same parser the proxy uses. `wsgate validate` runs the
// same function, so a file it passes is one the builder accepts.
import type { WebSocketRouteSpec } from '../api/types.ts';
import type { SpecProblem } from '../api/validate.ts';
import { parseCidr } from '../util/cidr.ts';
import { crossFieldProblems } from './cross-field.ts';

export function specProblems(spec: WebSocketRouteSpec): SpecProblem[] {
  return [...crossFieldProblems(spec), ...valueProblems(spec)];
}

/** clientIPs entries the CIDR pattern lets through but that are no address (10.0.0.256, 1::2::3), a jwksUrl
 *  that is no URL, and a static address listed as both serving and draining. */
export function valueProblems(spec: WebSocketRouteSpec): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const field of ['allow', 'deny'] as const) {
    spec.clientIPs?.[field]?.forEach((entry, i) => {
      const c = parseCidr(entry);
      if (typeof c === 'string') out.push({ path: `spec.clientIPs.${field}[${i}]`, message: `${JSON.stringify(entry)} ${c}` });
    });
  }
  // The pattern only checks the scheme; a URL that does not parse would fail at the first handshake instead.
  const jwksUrl = spec.auth?.jwt?.jwksUrl;
  if (jwksUrl !== undefined && !URL.canParse(jwksUrl)) out.push({ path: 'spec.auth.jwt.jwksUrl', message: `${JSON.stringify(jwksUrl)} is not a URL` });
  spec.rules.forEach((rule, i) =>
    (rule.backendRefs ?? []).forEach((ref, j) => {
      const active = new Set(ref.endpoints ?? []);
      ref.drainingEndpoints?.forEach((a, k) => {
        if (active.has(a)) out.push({ path: `spec.rules[${i}].backendRefs[${j}].drainingEndpoints[${k}]`, message: `${JSON.stringify(a)} is also in endpoints; an endpoint is either serving or draining` });
      });
    }),
  );
  return out;
}
