// Test double: the object store behind the fake API server, with etcd-like semantics: one cluster-wide
// resourceVersion counter, a bounded event history (watches from before it get 410 Gone), no-op writes that
// change nothing (no new resourceVersion, no event), optimistic concurrency, generation bumps on spec changes
// only, /status isolation, finalizers.
import { randomBytes, randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { load as loadYaml } from 'js-yaml';
import { ApiError, errors } from './errors.ts';
import { mergePatch, recordUpdate, serverSideApply, type Ownership } from './patch.ts';
import { apiVersionOf, typeKey, type KObject, type ResourceType } from './resources.ts';
import type { Selector } from './selectors.ts';
import { applyDefaults, validate } from './validation.ts';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly type: EventType;
  readonly rv: number;
  readonly resource: ResourceType;
  readonly object: KObject;
  /** The object before this event (MODIFIED only): watches with a label selector need both. */
  readonly previous?: KObject;
}

interface Entry {
  obj: KObject;
  readonly ownership: Ownership;
}

export interface WriteOptions {
  readonly subresource?: 'status';
  /** fieldManager query parameter (Update operations default to "unknown"). */
  readonly fieldManager?: string;
}

export interface PatchOptions extends WriteOptions {
  readonly contentType: string;
  readonly body: string;
  readonly force?: boolean;
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Everything the generation counts: the object minus metadata and status. */
function specPart(obj: KObject): unknown {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

export class Store {
  private rv: number;
  private compactedRv: number;
  private readonly objects = new Map<string, Map<string, Entry>>();
  private history: StoreEvent[] = [];
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly historyLimit: number;
  private readonly now: () => Date;

  constructor(opts: { historyLimit: number; now: () => Date }) {
    this.historyLimit = opts.historyLimit;
    this.now = opts.now;
    this.rv = 1000;
    this.compactedRv = this.rv;
  }

  currentRv(): number {
    return this.rv;
  }

  oldestRv(): number {
    return this.compactedRv;
  }

  /** Forgets all history: a watch from any version before now gets 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Events after `rv`, or undefined when some of them are no longer retained. */
  since(rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.history.filter((e) => e.rv > rv);
  }

  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private table(res: ResourceType): Map<string, Entry> {
    const key = typeKey(res);
    let t = this.objects.get(key);
    if (!t) this.objects.set(key, (t = new Map()));
    return t;
  }

  private entry(res: ResourceType, ns: string, name: string): Entry {
    const e = this.table(res).get(`${ns}/${name}`);
    if (!e) throw errors.notFound({ group: res.group, plural: res.plural, name });
    return e;
  }

  get(res: ResourceType, ns: string, name: string): KObject {
    return structuredClone(this.entry(res, ns, name).obj);
  }

  list(res: ResourceType, ns: string | undefined, selector: Selector): { items: KObject[]; rv: number } {
    const items: KObject[] = [];
    for (const { obj } of this.table(res).values()) {
      if ((ns === undefined || obj.metadata.namespace === ns) && selector(obj)) items.push(structuredClone(obj));
    }
    items.sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    return { items, rv: this.rv };
  }

  private checkTypeMeta(res: ResourceType, obj: KObject): void {
    if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersionOf(res)) {
      throw errors.badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(res)})`);
    }
    if (obj.kind !== undefined && obj.kind !== res.kind) throw errors.badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${res.kind})`);
    obj.apiVersion = apiVersionOf(res);
    obj.kind = res.kind;
  }

  private checkNames(res: ResourceType, obj: KObject, ns: string, name?: string): void {
    if (typeof obj.metadata !== 'object' || obj.metadata === null) throw errors.badRequest('Object has no metadata');
    if (res.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== ns) throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      obj.metadata.namespace = ns;
    }
    if (name !== undefined && obj.metadata.name !== name) throw errors.badRequest(`the name of the object (${obj.metadata.name ?? ''}) does not match the name on the URL (${name})`);
  }

  create(res: ResourceType, ns: string, body: KObject, opts: WriteOptions = {}): KObject {
    const obj = structuredClone(body);
    this.checkTypeMeta(res, obj);
    this.checkNames(res, obj, ns);
    if (obj.metadata.resourceVersion) throw errors.badRequest('resourceVersion should not be set on objects to be created');
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = obj.metadata.generateName + randomBytes(3).toString('hex').slice(0, 5);
    if (res.hasStatus) delete obj['status'];
    applyDefaults(res, obj);
    validate(res, obj, undefined);
    const key = `${ns}/${obj.metadata.name}`;
    if (this.table(res).has(key)) throw errors.alreadyExists({ group: res.group, plural: res.plural, name: obj.metadata.name });
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata['managedFields'];
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = timestamp(this.now());
    if (res.generation) obj.metadata.generation = 1;
    const ownership: Ownership = new Map();
    recordUpdate(res, undefined, obj, ownership, opts.fieldManager ?? 'unknown');
    return this.commit(res, key, undefined, obj, ownership);
  }

  update(res: ResourceType, ns: string, name: string, body: KObject, opts: WriteOptions = {}): KObject {
    const old = this.entry(res, ns, name);
    const obj = structuredClone(body);
    this.checkTypeMeta(res, obj);
    this.checkNames(res, obj, ns, name);
    const rv = obj.metadata.resourceVersion;
    if (!rv && !res.unconditionalUpdate) {
      throw errors.invalid({ group: res.group, plural: res.plural, name }, res.kind, [
        { reason: 'FieldValueInvalid', message: 'Invalid value: 0x0: must be specified for an update', field: 'metadata.resourceVersion' },
      ]);
    }
    if (rv && rv !== old.obj.metadata.resourceVersion) throw errors.conflict({ group: res.group, plural: res.plural, name });
    const next = this.prepareUpdate(res, old.obj, obj, opts.subresource);
    recordUpdate(res, old.obj, next, old.ownership, opts.fieldManager ?? 'unknown');
    return this.commit(res, `${ns}/${name}`, old.obj, next, old.ownership);
  }

  patch(res: ResourceType, ns: string, name: string, opts: PatchOptions): KObject {
    const type = opts.contentType.split(';')[0]!.trim();
    const target = { group: res.group, plural: res.plural, name };
    const existing = this.table(res).get(`${ns}/${name}`);
    if (type === 'application/apply-patch+yaml') {
      if (!opts.fieldManager) throw errors.badRequest('PATCH /apply: fieldManager is required for apply requests');
      let applied: KObject;
      try {
        applied = loadYaml(opts.body) as KObject;
      } catch (err) {
        throw errors.badRequest(`error decoding YAML: ${(err as Error).message}`);
      }
      if (typeof applied !== 'object' || applied === null || !applied.apiVersion || !applied.kind) throw errors.badRequest('apiVersion and kind must be set in an apply configuration');
      this.checkTypeMeta(res, applied);
      this.checkNames(res, applied, ns, name);
      if (!existing) {
        if (opts.subresource) throw errors.notFound(target);
        const ownership: Ownership = new Map();
        const created = serverSideApply(res, undefined, ownership, applied, opts.fieldManager, opts.force === true, 'main');
        return this.createApplied(res, ns, created, ownership);
      }
      const merged = serverSideApply(res, existing.obj, new Map(existing.ownership), applied, opts.fieldManager, opts.force === true, opts.subresource ?? 'main');
      const next = this.prepareUpdate(res, existing.obj, merged, opts.subresource);
      // Ownership changes only when the write is accepted: re-run on the live map now that validation passed.
      serverSideApply(res, existing.obj, existing.ownership, applied, opts.fieldManager, true, opts.subresource ?? 'main');
      return this.commit(res, `${ns}/${name}`, existing.obj, next, existing.ownership);
    }
    if (type === 'application/merge-patch+json') {
      if (!existing) throw errors.notFound(target);
      let patch: unknown;
      try {
        patch = JSON.parse(opts.body);
      } catch (err) {
        throw errors.badRequest(`error decoding patch: ${(err as Error).message}`);
      }
      const merged = mergePatch(existing.obj, patch) as KObject;
      const rv = (patch as { metadata?: { resourceVersion?: string } } | null)?.metadata?.resourceVersion;
      if (rv && rv !== existing.obj.metadata.resourceVersion) throw errors.conflict(target);
      this.checkTypeMeta(res, merged);
      this.checkNames(res, merged, ns, name);
      const next = this.prepareUpdate(res, existing.obj, merged, opts.subresource);
      recordUpdate(res, existing.obj, next, existing.ownership, opts.fieldManager ?? 'unknown');
      return this.commit(res, `${ns}/${name}`, existing.obj, next, existing.ownership);
    }
    throw errors.unsupportedMediaType(type);
  }

  private createApplied(res: ResourceType, ns: string, obj: KObject, ownership: Ownership): KObject {
    if (res.hasStatus) delete obj['status'];
    applyDefaults(res, obj);
    validate(res, obj, undefined);
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = timestamp(this.now());
    if (res.generation) obj.metadata.generation = 1;
    return this.commit(res, `${ns}/${obj.metadata.name}`, undefined, obj, ownership);
  }

  /** The object an update would store: system metadata kept, status or spec masked by subresource, generation. */
  private prepareUpdate(res: ResourceType, old: KObject, candidate: KObject, subresource: 'status' | undefined): KObject {
    let next: KObject;
    if (subresource === 'status') {
      if (!res.hasStatus) throw errors.notFound({ group: res.group, plural: `${res.plural}/status`, name: old.metadata.name });
      next = structuredClone(old);
      if (candidate['status'] === undefined) delete next['status'];
      else next['status'] = structuredClone(candidate['status']);
    } else {
      next = structuredClone(candidate);
      next.metadata = { ...candidate.metadata };
      if (res.hasStatus) {
        if (old['status'] === undefined) delete next['status'];
        else next['status'] = structuredClone(old['status']);
      }
      for (const k of ['uid', 'creationTimestamp', 'generation', 'deletionTimestamp'] as const) {
        if (old.metadata[k] === undefined) delete next.metadata[k];
        else next.metadata[k] = old.metadata[k] as never;
      }
      delete next.metadata['managedFields'];
      applyDefaults(res, next);
    }
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    validate(res, next, old);
    if (res.generation && !isDeepStrictEqual(specPart(old), specPart(next))) next.metadata.generation = (old.metadata.generation ?? 0) + 1;
    return next;
  }

  delete(res: ResourceType, ns: string, name: string): KObject {
    const entry = this.entry(res, ns, name);
    if ((entry.obj.metadata.finalizers ?? []).length > 0) {
      if (entry.obj.metadata.deletionTimestamp) return structuredClone(entry.obj);
      const next = structuredClone(entry.obj);
      next.metadata.deletionTimestamp = timestamp(this.now());
      return this.commit(res, `${ns}/${name}`, entry.obj, next, entry.ownership);
    }
    return this.remove(res, `${ns}/${name}`, entry.obj);
  }

  private remove(res: ResourceType, key: string, obj: KObject): KObject {
    this.table(res).delete(key);
    const gone = structuredClone(obj);
    gone.metadata.resourceVersion = String(++this.rv);
    this.record({ type: 'DELETED', rv: this.rv, resource: res, object: gone });
    return structuredClone(gone);
  }

  private commit(res: ResourceType, key: string, old: KObject | undefined, next: KObject, ownership: Ownership): KObject {
    if (old && isDeepStrictEqual(old, next)) return structuredClone(old);
    if (old && next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) return this.remove(res, key, next);
    next.metadata.resourceVersion = String(++this.rv);
    this.table(res).set(key, { obj: next, ownership });
    this.record({ type: old ? 'MODIFIED' : 'ADDED', rv: this.rv, resource: res, object: structuredClone(next), ...(old ? { previous: old } : {}) });
    return structuredClone(next);
  }

  private record(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
      }
    }
  }
}
