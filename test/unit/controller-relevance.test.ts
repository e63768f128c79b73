// Only changes that can alter the table start a build: objects no route names, and changes to fields the builder
// does not read, are judged from the last build's reference index and start none. The projections are checked
// against the builder itself: what they drop, the build must not see.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { createBuilder, type BuildResult } from '../../src/dag/build.ts';
import type { BuildInput, EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../../src/dag/input.ts';
import { Controller } from '../../src/controller/controller.ts';
import { startController, TestSource } from '../support/controller-harness.ts';
import { objectChangeMatters } from '../../src/controller/relevance.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import type { ObjectChange, SourceChange } from '../../src/sources/source.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { buildView } from '../support/snapshot-view.ts';

const ns = 'apps';
const route = (name: string, svc: string, extra: Partial<RouteObject['metadata']> = {}, spec: Record<string, unknown> = {}): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: { namespace: ns, name, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z', ...extra },
  spec: { hostnames: [`${name}.example`], rules: [{ backendRefs: [{ name: svc, port: 80 }] }], ...spec },
});
const service = (name: string, targetPort: number | string = 8080, protocol = 'TCP'): ServiceLite => ({
  metadata: { namespace: ns, name },
  spec: { ports: [{ name: 'ws', port: 80, targetPort, protocol }] },
});
const slice = (svc: string, addrs: readonly string[], labels: Record<string, string> = {}, addressType: 'IPv4' | 'IPv6' = 'IPv4'): EndpointSliceLite => ({
  metadata: { namespace: ns, name: `${svc}-x`, labels: { ...labels, 'kubernetes.io/service-name': svc } },
  addressType,
  ports: [{ name: 'ws', port: 8080, protocol: 'TCP' }],
  endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true }, targetRef: { name: `pod-${a}` } })),
});
const secret = (name: string, data: Record<string, string>, type = 'Opaque'): SecretLite => ({ metadata: { namespace: ns, name }, type, data });

test('controller: unreferenced objects and unread fields start no build; the next relevant change does', async () => {
  const base: BuildInput = {
    routes: [route('chat', 'chat', {}, { tls: { secretName: 'chat-tls' } })],
    services: [service('chat'), service('other')],
    endpointSlices: [slice('chat', ['10.0.0.1']), slice('other', ['10.0.1.1'])],
    secrets: [secret('unrelated', { k: 'dg==' })],
  };
  const { source, controller, builds, nextBuild } = startController(base);
  try {
    assert.equal(builds.length, 1);
    const otherSlice = slice('other', ['10.0.1.1', '10.0.1.2']);
    const unrelated = secret('unrelated', { k: 'dw==' });
    const chatRelabelled = slice('chat', ['10.0.0.1'], { 'app.kubernetes.io/version': '2' });
    const chatService = service('chat', 'ws', 'TCP');
    const input1: BuildInput = { ...base, services: [chatService, service('other')], endpointSlices: [chatRelabelled, otherSlice], secrets: [unrelated] };
    source.emit(input1, { kind: 'endpointslices', key: `${ns}/other-x`, before: base.endpointSlices[1], after: otherSlice });
    source.emit(input1, { kind: 'services', key: `${ns}/other`, after: service('other') });
    source.emit(input1, { kind: 'secrets', key: `${ns}/unrelated`, before: base.secrets[0], after: unrelated });
    source.emit(input1, { kind: 'endpointslices', key: `${ns}/chat-x`, before: base.endpointSlices[0], after: chatRelabelled });
    source.emit(input1, { kind: 'services', key: `${ns}/chat`, before: base.services[0], after: chatService });
    source.emit(input1, { kind: 'websocketroutes', key: `${ns}/chat`, before: base.routes[0], after: { ...base.routes[0]!, metadata: { ...base.routes[0]!.metadata, labels: { team: 'a' } } } });
    assert.equal(controller.ignoredSignals, 6);
    // The TLS Secret the route names does not exist yet: its arrival matters.
    const built = nextBuild();
    const tls = secret('chat-tls', { 'tls.crt': '', 'tls.key': '' }, 'kubernetes.io/tls');
    source.emit({ ...input1, secrets: [unrelated, tls] }, { kind: 'secrets', key: `${ns}/chat-tls`, after: tls });
    await built;
    assert.equal(builds.length, 2);
    assert.equal(controller.ignoredSignals, 6);
    // A route that names the other Service makes its slice relevant from the next build on.
    const second = route('feed', 'other');
    const input2: BuildInput = { ...input1, routes: [...input1.routes, second], secrets: [unrelated, tls] };
    const built2 = nextBuild();
    source.emit(input2, { kind: 'websocketroutes', key: `${ns}/feed`, after: second });
    await built2;
    const moved = slice('other', ['10.0.1.3']);
    const built3 = nextBuild();
    source.emit({ ...input2, endpointSlices: [chatRelabelled, moved] }, { kind: 'endpointslices', key: `${ns}/other-x`, before: otherSlice, after: moved });
    await built3;
    assert.equal(builds.length, 4);
    assert.deepEqual(
      builds[3]!.content.routes.get(`${ns}/feed`)?.rules[0]?.backends[0]?.endpoints.map((e) => e.address),
      ['10.0.1.3:8080'],
    );
  } finally {
    controller.stop();
  }
});

test('relevance: a slice that moves to or from a referenced Service matters, a deleted referenced one too', () => {
  const refs = { services: new Set([`${ns}/chat`]), secrets: new Set<string>() };
  const a = slice('chat', ['10.0.0.1']);
  const b = slice('other', ['10.0.0.1']);
  assert.equal(objectChangeMatters({ kind: 'endpointslices', key: `${ns}/x`, before: a, after: b }, refs), true);
  assert.equal(objectChangeMatters({ kind: 'endpointslices', key: `${ns}/x`, before: b, after: a }, refs), true);
  assert.equal(objectChangeMatters({ kind: 'endpointslices', key: `${ns}/x`, before: a }, refs), true);
  assert.equal(objectChangeMatters({ kind: 'endpointslices', key: `${ns}/x`, before: b }, refs), false);
  assert.equal(objectChangeMatters({ kind: 'services', key: `${ns}/chat` }, refs), true);
});

// What each projection drops, the builder must not read: build before and after such a change and compare the
// whole output. Should the builder start reading one of these fields, this fails.
test('relevance: a change the projection calls irrelevant leaves the whole build equal', () => {
  const builder = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const label = fc.stringMatching(/^[a-z]{1,6}$/);
  const unread = fc.record({
    routeLabels: fc.dictionary(label, label, { maxKeys: 2 }),
    routeAnnotations: fc.dictionary(label, label, { maxKeys: 2 }),
    uid: label,
    sliceLabels: fc.dictionary(label, label, { maxKeys: 2 }),
    addressType: fc.constantFrom('IPv4' as const, 'IPv6' as const),
    targetPort: fc.oneof(fc.integer({ min: 1, max: 65535 }), label),
    protocol: fc.constantFrom('TCP', 'UDP', 'SCTP'),
    secretType: fc.constantFrom('Opaque', 'kubernetes.io/tls', 'example.com/x'),
  });
  const refs = { services: new Set([`${ns}/chat`]), secrets: new Set([`${ns}/keys`]) };
  const r0 = route('chat', 'chat', {}, { auth: { apiKey: { secretName: 'keys' } } });
  const input: BuildInput = { routes: [r0], services: [service('chat')], endpointSlices: [slice('chat', ['10.0.0.1', '10.0.0.2'])], secrets: [secret('keys', { a: 'a2V5' })] };
  const want = builder(input);
  fc.assert(
    fc.property(unread, (u) => {
      const r1: RouteObject = { ...r0, metadata: { ...r0.metadata, labels: u.routeLabels, annotations: u.routeAnnotations, uid: u.uid } };
      const s1 = service('chat', u.targetPort, u.protocol);
      const sl1 = slice('chat', ['10.0.0.1', '10.0.0.2'], u.sliceLabels, u.addressType);
      const k1 = secret('keys', { a: 'a2V5' }, u.secretType);
      const changes: ObjectChange[] = [
        { kind: 'websocketroutes', key: `${ns}/chat`, before: r0, after: r1 },
        { kind: 'services', key: `${ns}/chat`, before: input.services[0], after: s1 },
        { kind: 'endpointslices', key: `${ns}/chat-x`, before: input.endpointSlices[0], after: sl1 },
        { kind: 'secrets', key: `${ns}/keys`, before: input.secrets[0], after: k1 },
      ];
      for (const c of changes) assert.equal(objectChangeMatters(c, refs), false, c.kind);
      const got = builder({ routes: [r1], services: [s1], endpointSlices: [sl1], secrets: [k1] });
      assert.equal(got.content.hash, want.content.hash);
      assert.deepEqual(buildView(got), buildView(want));
    }),
    { numRuns: 50 },
  );
});

test('controller with a build engine: every signal reaches the engine; one arriving during a build is judged by that build', async () => {
  const base: BuildInput = { routes: [route('chat', 'chat')], services: [service('chat'), service('other')], endpointSlices: [], secrets: [] };
  const source = new TestSource(base);
  const builder = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const noted: SourceChange[] = [];
  const asked: ((r: BuildResult) => void)[] = [];
  let askedNext: (() => void) | undefined;
  const engine = {
    note: (c: SourceChange) => void noted.push(c),
    build: () =>
      new Promise<BuildResult>((resolve) => {
        asked.push(resolve);
        askedNext?.();
      }),
    close: async () => {},
  };
  const controller = new Controller({ source, build: engine, holder: new SnapshotHolder(), log: pino({ level: 'silent' }), metrics: new Metrics(), holdoffMs: 0, maxHoldoffMs: 0, clock: source.clock });
  const started = controller.start();
  assert.equal(asked.length, 1);
  // During the first build there is no reference index yet: the signal waits for the build's.
  const other: ObjectChange = { kind: 'services', key: `${ns}/other`, before: service('other'), after: service('other', 9090) };
  source.emit(base, other);
  assert.equal(controller.ignoredSignals, 0);
  asked[0]!(builder(base));
  await started;
  assert.equal(controller.ignoredSignals, 1, 'judged against the finished build: nothing names Service other');
  assert.equal(asked.length, 1);
  const second = new Promise<void>((resolve) => (askedNext = resolve));
  const chat: ObjectChange = { kind: 'services', key: `${ns}/chat`, before: service('chat'), after: { ...service('chat'), spec: { ports: [{ name: 'ws', port: 81 }] } } };
  source.emit(base, chat);
  await second;
  assert.equal(asked.length, 2);
  assert.deepEqual(noted, [{ objects: [other] }, { objects: [chat] }]);
  asked[1]!(builder(base));
  controller.stop();
});

// The Gateway API and Ingress: every change to their (trimmed) objects matters; of Services and Secrets, those
// the translators read matter even when no translated route came of them (a backend not found yet, a listener
// certificate), and a Service's appProtocol matters (backend-protocol rules).
test('routing APIs: their objects matter; the Services and Secrets the translators read are in the references', async () => {
  const { createRoutingBuilder } = await import('../../src/dag/routing-apis.ts');
  const build = createRoutingBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const result = build({
    routes: [],
    services: [],
    endpointSlices: [],
    secrets: [],
    routingApis: {
      addresses: [],
      policies: [],
      gatewayApi: {
        gatewayClasses: [{ metadata: { name: 'wsgate' }, spec: { controllerName: 'wsgate.io/gateway-controller' } }],
        gateways: [{ metadata: { namespace: ns, name: 'edge' }, spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'https', port: 443, protocol: 'HTTPS', hostname: 'a.example', tls: { certificateRefs: [{ name: 'edge-cert' }] } }] } }],
        httpRoutes: [{ metadata: { namespace: ns, name: 'chat' }, spec: { parentRefs: [{ name: 'edge' }], rules: [{ backendRefs: [{ name: 'missing', port: 80 }] }] } }],
        referenceGrants: [],
        namespaces: [],
      },
      ingress: { ingressClasses: [], ingresses: [{ metadata: { namespace: ns, name: 'ing' }, spec: { tls: [{ secretName: 'ing-cert' }], defaultBackend: { service: { name: 'ing-svc', port: { number: 80 } } } } }] },
    },
  });
  const refs = result.references;
  // (The build's own references also hold the placeholder a translated backend that does not resolve names.)
  for (const s of [`${ns}/ing-svc`, `${ns}/missing`]) assert.ok(refs.services.has(s), s);
  for (const s of [`${ns}/edge-cert`, `${ns}/ing-cert`]) assert.ok(refs.secrets.has(s), s);
  const matters = (c: ObjectChange) => objectChangeMatters(c, refs);
  assert.equal(matters({ kind: 'httproutes', key: `${ns}/other`, after: { metadata: { namespace: ns, name: 'other' }, spec: {} } }), true);
  assert.equal(matters({ kind: 'namespaces', key: '/apps', after: { metadata: { name: 'apps' } } }), true);
  assert.equal(matters({ kind: 'services', key: `${ns}/missing`, after: service('missing') }), true, 'a backend not found yet appears');
  assert.equal(matters({ kind: 'services', key: `${ns}/unnamed`, after: service('unnamed') }), false);
  assert.equal(matters({ kind: 'secrets', key: `${ns}/edge-cert`, after: secret('edge-cert', { 'tls.crt': 'x' }) }), true);
  const withApp = (appProtocol: string): ServiceLite => ({ metadata: { namespace: ns, name: 'missing' }, spec: { ports: [{ name: 'ws', port: 80, appProtocol }] } });
  assert.equal(matters({ kind: 'services', key: `${ns}/missing`, before: withApp('kubernetes.io/ws'), after: withApp('kubernetes.io/wss') }), true, 'appProtocol is read');
});
