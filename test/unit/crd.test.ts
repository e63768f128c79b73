// The CRD in crds/ and in the chart is exactly what src/api/crd.ts builds from src/api/schema.ts, and that
// schema is one the API server accepts as structural, with every string, list and map bounded (CEL's cost
// estimator and the API conventions need it). CEL rules themselves need a real API server: only their
// presence and shape are checked here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';
import { Ajv } from 'ajv';
import { buildCrd, toStructural, crdName, type JsonSchema } from '../../src/api/crd.ts';
import { routeSpecSchema, routeStatusSchema, group, version, kind, plural } from '../../src/api/schema.ts';
import { createSpecValidator } from '../../src/api/validate.ts';
import { createBuilder } from '../../src/dag/build.ts';
import { crdFile, chartCrdFile, renderCrdYaml, renderChartCrdTemplate } from '../../scripts/gen-crd.ts';

type Node = Record<string, unknown>;

const crd = buildCrd();
const root = crd.spec.versions[0].schema.openAPIV3Schema as Node;

/** Every schema node with its path, depth first. */
function* walk(node: Node, path = '$'): Generator<[string, Node]> {
  yield [path, node];
  const props = node.properties as Record<string, Node> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) yield* walk(v, `${path}.${k}`);
  if (node.items) yield* walk(node.items as Node, `${path}[]`);
  if (typeof node.additionalProperties === 'object') yield* walk(node.additionalProperties as Node, `${path}{}`);
}

const isIntOrString = (n: Node) => n['x-kubernetes-int-or-string'] === true;

test('crds/ and the chart template are up to date (run: node --import tsx scripts/gen-crd.ts)', () => {
  assert.equal(readFileSync(crdFile, 'utf8'), renderCrdYaml(), `${crdFile} is stale`);
  assert.equal(readFileSync(chartCrdFile, 'utf8'), renderChartCrdTemplate(), `${chartCrdFile} is stale`);
  // The YAML on disk reads back as the very object the builder returns.
  assert.deepEqual(load(readFileSync(crdFile, 'utf8')), JSON.parse(JSON.stringify(crd)));
});

test('names, scope, subresource and printer columns', () => {
  assert.equal(crd.metadata.name, `${plural}.${group}`);
  assert.equal(crd.metadata.name, crdName);
  assert.equal(crd.spec.scope, 'Namespaced');
  assert.deepEqual(crd.spec.names.shortNames, ['wsr']);
  assert.deepEqual(crd.spec.names.categories, ['wsgate']);
  assert.equal(crd.spec.names.kind, kind);
  assert.equal(crd.spec.versions.length, 1);
  const v = crd.spec.versions[0];
  assert.equal(v.name, version);
  assert.ok(v.served && v.storage);
  assert.deepEqual(v.subresources, { status: {} });
  const cols = Object.fromEntries(v.additionalPrinterColumns.map((c) => [c.name, c]));
  assert.deepEqual(Object.keys(cols), ['Hosts', 'Accepted', 'Programmed', 'Ready', 'Age']);
  assert.equal(cols.Hosts.jsonPath, '.spec.hostnames');
  assert.equal(cols.Accepted.jsonPath, '.status.conditions[?(@.type=="Accepted")].status');
  assert.equal(cols.Programmed.jsonPath, '.status.conditions[?(@.type=="Programmed")].status');
  assert.equal(cols.Ready.jsonPath, '.status.readyEndpoints');
  assert.equal(cols.Ready.type, 'integer');
  assert.equal(cols.Age.type, 'date');
  assert.equal(cols.Age.jsonPath, '.metadata.creationTimestamp');
});

test('structural: every node typed, only the int-or-string anyOf, no additionalProperties next to properties', () => {
  assert.equal(root.type, 'object');
  assert.ok(!('additionalProperties' in root), 'additionalProperties is not allowed at the root');
  for (const [path, node] of walk(root)) {
    if (isIntOrString(node)) {
      assert.ok(!('type' in node), `${path}: int-or-string must have no type`);
      assert.deepEqual(node.anyOf, [{ type: 'integer' }, { type: 'string' }], `${path}: the anyOf must be exactly integer|string`);
    } else {
      assert.ok(['object', 'array', 'string', 'integer', 'number', 'boolean'].includes(node.type as string), `${path}: no type`);
      assert.ok(!('anyOf' in node), `${path}: anyOf is only allowed for int-or-string`);
    }
    for (const k of ['allOf', 'oneOf', 'not', 'const', '$ref', 'definitions', '$defs']) assert.ok(!(k in node), `${path}: ${k}`);
    if (node.properties) assert.ok(!('additionalProperties' in node), `${path}: additionalProperties next to properties`);
    if (node.type === 'array') assert.ok(node.items, `${path}: array without items`);
    if (path !== '$' && 'x-kubernetes-preserve-unknown-fields' in node) assert.fail(`${path}: preserve-unknown-fields`);
  }
});

test('bounded: every string has maxLength, enum or a bounded format; every list maxItems; every object has fields', () => {
  for (const [path, node] of walk(root)) {
    if (['$.metadata', '$.apiVersion', '$.kind'].includes(path)) continue; // the API server owns these
    if (node.type === 'string' || isIntOrString(node)) {
      const bounded = typeof node.maxLength === 'number' || Array.isArray(node.enum) || node.format === 'date-time';
      assert.ok(bounded, `${path}: unbounded string`);
    }
    if (node.type === 'array') assert.equal(typeof node.maxItems, 'number', `${path}: array without maxItems`);
    if (node.type === 'object') {
      const hasFields = node.properties && Object.keys(node.properties as object).length > 0;
      const isMap = typeof node.additionalProperties === 'object' && typeof node.maxProperties === 'number';
      assert.ok(hasFields || isMap, `${path}: object without properties (or a bounded map)`);
    }
  }
});

test('list-map keys are required (or defaulted) in the items', () => {
  let maps = 0;
  for (const [path, node] of walk(root)) {
    if (node['x-kubernetes-list-type'] !== 'map') continue;
    maps++;
    const items = node.items as Node;
    const keys = node['x-kubernetes-list-map-keys'] as string[];
    assert.ok(Array.isArray(keys) && keys.length > 0, `${path}: list-map without keys`);
    for (const k of keys) {
      const prop = (items.properties as Record<string, Node>)[k];
      assert.ok(prop, `${path}: key ${k} is not a property`);
      assert.ok((items.required as string[] | undefined)?.includes(k) || 'default' in prop, `${path}: key ${k} must be required or defaulted`);
    }
  }
  assert.ok(maps >= 1, 'status.conditions is a list-map');
  const conditions = (root.properties as Record<string, Node>).status.properties as Record<string, Node>;
  assert.deepEqual(conditions.conditions['x-kubernetes-list-map-keys'], ['type']);
});

test('patterns use no syntax RE2 (the API server) lacks, and defaults satisfy their own node', () => {
  const ajv = new Ajv({ strict: false, validateFormats: false });
  for (const [path, node] of walk(root)) {
    if (typeof node.pattern === 'string') {
      assert.doesNotThrow(() => new RegExp(node.pattern as string), `${path}: bad pattern`);
      assert.doesNotMatch(node.pattern, /\(\?[=!<]|\\[1-9]/, `${path}: lookaround or backreference is not RE2`);
    }
    if ('default' in node) {
      const { default: def, ...rest } = node;
      const ok = ajv.validate(rest, def);
      assert.ok(ok, `${path}: default ${JSON.stringify(def)} is invalid: ${ajv.errorsText()}`);
    }
  }
});

test('every CEL rule of schema.ts is carried over, on the same object, with a message', () => {
  const collect = (schema: Node, acc: Map<string, unknown>) => {
    for (const [path, node] of walk(schema)) if (node['x-kubernetes-validations']) acc.set(path, node['x-kubernetes-validations']);
    return acc;
  };
  const fromSchema = new Map<string, unknown>();
  collect(routeSpecSchema as unknown as Node, fromSchema);
  const fromCrd = collect((root.properties as Record<string, Node>).spec, new Map());
  assert.ok(fromSchema.size > 0);
  assert.deepEqual(fromCrd, fromSchema);
  for (const rules of fromCrd.values()) {
    for (const r of rules as Node[]) {
      assert.equal(typeof r.rule, 'string');
      assert.equal(typeof r.message, 'string');
    }
  }
});

test('the CRD schema accepts and refuses what the spec schema does', () => {
  const ajv = new Ajv({ strict: false, validateFormats: false });
  const crdCheck = ajv.compile(root);
  const specCheck = new Ajv({ strict: false, validateFormats: false }).compile(routeSpecSchema);
  const route = (spec: unknown) => ({ apiVersion: `${group}/${version}`, kind, metadata: { name: 'chat' }, spec });
  const backend = (port: unknown) => ({ rules: [{ backendRefs: [{ name: 'chat', port }] }] });
  const cases: [string, unknown][] = [
    ['port number', backend(8080)],
    ['port name', backend('http')],
    ['port 0', backend(0)],
    ['port 70000', backend(70000)],
    ['port name too long', backend('a-much-too-long-port-name')],
    ['port empty', backend('')],
    ['port bool', backend(true)],
    ['bad hostname', { hostnames: ['Not_A_Host'], rules: [{ backendRefs: [{ name: 'a', port: 80 }] }] }],
    ['no rules', { hostnames: ['a.example.com'] }],
    ['bad enum', { rules: [{ backendRefs: [{ name: 'a', port: 80 }] }], loadBalancer: { policy: 'Random' } }],
  ];
  for (const [name, spec] of cases) {
    assert.equal(crdCheck(route(spec)), specCheck(spec), `${name}: CRD and spec schema disagree`);
  }
  assert.ok(crdCheck(route(backend('http'))));
  assert.ok(!crdCheck(route(backend(0))));
});

test('toStructural refuses what it cannot convert faithfully', () => {
  assert.throws(() => toStructural({ type: 'string', const: 'x' } as JsonSchema), /const/);
  assert.throws(() => toStructural({ oneOf: [{ type: 'string' }] } as JsonSchema), /oneOf/);
  assert.throws(() => toStructural({ anyOf: [{ type: 'string' }, { type: 'integer' }] } as JsonSchema), /int-or-string/);
  assert.throws(
    () => toStructural({ 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer', enum: [1] }, { type: 'string' }] } as JsonSchema),
    /enum/,
  );
  assert.deepEqual(toStructural(routeStatusSchema as unknown as JsonSchema), JSON.parse(JSON.stringify(routeStatusSchema)));
});

// A value that fails a `pattern` is reported by the API server with the bare regular expression; the CEL rules
// in x-kubernetes-validations run as well (a pattern failure is not one of the errors that skip them) and add
// their message. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules
// lowerAscii() is in the CEL strings extension the API server includes:
// https://kubernetes.io/docs/reference/using-api/cel/
test('a path without its leading / and an upper-case hostname are named in words, by the CRD and by files', () => {
  const spec = (root.properties as Record<string, Node>).spec;
  const at = (path: string) => {
    const hit = [...walk(spec, '$.spec')].find(([p]) => p === path);
    assert.ok(hit, path);
    return hit[1]['x-kubernetes-validations'];
  };
  const slash = [{ rule: "self.startsWith('/')", message: 'must start with /' }];
  assert.deepEqual(at('$.spec.rules[].matches[].path.value'), slash);
  assert.deepEqual(at('$.spec.healthCheck.path'), slash);
  assert.deepEqual(at('$.spec.hostnames[]'), [{ rule: 'self == self.lowerAscii()', message: 'must be lower-case' }]);

  // Standalone files go through ajv, which mirrors those rules: the same messages at the same paths.
  const validate = createSpecValidator();
  const result = validate({
    hostnames: ['Chat.example.com', 'chat.example.com', 'not_a_host'],
    rules: [{ matches: [{ path: { value: 'ws' } }, { path: { value: '/ws room' } }], backendRefs: [{ name: 'chat', port: 80 }] }],
    healthCheck: { type: 'HTTP', path: 'healthz' },
  });
  assert.deepEqual(result, {
    ok: false,
    problems: [
      { path: 'spec.hostnames[0]', message: 'must be lower-case' },
      { path: 'spec.hostnames[2]', message: '"not_a_host" is not a lower-case DNS name (labels of a-z, 0-9 and -; a wildcard starts with *.)' },
      { path: 'spec.rules[0].matches[0].path.value', message: 'must start with /' },
      { path: 'spec.rules[0].matches[1].path.value', message: '"/ws room" is not a path (it starts with / and has no whitespace, ? or #)' },
      { path: 'spec.healthCheck.path', message: 'must start with /' },
    ],
  });
  // A wildcard hostname and the root path pass both the patterns and the rules.
  assert.equal(validate({ hostnames: ['*.example.com'], rules: [{ matches: [{ path: { value: '/' } }], backendRefs: [{ name: 'chat', port: 80 }] }] }).ok, true);
});

test('the status the builder computes is one the CRD status schema accepts', () => {
  const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'kubernetes' });
  const route = (name: string, spec: unknown) => ({ apiVersion: `${group}/${version}` as const, kind: 'WebSocketRoute' as const, metadata: { name, namespace: 'default', generation: 2 }, spec });
  const { statuses } = build({
    routes: [
      route('svc', { rules: [{ backendRefs: [{ name: 'chat', port: 'ws' }, { endpoints: ['10.0.0.1:80'], drainingEndpoints: ['10.0.0.2:80'] }] }] }),
      route('bad', { rules: [] }),
    ],
    services: [{ metadata: { namespace: 'default', name: 'chat' }, spec: { ports: [{ name: 'ws', port: 80 }] } }],
    endpointSlices: [],
    secrets: [],
  });
  const check = new Ajv({ strict: false, validateFormats: false }).compile((root.properties as Record<string, Node>).status);
  for (const s of statuses) {
    const body = {
      observedGeneration: s.generation,
      conditions: s.conditions.map((c) => ({ ...c, lastTransitionTime: '2026-01-01T00:00:00Z' })),
      ...(s.readyEndpoints === undefined ? {} : { readyEndpoints: s.readyEndpoints }),
      ...(s.backends ? { backends: s.backends } : {}),
    };
    assert.ok(check(body), `${s.key}: ${JSON.stringify(check.errors)}`);
  }
  const svc = statuses.find((s) => s.key === 'default/svc')!;
  assert.deepEqual(svc.backends, [
    { rule: 0, backendRef: 0, kind: 'Service', name: 'chat', port: 'ws', ready: 0, draining: 0 },
    { rule: 0, backendRef: 1, kind: 'Static', ready: 1, draining: 1 },
  ]);
  assert.equal(svc.readyEndpoints, 1);
  assert.equal(statuses.find((s) => s.key === 'default/bad')!.backends, undefined, 'a rejected route has no counts');
});
