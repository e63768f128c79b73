// Test double: the resource types the fake API server knows, with the per-type behaviour the real API server
// gets from each type's registry strategy (generation, status subresource, unconditional updates).

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Has a /status subresource: main writes keep the old status, /status writes keep everything else. */
  readonly hasStatus: boolean;
  /** metadata.generation is set to 1 on create and bumped when anything outside metadata and status changes. */
  readonly generation: boolean;
  /** Custom resources refuse a PUT without metadata.resourceVersion; built-in types accept it. */
  readonly unconditionalUpdate: boolean;
  /** Lists that server-side apply merges by key instead of replacing (listType=map), by path. */
  readonly listMapKeys: Readonly<Record<string, string>>;
  /** Defined by a CRD: list items keep apiVersion and kind (built-in lists drop them). */
  readonly custom: boolean;
  readonly shortNames?: readonly string[];
}

export type KObject = {
  apiVersion?: string;
  kind?: string;
  metadata: KMeta;
  [field: string]: unknown;
};

export interface KMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [field: string]: unknown;
}

export function apiVersionOf(r: ResourceType): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`;
}

/** "group/version/plural", the store's key for a type. */
export function typeKey(r: ResourceType): string {
  return `${r.group}/${r.version}/${r.plural}`;
}

export const websocketRoutes: ResourceType = {
  group: 'wsgate.io', version: 'v1alpha1', plural: 'websocketroutes', singular: 'websocketroute', kind: 'WebSocketRoute',
  namespaced: true, hasStatus: true, generation: true, unconditionalUpdate: false,
  listMapKeys: { 'status.conditions': 'type' }, custom: true, shortNames: ['wsr'],
};

export const builtinResources: readonly ResourceType[] = [
  {
    group: '', version: 'v1', plural: 'services', singular: 'service', kind: 'Service', namespaced: true, hasStatus: true,
    generation: false, unconditionalUpdate: true, listMapKeys: { 'status.conditions': 'type' }, custom: false, shortNames: ['svc'],
  },
  {
    group: '', version: 'v1', plural: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, hasStatus: false,
    generation: false, unconditionalUpdate: true, listMapKeys: {}, custom: false,
  },
  {
    group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', singular: 'endpointslice', kind: 'EndpointSlice',
    namespaced: true, hasStatus: false, generation: true, unconditionalUpdate: true, listMapKeys: {}, custom: false,
  },
  {
    group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, hasStatus: true,
    generation: false, unconditionalUpdate: true, listMapKeys: {}, custom: false, shortNames: ['ns'],
  },
  {
    group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', singular: 'ingress', kind: 'Ingress', namespaced: true, hasStatus: true,
    generation: true, unconditionalUpdate: true, listMapKeys: {}, custom: false, shortNames: ['ing'],
  },
  {
    group: 'networking.k8s.io', version: 'v1', plural: 'ingressclasses', singular: 'ingressclass', kind: 'IngressClass', namespaced: false,
    hasStatus: false, generation: true, unconditionalUpdate: true, listMapKeys: {}, custom: false,
  },
  {
    group: 'coordination.k8s.io', version: 'v1', plural: 'leases', singular: 'lease', kind: 'Lease', namespaced: true,
    hasStatus: false, generation: false, unconditionalUpdate: true, listMapKeys: {}, custom: false,
  },
];

/** A CustomResourceDefinition object (apiextensions.k8s.io/v1) → the type it serves (its storage version). */
export function resourceFromCrd(crd: {
  spec: {
    group: string;
    names: { plural: string; singular?: string; kind: string; shortNames?: string[] };
    scope: string;
    versions: { name: string; served?: boolean; storage?: boolean; subresources?: { status?: object } }[];
  };
}): ResourceType {
  const version = crd.spec.versions.find((v) => v.storage) ?? crd.spec.versions[0];
  if (!version) throw new Error('CRD has no versions');
  return {
    group: crd.spec.group,
    version: version.name,
    plural: crd.spec.names.plural,
    singular: crd.spec.names.singular ?? crd.spec.names.kind.toLowerCase(),
    kind: crd.spec.names.kind,
    namespaced: crd.spec.scope === 'Namespaced',
    hasStatus: version.subresources?.status !== undefined,
    generation: true,
    unconditionalUpdate: false,
    listMapKeys: { 'status.conditions': 'type' },
    custom: true,
    ...(crd.spec.names.shortNames ? { shortNames: crd.spec.names.shortNames } : {}),
  };
}
