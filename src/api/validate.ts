// The standalone validator and the builder's first check: ajv over the one schema, defaults applied.
import { Ajv, type ErrorObject } from 'ajv';
import { hostnamePattern, lowerCase, pathPattern, patternMeanings, routeSpecSchema, startsWithSlash } from './schema.ts';
import type { WebSocketRouteSpec } from './types.ts';

export interface SpecProblem {
  /** e.g. spec.rules[0].backendRefs[1].port */
  readonly path: string;
  readonly message: string;
}

export type SpecResult = { ok: true; spec: WebSocketRouteSpec } | { ok: false; problems: SpecProblem[] };

export interface SpecValidator {
  (spec: unknown): SpecResult;
}

/** Compiled once per process by its owner (the builder options / the CLI), not a module singleton. */
export function createSpecValidator(): SpecValidator {
  // verbose: errors carry the offending value, so a problem can name it.
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
  const check = ajv.compile(routeSpecSchema);
  return (spec: unknown): SpecResult => {
    // Defaults are written into the object: validate a copy so sources' objects stay untouched.
    const copy: unknown = structuredClone(spec);
    if (check(copy)) return { ok: true, spec: copy as WebSocketRouteSpec };
    return { ok: false, problems: dedupe((check.errors ?? []).filter(isUseful).map(toProblem)) };
  };
}

// anyOf reports each branch and then a summary; the summary alone reads best.
function isUseful(e: ErrorObject): boolean {
  return !(e.schemaPath.includes('/anyOf/') && e.keyword !== 'anyOf');
}

function toProblem(e: ErrorObject): SpecProblem {
  const path = 'spec' + e.instancePath.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  if (e.keyword === 'additionalProperties') {
    return { path: `${path}.${String(e.params.additionalProperty)}`, message: 'unknown field' };
  }
  if (e.keyword === 'enum') {
    return { path, message: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` };
  }
  if (e.keyword === 'pattern') {
    const said = celExplanations(String(e.params.pattern), e.data);
    if (said) return { path, message: said };
    const meaning = patternMeanings[String(e.params.pattern)];
    if (meaning !== undefined) return { path, message: `${JSON.stringify(e.data)} is not ${meaning}` };
  }
  if (e.keyword === 'anyOf') return { path, message: 'must be a port number (1-65535) or a port name' };
  return { path, message: e.message ?? e.keyword };
}

/**
 * The schema's CEL rules that explain a pattern (schema.ts startsWithSlash, lowerCase), mirrored so a file gets
 * the API server's message. Each rule fails only where its pattern does, so it is checked only then.
 */
const celMirrors: Readonly<Record<string, readonly { message: string; fails: (v: string) => boolean }[]>> = {
  [pathPattern]: [{ message: startsWithSlash.message, fails: (v) => !v.startsWith('/') }],
  // healthCheck.path
  '^/': [{ message: startsWithSlash.message, fails: (v) => !v.startsWith('/') }],
  // CEL's lowerAscii() lowers A-Z only.
  [hostnamePattern]: [{ message: lowerCase.message, fails: (v) => /[A-Z]/.test(v) }],
};

function celExplanations(pattern: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const failed = (celMirrors[pattern] ?? []).filter((r) => r.fails(value)).map((r) => r.message);
  return failed.length > 0 ? failed.join('; ') : undefined;
}

function dedupe(ps: SpecProblem[]): SpecProblem[] {
  const seen = new Set<string>();
  return ps.filter((p) => {
    const k = p.path + '\0' + p.message;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
