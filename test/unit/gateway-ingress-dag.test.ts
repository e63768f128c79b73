// The Ingress translation from YAML fixtures (test/fixtures/dag-gateway/ingress): IngressClasses, Ingresses and
// WebSocketPolicies in; the Ingress statuses (load balancer, warnings), policy statuses, translated
// routes and certificates, and the builder's compiled view of those routes out, compared whole with the golden
// expected.yaml. WSGATE_UPDATE_GOLDEN=1 rewrites the goldens (review the diff!).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { createIngressTranslator, ingressWarningReason, type IngressInput } from '../../src/dag/ingress.ts';
import type { PublishedAddress } from '../../src/dag/gateway/types.ts';
import { createRoutingBuilder } from '../../src/dag/routing-apis.ts';
import { buildView } from '../support/snapshot-view.ts';

const dir = join(import.meta.dirname, '../fixtures/dag-gateway/ingress');
const update = process.env.WSGATE_UPDATE_GOLDEN === '1';

function loadCase(name: string) {
  const docs = yaml.loadAll(readFileSync(join(dir, name, 'input.yaml'), 'utf8')) as Record<string, unknown>[];
  let addresses: readonly PublishedAddress[] = [{ type: 'IPAddress', value: '203.0.113.10' }];
  const input = { ingressClasses: [] as unknown[], ingresses: [] as unknown[], policies: [] as unknown[], secrets: [] as unknown[] };
  const services: unknown[] = [];
  const endpointSlices: unknown[] = [];
  for (const d of docs) {
    if (!d) continue;
    if (d.kind === 'Options') addresses = (d.options as { addresses: PublishedAddress[] }).addresses;
    else if (d.kind === 'IngressClass') input.ingressClasses.push(d);
    else if (d.kind === 'Ingress') input.ingresses.push(d);
    else if (d.kind === 'WebSocketPolicy') input.policies.push(d);
    else if (d.kind === 'Secret') input.secrets.push(d);
    else if (d.kind === 'Service') services.push(d);
    else if (d.kind === 'EndpointSlice') endpointSlices.push(d);
    else throw new Error(`${name}: unknown kind ${String(d.kind)}`);
  }
  return { addresses, input: input as unknown as IngressInput, services, endpointSlices };
}

function run(c: ReturnType<typeof loadCase>, input: IngressInput) {
  const t = createIngressTranslator()(input, c.addresses);
  const { secrets, policies, ...ingress } = input;
  const built = createRoutingBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' })({
    routes: [],
    services: c.services as never,
    endpointSlices: c.endpointSlices as never,
    secrets,
    routingApis: { addresses: c.addresses, policies, ingress },
  });
  assert.ok(built.routingApis);
  return {
    translation: {
      ingresses: built.routingApis.ingresses,
      policies: built.routingApis.policies.map((p) => ({
        policy: `${p.namespace}/${p.name}`,
        ancestors: p.ancestors.map((a) => ({
          ancestorRef: `${a.ancestorRef.kind}/${a.ancestorRef.namespace}/${a.ancestorRef.name}`,
          conditions: a.conditions.map((x) => `${x.type}=${x.status} ${x.reason}: ${x.message} (gen ${x.observedGeneration})`),
        })),
      })),
      certificates: t.certificates.map((x) => `${x.hostname} ${x.secret.namespace}/${x.secret.name}`),
      routes: t.routes.map((r) => ({ key: `${r.metadata.namespace}/${r.metadata.name}`, spec: r.spec })),
    },
    build: buildView(built),
  };
}

for (const name of readdirSync(dir).sort()) {
  test(`ingress translation fixture: ${name}`, () => {
    const c = loadCase(name);
    const view = run(c, c.input);
    const goldenPath = join(dir, name, 'expected.yaml');
    if (update) writeFileSync(goldenPath, yaml.dump(view, { lineWidth: 200, noRefs: true }));
    assert.deepEqual(view, yaml.load(readFileSync(goldenPath, 'utf8')));
    // Deterministic: reversed input, identical output.
    const reversed = { ingressClasses: [...c.input.ingressClasses].reverse(), ingresses: [...c.input.ingresses].reverse(), policies: [...c.input.policies].reverse(), secrets: c.input.secrets };
    assert.deepEqual(run(c, reversed), view);
  });
}

// Each warning becomes an Event whose reason says what it is about (src/status/routing-api-status-writer.ts):
// every warning the fixtures produce has a specific reason, none the catch-all.
test('every Ingress warning of the fixtures maps to a specific Event reason', () => {
  const reasons = new Map<string, string>();
  for (const name of readdirSync(dir).sort()) {
    const c = loadCase(name);
    for (const w of run(c, c.input).translation.ingresses.flatMap((i) => i.warnings)) reasons.set(w, ingressWarningReason(w));
  }
  assert.ok(reasons.size >= 7, `${reasons.size} warnings`);
  assert.deepEqual([...reasons].filter(([, r]) => r === 'IngressWarning'), []);
  assert.deepEqual(
    ['nginx.ingress.kubernetes.io/ssl-redirect: not supported by wsgate', 'spec.rules[0].http.paths[2]: resource Bucket/b cannot be served (503)', 'spec.defaultBackend: backend without a Service port cannot be served (503)', 'spec.tls: Secret s for a.example.com: not found or not kubernetes.io/tls', 'host a.example.com: not served: Conflicted: x'].map(ingressWarningReason),
    ['IgnoredAnnotation', 'UnsupportedBackend', 'UnsupportedBackend', 'InvalidCertificateRef', 'HostNotServed'],
  );
});
