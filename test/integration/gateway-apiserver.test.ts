// The Gateway API and Ingress examples against a REAL kube-apiserver (test/support/kube-env.ts): the upstream
// Gateway API CRDs (standard channel v1.6.1, test/fixtures/gateway-api) and our WebSocketPolicy CRD install;
// every object of examples/gateway-api and examples/ingress is admitted by their schemas and CEL rules; the
// statuses the translation computes for them, merged by src/status/gateway-api-status.ts, are accepted by the
// status subresources (the upstream status schemas) and read back, another controller's parent entry kept and
// unchanged conditions keeping their lastTransitionTime: GatewayClass Accepted, Gateway Accepted/Programmed with addresses and per-listener
// attachedRoutes, HTTPRoute parents, WebSocketPolicy ancestors, Ingress status.loadBalancer. Skipped where the
// binaries are absent.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as yaml from 'js-yaml';
import { createGatewayApiTranslator } from '../../src/dag/gateway/translate.ts';
import type { ApiCondition, GatewayApiInput } from '../../src/dag/gateway/types.ts';
import { createIngressTranslator, type IngressInput } from '../../src/dag/ingress.ts';
import { waitUntil } from '../support/fake-apiserver/index.ts';
import { kubeEnvMissing, startKubeEnv, type KubeEnv } from '../support/kube-env.ts';
import { gatewayStatusBody, httpRouteStatusBody, policyStatusBody } from '../../src/status/gateway-api-status.ts';

const root = join(import.meta.dirname, '..', '..');
const missing = kubeEnvMissing();
let env: KubeEnv;

type Obj = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };
const docs = (file: string): Obj[] => (yaml.loadAll(readFileSync(join(root, file), 'utf8')) as unknown[]).filter((d): d is Obj => d !== null && typeof d === 'object');
const gwApi = '/apis/gateway.networking.k8s.io/v1';
const crdFiles = ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants'].map((f) => `test/fixtures/gateway-api/${f}.yaml`);
const now = '2026-01-01T00:00:00Z';
// A self-signed certificate and key (test data shared with test/fixtures/dag/conflicts-and-refs).
const tlsData = { 'tls.crt': 'LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqVENDQVRPZ0F3SUJBZ0lVWC85RHRSWHIzS3d1UHhhUm9pNGdwV29mWjNrd0NnWUlLb1pJemowRUF3SXcKR3pFWk1CY0dBMVVFQXd3UVkyaGhkQzVsZUdGdGNHeGxMbU52YlRBZ0Z3MHlOakV5TURVd09USXlNVEJhR0E4eQpNVEkyTVRFeE1UQTVNakl4TUZvd0d6RVpNQmNHQTFVRUF3d1FZMmhoZEM1bGVHRnRjR3hsTG1OdmJUQlpNQk1HCkJ5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEEwSUFCTmp5L25MQlNuWFJqdDZtYzNVUVRvNC83UHZTL3V0V1JvMXkKY09UYzNEZ0JBQjM5NWZLWHIxTG9Rb3lyUnFrK3o5TVQyVXRKWkpwNGwxQ3VhVUJsQ3dPalV6QlJNQjBHQTFVZApEZ1FXQkJSbDExNjZjandFZGRjYnVEVUZjUVpCZlZPYkVqQWZCZ05WSFNNRUdEQVdnQlJsMTE2NmNqd0VkZGNiCnVEVUZjUVpCZlZPYkVqQVBCZ05WSFJNQkFmOEVCVEFEQVFIL01Bb0dDQ3FHU000OUJBTUNBMGdBTUVVQ0lRQ2oKTHhNVU5xNWZJdEZZTmlUNFhOUVB6N3p1NHpVUlJPUFArU21tTHAzOTBnSWdIQm1Sc0w1cXF1RERDY0g4Zlk0UwpxanBHRFVUMHZBUmN2My9EN1UrM1FpWT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=', 'tls.key': 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJNR0J5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEJHMHdhd0lCQVFRZ3A3SnRVd3paWExNWTdvbUEKVXQ2Ky9ldk1ZLzl2amRBMnhpaU1WVFFUOC82aFJBTkNBQVRZOHY1eXdVcDEwWTdlcG5OMUVFNk9QK3o3MHY3cgpWa2FOY25EazNOdzRBUUFkL2VYeWw2OVM2RUtNcTBhcFBzL1RFOWxMU1dTYWVKZFFybWxBWlFzRAotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg==' };
const stamped = (cs: readonly ApiCondition[]) => cs.map((c) => ({ ...c, lastTransitionTime: now }));

function collection(o: Obj): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const plural = { GatewayClass: 'gatewayclasses', Gateway: 'gateways', HTTPRoute: 'httproutes', WebSocketPolicy: 'websocketpolicies', IngressClass: 'ingressclasses', Ingress: 'ingresses', Namespace: 'namespaces', Service: 'services', Secret: 'secrets' }[o.kind];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return `${base}${o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : ''}/${plural}`;
}
const list = async (path: string) => ((await env.api.must('GET', path))['items'] as unknown[]) ?? [];
/** Read, merge (the way the status bodies do), replace: the write a leader makes. */
async function putStatus(path: string, status: (existing: never) => unknown): Promise<Record<string, unknown>> {
  const current = await env.api.must('GET', path);
  return env.api.must('PUT', `${path}/status`, { ...current, status: status(current['status'] as never) });
}
const me = 'wsgate.io/gateway-controller';

before(async () => {
  if (missing) return;
  env = await startKubeEnv();
  const crds = [...crdFiles.flatMap(docs), ...docs('crds/wsgate.io_websocketpolicies.yaml')];
  for (const crd of crds) await env.api.must('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  await waitUntil(async () => {
    for (const crd of crds) {
      const got = await env.api.request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      const conds = (got.body['status'] as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? [];
      if (!conds.some((c) => c.type === 'Established' && c.status === 'True')) return false;
    }
    return (await env.api.request('GET', `${gwApi}/gateways`)).status === 200 && (await env.api.request('GET', '/apis/wsgate.io/v1alpha1/websocketpolicies')).status === 200;
  }, 'Gateway API and WebSocketPolicy CRDs established and served', 60_000);
  const support: Obj[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wsgate' } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'chat' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'example-com-tls', namespace: 'wsgate' }, type: 'kubernetes.io/tls', data: tlsData },
    ...['chat', 'chat-canary'].map((name): Obj => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'chat' }, spec: { ports: [{ port: 8080, appProtocol: 'kubernetes.io/ws' }] } })),
  ];
  for (const o of support) await env.api.must('POST', collection(o), o);
});

after(async () => {
  await env?.stop();
});

test('every Gateway API and Ingress example is admitted by the CRD schemas and CEL rules', { skip: missing }, async () => {
  for (const o of [...docs('examples/gateway-api/chat.yaml'), ...docs('examples/ingress/chat-ingress.yaml')]) {
    const r = await env.api.request('POST', collection(o), o);
    assert.equal(r.status, 201, `${o.kind} ${o.metadata.name}: ${JSON.stringify(r.body)}`);
  }
});

test('the statuses the translation computes are accepted by the status subresources and read back', { skip: missing }, async () => {
  const input = {
    gatewayClasses: await list(`${gwApi}/gatewayclasses`),
    gateways: await list(`${gwApi}/gateways`),
    httpRoutes: await list(`${gwApi}/httproutes`),
    referenceGrants: await list('/apis/gateway.networking.k8s.io/v1beta1/referencegrants'),
    namespaces: await list('/api/v1/namespaces'),
    services: await list('/api/v1/services'),
    secrets: await list('/api/v1/secrets'),
    policies: await list('/apis/wsgate.io/v1alpha1/websocketpolicies'),
  } as unknown as GatewayApiInput;
  const t = createGatewayApiTranslator()(input, [{ type: 'IPAddress', value: '192.0.2.7' }]);
  assert.equal(t.routes.length, 1);

  // Another controller's parent entry on the route: wsgate's writes must keep it (status.parents is atomic).
  const foreign = { parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'chat', name: 'theirs' }, controllerName: 'example.com/other', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', lastTransitionTime: now, observedGeneration: 1 }] };
  await putStatus(`${gwApi}/namespaces/chat/httproutes/chat`, () => ({ parents: [foreign] }));
  // Written twice, a minute apart: unchanged conditions keep their first lastTransitionTime.
  for (const at of [now, '2026-01-01T00:01:00Z']) {
    for (const c of t.gatewayClasses) await putStatus(`${gwApi}/gatewayclasses/${c.name}`, () => ({ conditions: stamped(c.conditions) }));
    for (const g of t.gateways) await putStatus(`${gwApi}/namespaces/${g.namespace}/gateways/${g.name}`, (s) => gatewayStatusBody(s, g, at));
    for (const r of t.httpRoutes) await putStatus(`${gwApi}/namespaces/${r.namespace}/httproutes/${r.name}`, (s) => httpRouteStatusBody(s, r.parents, [me], at));
    for (const p of t.policies) await putStatus(`/apis/wsgate.io/v1alpha1/namespaces/${p.namespace}/websocketpolicies/${p.name}`, (s) => policyStatusBody(s, p.ancestors, [me], at));
  }

  const condView = (cs: unknown) => (cs as ApiCondition[]).map((c) => `${c.type}=${c.status} ${c.reason}`);
  const gc = await env.api.must('GET', `${gwApi}/gatewayclasses/wsgate`);
  assert.deepEqual(condView((gc['status'] as { conditions: unknown }).conditions), ['Accepted=True Accepted']);
  const gw = (await env.api.must('GET', `${gwApi}/namespaces/wsgate/gateways/websockets`))['status'] as {
    addresses: unknown; conditions: unknown; listeners: { name: string; attachedRoutes: number; conditions: unknown }[];
  };
  assert.deepEqual(gw.addresses, [{ type: 'IPAddress', value: '192.0.2.7' }]);
  assert.deepEqual(condView(gw.conditions), ['Accepted=True Accepted', 'Programmed=True Programmed']);
  assert.deepEqual(gw.listeners.map((l) => [l.name, l.attachedRoutes, condView(l.conditions)]), [
    ['http', 0, ['Accepted=True Accepted', 'Conflicted=False NoConflicts', 'ResolvedRefs=True ResolvedRefs', 'Programmed=True Programmed']],
    ['https', 1, ['Accepted=True Accepted', 'Conflicted=False NoConflicts', 'ResolvedRefs=True ResolvedRefs', 'Programmed=True Programmed']],
  ]);
  const route = (await env.api.must('GET', `${gwApi}/namespaces/chat/httproutes/chat`))['status'] as { parents: { parentRef: unknown; controllerName: string; conditions: unknown }[] };
  assert.deepEqual(
    route.parents.flatMap((p) => (p.conditions as { lastTransitionTime: string }[]).map((c) => c.lastTransitionTime)),
    [now, now, now],
  );
  assert.deepEqual(route.parents.map((p) => [p.parentRef, p.controllerName, condView(p.conditions)]), [
    [foreign.parentRef, 'example.com/other', ['Accepted=True Accepted']],
    [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'wsgate', name: 'websockets', sectionName: 'https' }, 'wsgate.io/gateway-controller', ['Accepted=True Accepted', 'ResolvedRefs=True ResolvedRefs']],
  ]);
  const policy = (await env.api.must('GET', '/apis/wsgate.io/v1alpha1/namespaces/chat/websocketpolicies/chat'))['status'] as { ancestors: { ancestorRef: { name: string }; conditions: unknown }[] };
  assert.deepEqual(policy.ancestors.map((a) => [a.ancestorRef.name, condView(a.conditions)]), [['websockets', ['Accepted=True Accepted']]]);

  const ingInput = {
    ingressClasses: await list('/apis/networking.k8s.io/v1/ingressclasses'),
    ingresses: await list('/apis/networking.k8s.io/v1/ingresses'),
    policies: [],
    secrets: await list('/api/v1/secrets'),
  } as unknown as IngressInput;
  const it = createIngressTranslator()(ingInput, [{ type: 'IPAddress', value: '192.0.2.7' }]);
  assert.deepEqual(it.ingresses.map((i) => [i.name, i.warnings]), [['chat', ['spec.tls: Secret chat-tls for chat.example.com: not found or not kubernetes.io/tls']]]);
  for (const i of it.ingresses) await putStatus(`/apis/networking.k8s.io/v1/namespaces/${i.namespace}/ingresses/${i.name}`, () => ({ loadBalancer: { ingress: i.loadBalancer } }));
  const ing = await env.api.must('GET', '/apis/networking.k8s.io/v1/namespaces/chat/ingresses/chat');
  assert.deepEqual(ing['status'], { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } });
});
