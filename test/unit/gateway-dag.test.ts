// The Gateway API translation from YAML fixtures (test/fixtures/dag-gateway/httproute): Gateway API objects in, the
// statuses of every kind (HTTPRoute statuses with the builder's verdict folded in), the translated routes and
// listener certificates, and the routing builder's whole compiled view (WebSocketRoutes beside them) out, compared with the golden expected.yaml of each case. The cases follow the upstream
// conformance suite (kubernetes-sigs/gateway-api v1.6.1, conformance/tests/*.go) named in each input.yaml.
// WSGATE_UPDATE_GOLDEN=1 rewrites the goldens (review the diff!).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import type { RouteObject } from '../../src/dag/input.ts';
import { createGatewayApiTranslator } from '../../src/dag/gateway/translate.ts';
import { createRoutingBuilder, type RoutingApiStatuses } from '../../src/dag/routing-apis.ts';
import type { ApiCondition, GatewayApiInput, PublishedAddress, GatewayApiTranslation } from '../../src/dag/gateway/types.ts';
import { buildView } from '../support/snapshot-view.ts';

const dir = join(import.meta.dirname, '../fixtures/dag-gateway/httproute');
const update = process.env.WSGATE_UPDATE_GOLDEN === '1';

interface Case {
  readonly addresses: readonly PublishedAddress[];
  readonly input: GatewayApiInput;
  readonly wsRoutes: RouteObject[];
  readonly endpointSlices: unknown[];
  readonly secrets: unknown[];
}

const listKey: Readonly<Record<string, keyof GatewayApiInput>> = {
  GatewayClass: 'gatewayClasses',
  Gateway: 'gateways',
  HTTPRoute: 'httpRoutes',
  ReferenceGrant: 'referenceGrants',
  Namespace: 'namespaces',
  Service: 'services',
  Secret: 'secrets',
  WebSocketPolicy: 'policies',
};

function loadCase(name: string): Case {
  const docs = yaml.loadAll(readFileSync(join(dir, name, 'input.yaml'), 'utf8')) as Record<string, unknown>[];
  let addresses: readonly PublishedAddress[] = [{ type: 'IPAddress', value: '203.0.113.10' }];
  const input: Record<string, unknown[]> = Object.fromEntries(Object.values(listKey).map((k) => [k, []]));
  const wsRoutes: RouteObject[] = [];
  const endpointSlices: unknown[] = [];
  for (const d of docs) {
    if (!d) continue;
    const k = String(d.kind);
    if (k === 'Options') addresses = (d.options as { addresses: PublishedAddress[] }).addresses;
    else if (k === 'WebSocketRoute') wsRoutes.push(d as unknown as RouteObject);
    else if (k === 'EndpointSlice') endpointSlices.push(d);
    else if (listKey[k]) (input[listKey[k]] as unknown[]).push(d);
    else throw new Error(`${name}: unknown kind ${k}`);
  }
  return { addresses, input: input as unknown as GatewayApiInput, wsRoutes, endpointSlices, secrets: input.secrets as unknown[] };
}

const cond = (c: ApiCondition) => `${c.type}=${c.status} ${c.reason}: ${c.message} (gen ${c.observedGeneration})`;
const ref = (r: { group?: string; kind?: string; namespace?: string; name: string; sectionName?: string; port?: number }) =>
  `${r.kind}/${r.namespace}/${r.name}${r.sectionName !== undefined ? `#${r.sectionName}` : ''}${r.port !== undefined ? `:${r.port}` : ''}`;

function translationView(t: Omit<RoutingApiStatuses, 'ingresses'>, translated: GatewayApiTranslation): unknown {
  return {
    gatewayClasses: t.gatewayClasses.map((c) => ({ name: c.name, conditions: c.conditions.map(cond) })),
    gateways: t.gateways.map((g) => ({
      gateway: `${g.namespace}/${g.name}`,
      addresses: g.addresses.map((a) => `${a.type} ${a.value}`),
      conditions: g.conditions.map(cond),
      listeners: g.listeners.map((l) => ({
        name: l.name,
        attachedRoutes: l.attachedRoutes,
        supportedKinds: l.supportedKinds.map((k) => `${k.group}/${k.kind}`),
        conditions: l.conditions.map(cond),
      })),
    })),
    httpRoutes: t.httpRoutes.map((r) => ({
      route: `${r.namespace}/${r.name}`,
      parents: r.parents.map((p) => ({ parentRef: ref(p.parentRef), conditions: p.conditions.map(cond) })),
    })),
    policies: t.policies.map((p) => ({
      policy: `${p.namespace}/${p.name}`,
      ancestors: p.ancestors.map((a) => ({ ancestorRef: ref(a.ancestorRef), conditions: a.conditions.map(cond) })),
    })),
    certificates: translated.certificates.map((c) => `${c.hostname || '(any)'} ${c.secret.namespace}/${c.secret.name}`),
    routes: translated.routes.map((r) => ({ key: `${r.metadata.namespace}/${r.metadata.name}`, permittedNamespaces: r.permittedNamespaces, spec: r.spec })),
  };
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]] as [T, T];
  }
  return out;
}

function run(c: Case, input: GatewayApiInput) {
  const translated = createGatewayApiTranslator()(input, c.addresses);
  const build = createRoutingBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const { services, secrets, policies, ...gatewayApi } = input;
  const built = build({
    routes: c.wsRoutes,
    services: services as never,
    endpointSlices: c.endpointSlices as never,
    secrets,
    routingApis: { addresses: c.addresses, policies, gatewayApi },
  });
  assert.ok(built.routingApis);
  return { translation: translationView(built.routingApis, translated), build: buildView(built) };
}

for (const name of readdirSync(dir).sort()) {
  test(`gateway translation fixture: ${name}`, () => {
    const c = loadCase(name);
    const view = run(c, c.input);
    const goldenPath = join(dir, name, 'expected.yaml');
    if (update) writeFileSync(goldenPath, yaml.dump(view, { lineWidth: 200, noRefs: true }));
    assert.deepEqual(view, yaml.load(readFileSync(goldenPath, 'utf8')));
    // Deterministic: shuffled input, identical output.
    for (const seed of [1, 2, 3]) {
      const again = Object.fromEntries(Object.entries(c.input).map(([k, v]) => [k, shuffled(v as unknown[], seed)])) as unknown as GatewayApiInput;
      assert.deepEqual(run(c, again), view);
    }
  });
}
