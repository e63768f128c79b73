// Test double: label and field selectors with the real API server's syntax (equality, inequality, existence,
// set-based), so list and watch filter exactly as a client asked.
import { errors } from './errors.ts';
import type { KObject } from './resources.ts';

type Requirement =
  | { op: 'eq' | 'ne'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

export type Selector = (obj: KObject) => boolean;

export const matchAll: Selector = () => true;

/** Splits on commas that are not inside parentheses ("a in (x,y),b=c"). */
function splitTop(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function parseRequirement(part: string): Requirement {
  let m = /^!\s*([\w./-]+)$/.exec(part);
  if (m) return { op: 'notexists', key: m[1]! };
  m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
  if (m) return { op: m[2] as 'in' | 'notin', key: m[1]!, values: m[3]!.split(',').map((v) => v.trim()) };
  m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(part);
  if (m) return { op: m[2] === '!=' ? 'ne' : 'eq', key: m[1]!, value: m[3]! };
  m = /^([\w./-]+)$/.exec(part);
  if (m) return { op: 'exists', key: m[1]! };
  throw errors.badRequest(`unable to parse requirement: ${JSON.stringify(part)}`);
}

function test(req: Requirement, get: (key: string) => string | undefined): boolean {
  const v = get(req.key);
  switch (req.op) {
    case 'eq': return v === req.value;
    case 'ne': return v !== req.value;
    case 'in': return v !== undefined && req.values.includes(v);
    case 'notin': return v === undefined || !req.values.includes(v);
    case 'exists': return v !== undefined;
    case 'notexists': return v === undefined;
  }
}

export function parseLabelSelector(raw: string | null): Selector {
  if (raw === null || raw.trim() === '') return matchAll;
  const reqs = splitTop(raw).map(parseRequirement);
  return (obj) => reqs.every((r) => test(r, (k) => obj.metadata.labels?.[k]));
}

/** Field selectors support only equality and inequality, on the fields each type indexes; these are the common ones. */
export function parseFieldSelector(raw: string | null): Selector {
  if (raw === null || raw.trim() === '') return matchAll;
  const reqs = splitTop(raw).map(parseRequirement);
  for (const r of reqs) {
    if (r.op !== 'eq' && r.op !== 'ne') throw errors.badRequest(`invalid field selector: ${JSON.stringify(raw)}`);
    if (!['metadata.name', 'metadata.namespace', 'type'].includes(r.key)) {
      throw errors.badRequest(`field label not supported: ${r.key}`);
    }
  }
  return (obj) =>
    reqs.every((r) =>
      test(r, (k) => {
        if (k === 'metadata.name') return obj.metadata.name;
        if (k === 'metadata.namespace') return obj.metadata.namespace;
        return typeof obj[k] === 'string' ? (obj[k] as string) : undefined;
      }),
    );
}
