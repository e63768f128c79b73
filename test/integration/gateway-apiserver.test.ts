// The Gateway API and Ingress examples against a REAL kube-apiserver (test/support/kube-env.ts): the upstream
// Gateway API CRDs (standard channel v1.6.1, test/fixtures/gateway-api) and our WebSocketPolicy CRD install;
// every object of examples/gateway-api and examples/ingress is admitted by their schemas and CEL rules; the
// statuses the translation computes for them, merged by src/status/gateway-api-status.ts, are accepted by the
// status subresources (the upstream status schemas) and read back, another controller's parent entry kept and
// unchanged conditions keeping their lastTransitionTime: GatewayClass Accepted, Gateway Accepted/Programmed with addresses and per-listener
// attachedRoutes, HTTPRoute parents, WebSocketPolicy ancestors, Ingress status.loadBalancer. Then the leader's
// RoutingApiStatusWriter does the same through KubeClient: its merge patches are accepted by each /status
// subresource and its Warning Event for the Ingress by the core v1 Event validation. Skipped where the binaries
// are absent.
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
import { pino } from 'pino';
import { KubeClient, type RoutingStatusKind } from '../../src/kube/kube-client.ts';
import { RoutingApiStatusWriter } from '../../src/status/routing-api-status-writer.ts';
import { ManualClock } from '../support/manual-clock.ts';

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

/** The translators' inputs, as the server has them now. */
async function gatewayApiInput(): Promise<GatewayApiInput> {
  return {
    gatewayClasses: await list(`${gwApi}/gatewayclasses`),
    gateways: await list(`${gwApi}/gateways`),
    httpRoutes: await list(`${gwApi}/httproutes`),
    referenceGrants: await list('/apis/gateway.networking.k8s.io/v1beta1/referencegrants'),
    namespaces: await list('/api/v1/namespaces'),
    services: await list('/api/v1/services'),
    secrets: await list('/api/v1/secrets'),
    policies: await list('/apis/wsgate.io/v1alpha1/websocketpolicies'),
  } as unknown as GatewayApiInput;
}

async function ingressInput(): Promise<IngressInput> {
  return {
    ingressClasses: await list('/apis/networking.k8s.io/v1/ingressclasses'),
    ingresses: await list('/apis/networking.k8s.io/v1/ingresses'),
    policies: [],
    secrets: await list('/api/v1/secrets'),
  } as unknown as IngressInput;
}

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
  const input = await gatewayApiInput();
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

  const ingInput = await ingressInput();
  const it = createIngressTranslator()(ingInput, [{ type: 'IPAddress', value: '192.0.2.7' }]);
  assert.deepEqual(it.ingresses.map((i) => [i.name, i.warnings]), [['chat', ['spec.tls: Secret chat-tls for chat.example.com: not found or not kubernetes.io/tls']]]);
  for (const i of it.ingresses) await putStatus(`/apis/networking.k8s.io/v1/namespaces/${i.namespace}/ingresses/${i.name}`, () => ({ loadBalancer: { ingress: i.loadBalancer } }));
  const ing = await env.api.must('GET', '/apis/networking.k8s.io/v1/namespaces/chat/ingresses/chat');
  assert.deepEqual(ing['status'], { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } });
});

test('the routing-API status writer\'s merge patches are accepted by every status subresource, and its Event is created', { skip: missing }, async () => {
  const gwInput = await gatewayApiInput();
  const ingInput = await ingressInput();
  // A new Service address: every Gateway and Ingress status changes, so every write must land.
  const addresses = [{ type: 'IPAddress' as const, value: '192.0.2.9' }];
  const t = createGatewayApiTranslator()(gwInput, addresses);
  const it = createIngressTranslator()(ingInput, addresses);

  // The server's statuses, read once: the informers' copy the lead wires in.
  const paths: Record<RoutingStatusKind, (key: string) => string> = {
    GatewayClass: (k) => `${gwApi}/gatewayclasses/${k}`,
    Gateway: (k) => `${gwApi}/namespaces/${k.replace('/', '/gateways/')}`,
    HTTPRoute: (k) => `${gwApi}/namespaces/${k.replace('/', '/httproutes/')}`,
    WebSocketPolicy: (k) => `/apis/wsgate.io/v1alpha1/namespaces/${k.replace('/', '/websocketpolicies/')}`,
    Ingress: (k) => `/apis/networking.k8s.io/v1/namespaces/${k.replace('/', '/ingresses/')}`,
  };
  const keys: [RoutingStatusKind, string][] = [
    ...t.gatewayClasses.map((c): [RoutingStatusKind, string] => ['GatewayClass', c.name]),
    ...t.gateways.map((g): [RoutingStatusKind, string] => ['Gateway', `${g.namespace}/${g.name}`]),
    ...t.httpRoutes.map((r): [RoutingStatusKind, string] => ['HTTPRoute', `${r.namespace}/${r.name}`]),
    ...t.policies.map((p): [RoutingStatusKind, string] => ['WebSocketPolicy', `${p.namespace}/${p.name}`]),
    ...it.ingresses.map((i): [RoutingStatusKind, string] => ['Ingress', `${i.namespace}/${i.name}`]),
  ];
  const observed = new Map<string, unknown>();
  for (const [kind, key] of keys) observed.set(`${kind} ${key}`, (await env.api.must('GET', paths[kind](key)))['status']);

  const failures: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void failures.push(line) });
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: env.adminKubeconfig } });
  const w = new RoutingApiStatusWriter({ client, log, clock: new ManualClock(), now: () => new Date('2026-01-01T00:02:00Z'), instance: 'wsgate-test', observed: (kind, key) => observed.get(`${kind} ${key}`) });
  try {
    w.update({ gatewayClasses: t.gatewayClasses, gateways: t.gateways, httpRoutes: t.httpRoutes, policies: [...t.policies, ...it.policies], ingresses: it.ingresses });
    w.setLeading(true);
    await w.idle();
  } finally {
    w.stop();
    client.close();
  }
  // The one warning line is the Event's; a refused write would have logged "status write failed".
  assert.deepEqual(failures.map((l) => (JSON.parse(l) as { msg: string }).msg), ['spec.tls: Secret chat-tls for chat.example.com: not found or not kubernetes.io/tls']);
  assert.equal(w.writes, keys.length + 1, 'every status written, and one Event');

  const gw = (await env.api.must('GET', paths.Gateway('wsgate/websockets')))['status'] as { addresses: unknown };
  assert.deepEqual(gw.addresses, [{ type: 'IPAddress', value: '192.0.2.9' }]);
  const ing = await env.api.must('GET', paths.Ingress('chat/chat'));
  assert.deepEqual(ing['status'], { loadBalancer: { ingress: [{ ip: '192.0.2.9' }] } });
  const route = (await env.api.must('GET', paths.HTTPRoute('chat/chat')))['status'] as { parents: { controllerName: string }[] };
  assert.deepEqual(route.parents.map((p) => p.controllerName), ['example.com/other', me], 'the other controller\'s parent entry kept');

  const events = ((await env.api.must('GET', '/api/v1/namespaces/chat/events'))['items'] as Record<string, unknown>[]).filter((e) => (e['involvedObject'] as { kind: string }).kind === 'Ingress');
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.match((e['metadata'] as { name: string }).name, /^chat\.[0-9a-f]{16}$/);
  assert.deepEqual(
    { involvedObject: e['involvedObject'], type: e['type'], reason: e['reason'], message: e['message'], source: e['source'], reportingComponent: e['reportingComponent'], reportingInstance: e['reportingInstance'], firstTimestamp: e['firstTimestamp'], lastTimestamp: e['lastTimestamp'], count: e['count'] },
    {
      involvedObject: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: 'chat', name: 'chat', uid: (ing['metadata'] as { uid: string }).uid },
      type: 'Warning',
      reason: 'InvalidCertificateRef',
      message: 'spec.tls: Secret chat-tls for chat.example.com: not found or not kubernetes.io/tls',
      source: { component: 'wsgate.io/ingress-controller' },
      reportingComponent: 'wsgate.io/ingress-controller',
      reportingInstance: 'wsgate-test',
      firstTimestamp: '2026-01-01T00:02:00Z',
      lastTimestamp: '2026-01-01T00:02:00Z',
      count: 1,
    },
  );
});
