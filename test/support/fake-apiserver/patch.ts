// Test double: PATCH bodies. JSON merge patch (RFC 7386) and a compact server-side apply: field ownership per
// leaf (list-maps such as status.conditions expanded by key), conflicts with other managers unless force,
// fields a manager stops applying are removed. Not modelled: shared ownership, managedFields in the object,
// ownership of metadata other than labels and annotations.
import { isDeepStrictEqual } from 'node:util';
import { errors } from './errors.ts';
import type { KObject, ResourceType } from './resources.ts';

type Segment = string | { readonly k: string; readonly v: string };
/** Leaf path (JSON of its segments) → manager that owns it. */
export type Ownership = Map<string, string>;
export type Scope = 'main' | 'status';

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function listKeyAt(res: ResourceType, path: readonly Segment[]): string | undefined {
  if (path.some((s) => typeof s !== 'string')) return undefined;
  return res.listMapKeys[path.join('.')];
}

function collectLeaves(res: ResourceType, value: unknown, path: Segment[], out: Map<string, unknown>): void {
  const key = Array.isArray(value) ? listKeyAt(res, path) : undefined;
  if (isPlain(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) collectLeaves(res, v, [...path, k], out);
  } else if (Array.isArray(value) && key !== undefined) {
    for (const item of value) {
      if (isPlain(item)) collectLeaves(res, item, [...path, { k: key, v: String(item[key]) }], out);
    }
  } else if (path.length > 0) out.set(JSON.stringify(path), value);
}

/** The part of an object a scope covers: status alone, or everything but status and server-owned metadata. */
function scoped(obj: Plain, scope: Scope): Plain {
  if (scope === 'status') return obj['status'] === undefined ? {} : { status: obj['status'] };
  const out: Plain = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'status' || k === 'apiVersion' || k === 'kind') continue;
    if (k === 'metadata' && isPlain(v)) {
      const meta: Plain = {};
      if (v['labels'] !== undefined) meta['labels'] = v['labels'];
      if (v['annotations'] !== undefined) meta['annotations'] = v['annotations'];
      out['metadata'] = meta;
    } else out[k] = v;
  }
  return out;
}

function leavesOf(res: ResourceType, obj: Plain, scope: Scope): Map<string, unknown> {
  const out = new Map<string, unknown>();
  collectLeaves(res, scoped(obj, scope), [], out);
  return out;
}

function inScope(path: string, scope: Scope): boolean {
  const first = (JSON.parse(path) as Segment[])[0];
  return scope === 'status' ? first === 'status' : first !== 'status';
}

function readable(path: string): string {
  return (JSON.parse(path) as Segment[]).map((s) => (typeof s === 'string' ? s : `[${s.k}="${s.v}"]`)).join('.').replace(/\.\[/g, '[');
}

/** Removes one leaf and prunes the containers (and list-map items) it leaves empty. */
function removeLeaf(root: Plain, path: readonly Segment[], itemKey?: string): void {
  const [head, ...rest] = path;
  if (head === undefined || typeof head !== 'string') return;
  const child = root[head];
  if (rest.length === 0) {
    if (head !== itemKey) delete root[head];
    return;
  }
  const next = rest[0]!;
  if (typeof next !== 'string' && Array.isArray(child)) {
    const idx = child.findIndex((it) => isPlain(it) && String(it[next.k]) === next.v);
    if (idx < 0) return;
    const item = child[idx] as Plain;
    // The key field stays until the item's last other field goes, so the item can still be found.
    removeLeaf(item, rest.slice(1), next.k);
    if (Object.keys(item).length === 0 || (Object.keys(item).length === 1 && next.k in item)) child.splice(idx, 1);
  } else if (isPlain(child)) {
    removeLeaf(child, rest);
    if (Object.keys(child).length === 0) delete root[head];
  }
}

function mergeInto(res: ResourceType, target: Plain, src: Plain, path: string[]): void {
  for (const [k, v] of Object.entries(src)) {
    const here = [...path, k];
    const key = Array.isArray(v) ? res.listMapKeys[here.join('.')] : undefined;
    const cur = target[k];
    if (isPlain(v) && isPlain(cur)) mergeInto(res, cur, v, here);
    else if (key !== undefined && Array.isArray(cur)) {
      for (const item of v as unknown[]) {
        const match = isPlain(item) ? cur.find((c) => isPlain(c) && c[key] === item[key]) : undefined;
        if (isPlain(match) && isPlain(item)) Object.assign(match, structuredClone(item));
        else cur.push(structuredClone(item));
      }
    } else target[k] = structuredClone(v);
  }
}

/**
 * Server-side apply of `applied` by `manager` over `existing` (undefined: the object does not exist yet).
 * Returns the merged object; `ownership` is updated in place.
 */
export function serverSideApply(
  res: ResourceType, existing: KObject | undefined, ownership: Ownership, applied: KObject, manager: string, force: boolean, scope: Scope,
): KObject {
  const target = { group: res.group, plural: res.plural, name: applied.metadata?.name };
  const want = leavesOf(res, applied, scope);
  const have = existing ? leavesOf(res, existing, scope) : new Map<string, unknown>();
  const conflicts: { manager: string; path: string }[] = [];
  for (const [p, v] of want) {
    const owner = ownership.get(p);
    if (owner !== undefined && owner !== manager && have.has(p) && !isDeepStrictEqual(have.get(p), v)) conflicts.push({ manager: owner, path: readable(p) });
  }
  if (conflicts.length > 0 && !force) throw errors.applyConflict(target, conflicts);
  const result = structuredClone(existing ?? ({ apiVersion: applied.apiVersion, kind: applied.kind, metadata: { name: applied.metadata.name, namespace: applied.metadata.namespace } } as KObject));
  for (const [p, owner] of [...ownership]) {
    if (owner === manager && inScope(p, scope) && !want.has(p)) {
      removeLeaf(result, JSON.parse(p) as Segment[]);
      ownership.delete(p);
    }
  }
  mergeInto(res, result, scoped(applied, scope), []);
  for (const p of want.keys()) ownership.set(p, manager);
  return result;
}

/** A non-apply write by `manager`: it owns the leaves it changed; removed leaves lose their owner. */
export function recordUpdate(res: ResourceType, before: KObject | undefined, after: KObject, ownership: Ownership, manager: string): void {
  for (const scope of ['main', 'status'] as const) {
    const was = before ? leavesOf(res, before, scope) : new Map<string, unknown>();
    const now = leavesOf(res, after, scope);
    for (const [p, v] of now) if (!was.has(p) || !isDeepStrictEqual(was.get(p), v)) ownership.set(p, manager);
    for (const p of was.keys()) if (!now.has(p)) ownership.delete(p);
  }
}

/** RFC 7386: objects merge recursively, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlain(patch)) return structuredClone(patch);
  const out: Plain = isPlain(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
