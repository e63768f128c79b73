// The routing-API status writer against the fake API server (the upstream Gateway API CRDs and our
// WebSocketPolicy CRD registered from their files, Ingress and Event as the built-in types): JSON merge patches
// of each /status subresource, leader only, unchanged statuses not written again, everything rewritten when
// leadership is won, other controllers' entries in the atomic status.parents / status.ancestors lists and their
// Gateway conditions kept (https://gateway-api.sigs.k8s.io/reference/spec/#routestatus: "implementations
// MUST ... only add or remove their own entries"), wsgate's entries withdrawn from a route it no longer serves,
// and one Warning Event per Ingress warning, created once even across a new writer. The observed status comes
// straight from the fake server's store, standing in for the informers' copy.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import { pino } from 'pino';
import { apiCondition, gatewayGroup, type ParentReference } from '../../src/dag/gateway/types.ts';
import type { RoutingApiStatuses } from '../../src/dag/routing-apis.ts';
import { KubeClient, type RoutingStatusKind } from '../../src/kube/kube-client.ts';
import { RoutingApiStatusWriter } from '../../src/status/routing-api-status-writer.ts';
import { FakeApiServer, resourceFromCrd, type KObject } from '../support/fake-apiserver/index.ts';
import { ManualClock } from '../support/manual-clock.ts';

const root = join(import.meta.dirname, '..', '..');
const me = 'wsgate.io/gateway-controller';
const other = 'example.com/other';
const t0 = '2026-11-22T05:00:00Z';
const t1 = '2026-11-22T06:00:00Z';
const gwRef: ParentReference = { group: gatewayGroup, kind: 'Gateway', namespace: 'infra', name: 'gw', sectionName: 'http' };
const theirRef: ParentReference = { group: gatewayGroup, kind: 'Gateway', namespace: 'infra', name: 'theirs' };
const foreignEntry = { controllerName: other, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'theirs', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }] };
const foreignGatewayCondition = { type: 'example.com/Audited', status: 'True', reason: 'Audited', message: 'audited', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' };

const api = {
  GatewayClass: 'gateway.networking.k8s.io/v1',
  Gateway: 'gateway.networking.k8s.io/v1',
  HTTPRoute: 'gateway.networking.k8s.io/v1',
  WebSocketPolicy: 'wsgate.io/v1alpha1',
  Ingress: 'networking.k8s.io/v1',
} as const;

function registerTypes(fake: FakeApiServer): void {
  const crd = (file: string) => resourceFromCrd(yaml.loadAll(readFileSync(join(root, file), 'utf8')).find((d) => d !== null) as never);
  for (const f of ['gatewayclasses', 'gateways', 'httproutes']) fake.register(crd(`test/fixtures/gateway-api/${f}.yaml`));
  fake.register(crd('crds/wsgate.io_websocketpolicies.yaml'));
  const builtin = { namespaced: true, unconditionalUpdate: true, listMapKeys: {}, custom: false } as const;
  fake.register({ ...builtin, group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', singular: 'ingress', kind: 'Ingress', hasStatus: true, generation: true });
  fake.register({ ...builtin, group: '', version: 'v1', plural: 'events', singular: 'event', kind: 'Event', hasStatus: false, generation: false });
}

interface Setup {
  readonly fake: FakeApiServer;
  readonly client: KubeClient;
  readonly wall: { now: Date };
  readonly ingressUid: string;
  readonly logs: { msg: string; ingress?: string; reason?: string }[];
  writer(clock?: ManualClock): RoutingApiStatusWriter;
  status(kind: RoutingStatusKind, key: string): unknown;
}

async function setup(t: TestContext): Promise<Setup> {
  const fake = await FakeApiServer.start();
  t.after(() => fake.close());
  registerTypes(fake);
  const make = (kind: keyof typeof api, name: string, namespace?: string, status?: unknown): KObject => {
    const o = fake.create({ apiVersion: api[kind], kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec: {} });
    return status === undefined ? o : fake.updateStatus({ ...o, status });
  };
  make('GatewayClass', 'wsgate');
  make('Gateway', 'gw', 'infra', { conditions: [foreignGatewayCondition] });
  make('HTTPRoute', 'chat', 'chat', { parents: [{ parentRef: theirRef, ...foreignEntry }] });
  make('HTTPRoute', 'moved', 'chat', {
    parents: [{ parentRef: theirRef, ...foreignEntry }, { parentRef: gwRef, controllerName: me, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'old', observedGeneration: 1, lastTransitionTime: t0 }] }],
  });
  make('WebSocketPolicy', 'pol', 'chat', { ancestors: [{ ancestorRef: theirRef, ...foreignEntry }] });
  const ingressUid = make('Ingress', 'ing', 'chat').metadata.uid!;
  const client = new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } });
  t.after(() => client.close());
  const wall = { now: new Date(t0) };
  const logs: Setup['logs'] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Setup['logs'][number]) });
  const status = (kind: RoutingStatusKind, key: string): unknown => {
    const [ns, name] = key.includes('/') ? key.split('/') : ['', key];
    return fake.tryGet(api[kind], kind, ns!, name!)?.['status'];
  };
  const writer = (clock = new ManualClock()) => {
    const w = new RoutingApiStatusWriter({ client, log, clock, retryDelayMs: 2000, now: () => wall.now, instance: 'wsgate-0', observed: status });
    t.after(() => w.stop());
    return w;
  };
  return { fake, client, wall, ingressUid, logs, writer, status };
}

const cond = (type: string, ok: boolean, reason: string, generation = 1) => apiCondition(type, ok, reason, `${type} ${reason}`, generation);
const stamped = (c: ReturnType<typeof cond>, at: string) => ({ ...c, lastTransitionTime: at });

function statuses(s: Setup, o: { routeResolved?: boolean; warnings?: readonly string[]; address?: string } = {}): RoutingApiStatuses {
  const address = o.address ?? '192.0.2.7';
  return {
    gatewayClasses: [{ name: 'wsgate', conditions: [cond('Accepted', true, 'Accepted')] }],
    gateways: [
      {
        namespace: 'infra',
        name: 'gw',
        addresses: [{ type: 'IPAddress', value: address }],
        conditions: [cond('Accepted', true, 'Accepted'), cond('Programmed', true, 'Programmed')],
        listeners: [{ name: 'http', supportedKinds: [{ group: gatewayGroup, kind: 'HTTPRoute' }], attachedRoutes: 1, conditions: [cond('Accepted', true, 'Accepted')] }],
      },
    ],
    httpRoutes: [
      {
        namespace: 'chat',
        name: 'chat',
        parents: [{ parentRef: gwRef, controllerName: me, conditions: [cond('Accepted', true, 'Accepted'), o.routeResolved === false ? cond('ResolvedRefs', false, 'BackendNotFound') : cond('ResolvedRefs', true, 'ResolvedRefs')] }],
      },
      ...(o.warnings === undefined ? [{ namespace: 'chat', name: 'moved', parents: [{ parentRef: gwRef, controllerName: me, conditions: [cond('Accepted', true, 'Accepted')] }] }] : []),
    ],
    policies: [{ namespace: 'chat', name: 'pol', ancestors: [{ ancestorRef: gwRef, controllerName: me, conditions: [cond('Accepted', true, 'Accepted')] }] }],
    ingresses: [{ namespace: 'chat', name: 'ing', uid: s.ingressUid, loadBalancer: [{ ip: address }], warnings: o.warnings ?? [] }],
  };
}

const statusPatches = (fake: FakeApiServer) => fake.requests.filter((r) => r.verb === 'patch');
const eventCreates = (fake: FakeApiServer) => fake.requests.filter((r) => r.verb === 'create' && r.resource === 'events');

test('writes each status by merge patch only while leading, whole bodies, foreign entries kept, unchanged skipped, all rewritten on leadership won', async (t) => {
  const s = await setup(t);
  const w = s.writer();
  w.update(statuses(s));
  await w.idle();
  assert.equal(statusPatches(s.fake).length, 0, 'a follower writes nothing');

  w.setLeading(true);
  await w.idle();
  assert.deepEqual(
    statusPatches(s.fake).map((r) => [r.resource, r.namespace ?? '', r.name, r.contentType, r.status]).sort(),
    [
      ['gatewayclasses/status', '', 'wsgate', 'application/merge-patch+json', 200],
      ['gateways/status', 'infra', 'gw', 'application/merge-patch+json', 200],
      ['httproutes/status', 'chat', 'chat', 'application/merge-patch+json', 200],
      ['httproutes/status', 'chat', 'moved', 'application/merge-patch+json', 200],
      ['ingresses/status', 'chat', 'ing', 'application/merge-patch+json', 200],
      ['websocketpolicies/status', 'chat', 'pol', 'application/merge-patch+json', 200],
    ],
  );
  const a = (type: string, reason: string, at = t0) => stamped(cond(type, true, reason), at);
  assert.deepEqual(s.status('GatewayClass', 'wsgate'), { conditions: [a('Accepted', 'Accepted')] });
  assert.deepEqual(s.status('Gateway', 'infra/gw'), {
    addresses: [{ type: 'IPAddress', value: '192.0.2.7' }],
    conditions: [foreignGatewayCondition, a('Accepted', 'Accepted'), a('Programmed', 'Programmed')],
    listeners: [{ name: 'http', supportedKinds: [{ group: gatewayGroup, kind: 'HTTPRoute' }], attachedRoutes: 1, conditions: [a('Accepted', 'Accepted')] }],
  });
  assert.deepEqual(s.status('HTTPRoute', 'chat/chat'), {
    parents: [{ parentRef: theirRef, ...foreignEntry }, { parentRef: gwRef, controllerName: me, conditions: [a('Accepted', 'Accepted'), a('ResolvedRefs', 'ResolvedRefs')] }],
  });
  // The entry wsgate wrote before keeps its lastTransitionTime; its message is the new one.
  assert.deepEqual(s.status('HTTPRoute', 'chat/moved'), { parents: [{ parentRef: theirRef, ...foreignEntry }, { parentRef: gwRef, controllerName: me, conditions: [a('Accepted', 'Accepted')] }] });
  assert.deepEqual(s.status('WebSocketPolicy', 'chat/pol'), { ancestors: [{ ancestorRef: theirRef, ...foreignEntry }, { ancestorRef: gwRef, controllerName: me, conditions: [a('Accepted', 'Accepted')] }] });
  assert.deepEqual(s.status('Ingress', 'chat/ing'), { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } });
  assert.equal(w.writes, 6);

  // The next build, equal statuses in new objects: nothing written.
  w.update(statuses(s));
  await w.idle();
  assert.equal(w.writes, 6, 'unchanged statuses are not written again');

  // A backend disappears an hour later: only the route is written; ResolvedRefs flips, Accepted keeps its time.
  s.wall.now = new Date(t1);
  w.update(statuses(s, { routeResolved: false }));
  await w.idle();
  assert.equal(w.writes, 7);
  assert.deepEqual(s.status('HTTPRoute', 'chat/chat'), {
    parents: [{ parentRef: theirRef, ...foreignEntry }, { parentRef: gwRef, controllerName: me, conditions: [a('Accepted', 'Accepted'), stamped(cond('ResolvedRefs', false, 'BackendNotFound'), t1)] }],
  });

  // Leadership lost: nothing written; won again: every object rewritten.
  w.setLeading(false);
  w.update(statuses(s, { routeResolved: false, address: '192.0.2.8' }));
  await w.idle();
  assert.equal(w.writes, 7);
  w.setLeading(true);
  await w.idle();
  assert.equal(w.writes, 13);
  assert.deepEqual(s.status('Ingress', 'chat/ing'), { loadBalancer: { ingress: [{ ip: '192.0.2.8' }] } });
  assert.deepEqual((s.status('Gateway', 'infra/gw') as { addresses: unknown }).addresses, [{ type: 'IPAddress', value: '192.0.2.8' }]);
});

test('an HTTPRoute no longer served has wsgate\'s parent entries withdrawn once, other controllers\' kept', async (t) => {
  const s = await setup(t);
  const w = s.writer();
  w.setLeading(true);
  w.update(statuses(s));
  await w.idle();
  const before = w.writes;
  // "moved" is left out of the next build (its parentRef now names another controller's Gateway).
  w.update(statuses(s, { warnings: [] }));
  await w.idle();
  assert.equal(w.writes, before + 1);
  assert.deepEqual(s.status('HTTPRoute', 'chat/moved'), { parents: [{ parentRef: theirRef, ...foreignEntry }] });
  w.update(statuses(s, { warnings: [] }));
  await w.idle();
  assert.equal(w.writes, before + 1, 'withdrawn once, then forgotten');
});

test('each Ingress warning becomes one Warning Event and one log line, once, even for a new writer', async (t) => {
  const s = await setup(t);
  const ignored = 'nginx.ingress.kubernetes.io/configuration-snippet: not supported by wsgate';
  const bodySize = 'nginx.ingress.kubernetes.io/proxy-body-size: does not apply to WebSockets (use a WebSocketPolicy limits.maxMessageBytes)';
  const tls = 'spec.tls: Secret chat-tls for chat.example.com: not found or not kubernetes.io/tls';
  const w = s.writer();
  w.update(statuses(s, { warnings: [ignored, bodySize] }));
  await w.idle();
  assert.equal(eventCreates(s.fake).length, 0, 'a follower reports nothing');
  w.setLeading(true);
  await w.idle();

  const events = async () =>
    (await listEvents(s.fake)).map((e): Record<string, unknown> => {
      const { metadata, ...rest } = e as { metadata: { name: string; namespace: string } };
      return { name: metadata.name.replace(/\.[0-9a-f]{16}$/, '.<hash>'), namespace: metadata.namespace, ...rest };
    });
  const event = (reason: string, message: string) => ({
    name: 'ing.<hash>',
    namespace: 'chat',
    involvedObject: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: 'chat', name: 'ing', uid: s.ingressUid },
    type: 'Warning',
    reason,
    message,
    source: { component: 'wsgate.io/ingress-controller' },
    reportingComponent: 'wsgate.io/ingress-controller',
    reportingInstance: 'wsgate-0',
    // The fake keeps what was sent; a real API server stores whole seconds (gateway-apiserver.test.ts).
    firstTimestamp: '2026-11-22T05:00:00.000Z',
    lastTimestamp: '2026-11-22T05:00:00.000Z',
    count: 1,
  });
  const byMessage = (a: { message?: unknown }, b: { message?: unknown }) => String(a.message).localeCompare(String(b.message));
  assert.deepEqual((await events()).sort(byMessage), [event('IgnoredAnnotation', ignored), event('IgnoredAnnotation', bodySize)].sort(byMessage));
  assert.deepEqual(s.logs.map((l) => [l.ingress, l.reason, l.msg]).sort(), [['chat/ing', 'IgnoredAnnotation', ignored], ['chat/ing', 'IgnoredAnnotation', bodySize]]);

  // Every later build carries the same warnings: no new Event. A new warning: one more.
  w.update(statuses(s, { warnings: [ignored, bodySize] }));
  await w.idle();
  assert.equal(eventCreates(s.fake).length, 2);
  w.update(statuses(s, { warnings: [ignored, bodySize, tls] }));
  await w.idle();
  assert.equal(eventCreates(s.fake).length, 3);
  assert.deepEqual((await events()).find((e) => e['message'] === tls)?.['reason'], 'InvalidCertificateRef');
  // Leadership lost and won in this process: nothing reported again (not even asked).
  w.setLeading(false);
  w.setLeading(true);
  await w.idle();
  assert.equal(eventCreates(s.fake).length, 3);

  // Another writer (a new leader, or this process restarted): the creates find the Events and stop there.
  w.stop();
  const next = s.writer();
  next.setLeading(true);
  next.update(statuses(s, { warnings: [ignored, bodySize, tls] }));
  await next.idle();
  assert.deepEqual(eventCreates(s.fake).slice(3).map((r) => r.status), [409, 409, 409]);
  assert.equal((await listEvents(s.fake)).length, 3);
  assert.equal(s.logs.length, 3, 'no log line for a warning already reported');
});

test('a failed status write and a failed Event are retried when the clock passes the delay, the Event not counted as reported', async (t) => {
  const s = await setup(t);
  const clock = new ManualClock();
  const w = s.writer(clock);
  const warning = 'nginx.ingress.kubernetes.io/ssl-redirect: not supported by wsgate';
  s.fake.faults.failNext({ verb: 'patch', resource: 'ingresses/status' });
  s.fake.faults.failNext({ verb: 'create', resource: 'events', status: 503 });
  w.setLeading(true);
  w.update(statuses(s, { warnings: [warning] }));
  await w.idle();
  assert.equal(s.status('Ingress', 'chat/ing'), undefined, 'the first write failed');
  assert.equal((await listEvents(s.fake)).length, 0);
  assert.equal(clock.nextAt, clock.now() + 2000, 'one retry armed');
  clock.advance(2000);
  await w.idle();
  assert.deepEqual(s.status('Ingress', 'chat/ing'), { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } });
  assert.deepEqual((await listEvents(s.fake)).map((e) => e['message']), [warning]);
  assert.deepEqual(s.logs.filter((l) => l.msg === 'status write failed; will retry').length, 2);
  assert.equal(clock.pending, 0, 'no retry left armed');
});

async function listEvents(fake: FakeApiServer): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${fake.url}/api/v1/namespaces/chat/events`, { headers: { authorization: 'Bearer fake-token' } });
  return ((await res.json()) as { items: Record<string, unknown>[] }).items;
}
