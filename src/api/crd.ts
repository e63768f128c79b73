// The WebSocketRoute CustomResourceDefinition (apiextensions.k8s.io/v1), built from the one schema in
// schema.ts. Pure: no I/O; scripts/gen-crd.ts writes it to crds/ and the Helm chart, and a test fails when
// either differs from what this function returns.
//
// schema.ts is written as JSON Schema for ajv; two of its constructs are not accepted by the API server in a
// structural schema, so they are converted here:
// - `additionalProperties: false` next to `properties`: the API server refuses it ("additionalProperties and
//   properties are mutual exclusive"). Unknown fields are pruned by the API server instead (and refused by
//   kubectl's strict field validation), so the key is dropped.
// - `x-kubernetes-int-or-string: true` with `anyOf: [{type: integer, …bounds}, {type: string, …bounds}]`: the
//   structural check accepts the anyOf only when it is exactly `[{type: integer}, {type: string}]`, so the
//   bounds of each branch move up to the node (minimum/maximum only apply to numbers and
//   minLength/maxLength/pattern only to strings, so the meaning is the same).
import { group, kind, plural, routeSpecSchema, routeStatusSchema, version } from './schema.ts';

export type JsonSchema = { readonly [key: string]: unknown };

export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'date' | 'integer' | 'number' | 'boolean';
  readonly jsonPath: string;
  readonly description?: string;
  readonly priority?: number;
}

export interface CustomResourceDefinition {
  readonly apiVersion: 'apiextensions.k8s.io/v1';
  readonly kind: 'CustomResourceDefinition';
  readonly metadata: { readonly name: string };
  readonly spec: {
    readonly group: string;
    readonly scope: 'Namespaced';
    readonly names: {
      readonly kind: string;
      readonly listKind: string;
      readonly plural: string;
      readonly singular: string;
      readonly shortNames: readonly string[];
      readonly categories: readonly string[];
    };
    readonly versions: readonly {
      readonly name: string;
      readonly served: boolean;
      readonly storage: boolean;
      readonly subresources: { readonly status: Record<string, never> };
      readonly additionalPrinterColumns: readonly PrinterColumn[];
      readonly schema: { readonly openAPIV3Schema: JsonSchema };
    }[];
  };
}

export const crdName = `${plural}.${group}`;
export const shortName = 'wsr';
export const category = 'wsgate';

/** Keys the API server's JSONSchemaProps knows (OpenAPI v3 subset plus the Kubernetes extensions). */
const knownKeys = new Set([
  'type', 'format', 'title', 'description', 'default', 'nullable', 'enum', 'example',
  'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'multipleOf',
  'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems', 'uniqueItems', 'items',
  'maxProperties', 'minProperties', 'required', 'properties', 'additionalProperties',
  'allOf', 'anyOf', 'oneOf', 'not',
  'x-kubernetes-int-or-string', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-validations',
]);

const intBranchKeys = new Set(['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']);
const stringBranchKeys = new Set(['type', 'minLength', 'maxLength', 'pattern', 'format']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Converts one node of the JSON Schema in schema.ts to the structural form the API server accepts.
 * Throws on anything it cannot convert faithfully (an unknown keyword, an anyOf other than int-or-string).
 */
export function toStructural(node: JsonSchema, path = '$'): JsonSchema {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (!knownKeys.has(key)) throw new Error(`${path}: keyword ${JSON.stringify(key)} is not supported in a CRD schema`);
    if (key === 'additionalProperties' && value === false) {
      if (!isObject(node.properties)) throw new Error(`${path}: additionalProperties: false without properties`);
      continue; // pruning does the same job; the API server refuses it next to properties
    }
    if (key === 'anyOf') {
      if (node['x-kubernetes-int-or-string'] !== true) throw new Error(`${path}: anyOf is only supported for x-kubernetes-int-or-string`);
      Object.assign(out, hoistIntOrString(value, path));
      continue;
    }
    if (key === 'allOf' || key === 'oneOf' || key === 'not') throw new Error(`${path}: ${key} is not supported here`);
    if (key === 'properties') {
      if (!isObject(value)) throw new Error(`${path}: properties must be an object`);
      const props: Record<string, unknown> = {};
      for (const [name, child] of Object.entries(value)) {
        if (!isObject(child)) throw new Error(`${path}.${name}: not a schema`);
        props[name] = toStructural(child, `${path}.${name}`);
      }
      out.properties = props;
      continue;
    }
    if (key === 'items' || (key === 'additionalProperties' && isObject(value))) {
      if (!isObject(value)) throw new Error(`${path}: ${key} must be a schema`);
      out[key] = toStructural(value, `${path}[]`);
      continue;
    }
    out[key] = structuredClone(value);
  }
  return out;
}

function hoistIntOrString(anyOf: unknown, path: string): Record<string, unknown> {
  if (!Array.isArray(anyOf) || anyOf.length !== 2) throw new Error(`${path}: int-or-string anyOf must have two branches`);
  const intBranch = anyOf.find((b) => isObject(b) && b.type === 'integer') as Record<string, unknown> | undefined;
  const strBranch = anyOf.find((b) => isObject(b) && b.type === 'string') as Record<string, unknown> | undefined;
  if (!intBranch || !strBranch) throw new Error(`${path}: int-or-string anyOf needs an integer and a string branch`);
  const hoisted: Record<string, unknown> = { anyOf: [{ type: 'integer' }, { type: 'string' }] };
  for (const [branch, allowed] of [[intBranch, intBranchKeys], [strBranch, stringBranchKeys]] as const) {
    for (const [k, v] of Object.entries(branch)) {
      if (!allowed.has(k)) throw new Error(`${path}: keyword ${k} in an int-or-string branch cannot be carried over`);
      if (k !== 'type') hoisted[k] = v;
    }
  }
  return hoisted;
}

/** The schema of a whole object of one of our kinds: its spec and status made structural. */
export function objectSchema(description: string, spec: JsonSchema, status: JsonSchema): JsonSchema {
  return {
    description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: toStructural(spec, '$.spec'),
      status: toStructural(status, '$.status'),
    },
  };
}

export const printerColumns: readonly PrinterColumn[] = [
  { name: 'Hosts', type: 'string', jsonPath: '.spec.hostnames', description: 'Host names the route serves (empty: any).' },
  { name: 'Accepted', type: 'string', jsonPath: '.status.conditions[?(@.type=="Accepted")].status' },
  { name: 'Programmed', type: 'string', jsonPath: '.status.conditions[?(@.type=="Programmed")].status' },
  { name: 'Ready', type: 'integer', jsonPath: '.status.readyEndpoints', description: 'Endpoints of the route that take new connections.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/** The whole CRD object, ready to be serialized. */
export function buildCrd(): CustomResourceDefinition {
  const openAPIV3Schema = objectSchema(
    'WebSocketRoute routes WebSocket connections for a set of host names and paths to backends.',
    routeSpecSchema as JsonSchema,
    routeStatusSchema as JsonSchema,
  );
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName },
    spec: {
      group,
      scope: 'Namespaced',
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        shortNames: [shortName],
        categories: [category],
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}
