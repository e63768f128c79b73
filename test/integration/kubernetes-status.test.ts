// Fake API server: stands in for /status server-side apply so writes can be counted and failed; real SSA and managedFields are checked in real-apiserver.test.ts.
// The status writer against the fake API server: server-side apply to /status as "wsgate", leader only,
// no-op writes skipped, lastTransitionTime kept while a condition's status holds, rewrite on leadership won.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeApiServer, type KObject } from '../support/fake-apiserver/index.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { KubeClient } from '../../src/kube/kube-client.ts';
import { StatusWriter } from '../../src/status/status-writer.ts';
import { KubernetesSource } from '../../src/sources/kubernetes/source.ts';
import type { Condition, RouteStatus } from '../../src/model/snapshot.ts';
import { objectKey } from '../../src/model/snapshot.ts';

const log = pino({ level: 'silent' });

function route(name: string): KObject {
  return { apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name, namespace: 'default' }, spec: { rules: [] } };
}

function status(name: string, accepted: Condition['status'], reason = 'Accepted', generation = 1): RouteStatus {
  const c = (type: Condition['type'], s: Condition['status'], r: string): Condition => ({ type, status: s, reason: r, message: `${type} ${r}`, observedGeneration: generation });
  return { key: objectKey('default', name), generation, conditions: [c('Accepted', accepted, reason), c('Programmed', 'True', 'Programmed')] };
}

type Served = { observedGeneration: number; conditions: { type: string; status: string; reason: string; lastTransitionTime: string; observedGeneration: number }[] };

async function setup(t: TestContext, names: string[]): Promise<{ fake: FakeApiServer; client: KubeClient; clock: { now: Date } }> {
  const fake = await FakeApiServer.start();
  t.after(() => fake.close());
  for (const n of names) fake.create(route(n));
  return { fake, client: new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } }), clock: { now: new Date('2026-11-22T05:00:00Z') } };
}

const served = (fake: FakeApiServer, name: string): Served => fake.get('wsgate.io/v1alpha1', 'WebSocketRoute', 'default', name)['status'] as Served;
const patches = (fake: FakeApiServer): number => fake.requests.filter((r) => r.verb === 'patch').length;

test('writes only while leading, by server-side apply on /status, and skips no-op writes', async (t) => {
  const { fake, client, clock } = await setup(t, ['a', 'b']);
  const w = new StatusWriter({ client, log, clock: new ManualClock(), now: () => clock.now });
  t.after(() => w.stop());
  w.update([status('a', 'True'), status('b', 'False', 'BackendNotFound')]);
  await w.idle();
  assert.equal(patches(fake), 0, 'a follower writes nothing');

  w.setLeading(true);
  await w.idle();
  assert.equal(patches(fake), 2);
  const req = fake.requests.find((r) => r.verb === 'patch')!;
  assert.equal(req.resource, 'websocketroutes/status');
  assert.equal(req.query['fieldManager'], 'wsgate');
  assert.equal(req.query['force'], 'true');
  assert.match(req.contentType ?? '', /^application\/apply-patch\+yaml/);
  assert.deepEqual(served(fake, 'b').conditions.map((c) => `${c.type}=${c.status}/${c.reason}`), ['Accepted=False/BackendNotFound', 'Programmed=True/Programmed']);
  assert.equal(served(fake, 'a').observedGeneration, 1);
  assert.equal(served(fake, 'a').conditions[0]!.lastTransitionTime, '2026-11-22T05:00:00Z');

  w.update([status('a', 'True'), status('b', 'False', 'BackendNotFound')]);
  await w.idle();
  assert.equal(patches(fake), 2, 'unchanged statuses are not written again');

  // Reason changes but status holds: written, lastTransitionTime kept. Status flips: a new transition time.
  clock.now = new Date('2026-11-22T06:00:00Z');
  w.update([status('a', 'True', 'StillFine'), status('b', 'True')]);
  await w.idle();
  assert.equal(patches(fake), 4);
  assert.equal(served(fake, 'a').conditions[0]!.lastTransitionTime, '2026-11-22T05:00:00Z');
  assert.equal(served(fake, 'a').conditions[0]!.reason, 'StillFine');
  assert.equal(served(fake, 'b').conditions[0]!.lastTransitionTime, '2026-11-22T06:00:00Z');
  assert.equal(served(fake, 'b').conditions[1]!.lastTransitionTime, '2026-11-22T05:00:00Z');

  // Leadership lost: nothing written; won again: everything rewritten (the server skips what is unchanged).
  w.setLeading(false);
  w.update([status('a', 'False', 'Conflicted'), status('b', 'True')]);
  await w.idle();
  assert.equal(patches(fake), 4);
  w.setLeading(true);
  await w.idle();
  assert.equal(patches(fake), 6);
  assert.equal(served(fake, 'a').conditions[0]!.reason, 'Conflicted');
});

test('a route deleted meanwhile is skipped, and a failed write is retried', async (t) => {
  const { fake, client } = await setup(t, ['a']);
  const clock = new ManualClock();
  const w = new StatusWriter({ client, log, clock, retryDelayMs: 2000 });
  t.after(() => w.stop());
  fake.faults.failNext({ verb: 'patch', count: 2 });
  w.setLeading(true);
  w.update([status('a', 'True'), status('gone', 'True')]);
  // idle() resolves once the failed writes have armed their retry; the retry fires only when the clock passes it.
  await w.idle();
  assert.equal(served(fake, 'a')?.conditions, undefined, 'the first write of a failed');
  assert.equal(clock.nextAt, clock.now() + 2000, 'one retry armed, retryDelayMs away');
  let rounds = 0;
  while (served(fake, 'a')?.conditions?.length !== 2 && rounds < 3) {
    clock.advance(2000);
    rounds++;
    await w.idle();
  }
  assert.equal(served(fake, 'a')?.conditions?.length, 2, `written after ${rounds} retry round(s)`);
  assert.equal(clock.pending, 0, 'no retry left armed');
  assert.ok(fake.requests.some((r) => r.verb === 'patch' && r.name === 'gone' && r.status === 404));
});

test('a write the API server refuses (422) is not sent again until the status changes; a 503 is retried with a doubled delay', async (t) => {
  const { fake, client } = await setup(t, ['a', 'b']);
  const clock = new ManualClock();
  const refused: string[] = [];
  const w = new StatusWriter({ client, log, clock, retryDelayMs: 2000, onRefused: (kind, code) => refused.push(`${kind} ${code}`) });
  t.after(() => w.stop());
  const patchesOf = (name: string) => fake.requests.filter((r) => r.verb === 'patch' && r.name === name).map((r) => r.status);
  fake.faults.failNext({ verb: 'patch', resource: 'websocketroutes/status', status: 422 });
  w.setLeading(true);
  w.update([status('a', 'True')]);
  await w.idle();
  assert.deepEqual(refused, ['WebSocketRoute 422']);
  assert.equal(clock.pending, 0, 'no retry armed');
  clock.advance(60_000);
  w.update([status('a', 'True')]);
  await w.idle();
  assert.deepEqual(patchesOf('a'), [422], 'the same status is not sent again');
  w.update([status('a', 'False', 'BackendNotFound')]);
  await w.idle();
  assert.deepEqual(patchesOf('a'), [422, 200]);
  assert.equal(served(fake, 'a').conditions[0]!.reason, 'BackendNotFound');

  fake.faults.failNext({ verb: 'patch', resource: 'websocketroutes/status', status: 503, count: 2 });
  w.update([status('a', 'False', 'BackendNotFound'), status('b', 'True')]);
  await w.idle();
  assert.equal(clock.nextAt, clock.now() + 2000);
  clock.advance(2000);
  await w.idle();
  assert.equal(clock.nextAt, clock.now() + 4000, 'the second failure in a row waits twice as long');
  clock.advance(4000);
  await w.idle();
  assert.deepEqual(patchesOf('b'), [503, 503, 200]);
  assert.equal(clock.pending, 0);
  assert.deepEqual(refused, ['WebSocketRoute 422']);
});

test('a new leader keeps the lastTransitionTime the previous leader wrote (seen through the informer)', async (t) => {
  const { fake, client, clock } = await setup(t, ['a']);
  const r = fake.get('wsgate.io/v1alpha1', 'WebSocketRoute', 'default', 'a');
  fake.updateStatus({ ...r, status: { observedGeneration: 1, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: '', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' }] } });
  const source = new KubernetesSource({ client, log, onRestart: () => {} });
  await source.start();
  t.after(() => source.stop());
  await source.whenSynced();
  const w = new StatusWriter({ client, log, clock: new ManualClock(), now: () => clock.now, observed: (k) => source.observedStatus(k) });
  t.after(() => w.stop());
  w.update([status('a', 'True')]);
  w.setLeading(true);
  await w.idle();
  assert.equal(served(fake, 'a').conditions[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(served(fake, 'a').conditions[1]!.lastTransitionTime, '2026-11-22T05:00:00Z');
});

test('endpoint counts are written with the conditions, rewritten only when a count changes, and removed when the route is rejected', async (t) => {
  const { fake, client } = await setup(t, ['a']);
  const w = new StatusWriter({ client, log, clock: new ManualClock() });
  t.after(() => w.stop());
  const counted = (ready: number, draining: number): RouteStatus => ({
    ...status('a', 'True'),
    readyEndpoints: ready,
    backends: [
      { rule: 0, backendRef: 0, kind: 'Service', name: 'chat', port: 'ws', ready, draining },
      { rule: 1, backendRef: 0, kind: 'Static', ready: 0, draining: 0 },
    ],
  });
  type WithCounts = Served & { readyEndpoints?: number; backends?: unknown[] };
  const counts = () => {
    const s = served(fake, 'a') as WithCounts;
    return { readyEndpoints: s.readyEndpoints, backends: s.backends };
  };

  w.setLeading(true);
  w.update([counted(2, 0)]);
  await w.idle();
  assert.equal(patches(fake), 1);
  assert.deepEqual(counts(), {
    readyEndpoints: 2,
    backends: [
      { rule: 0, backendRef: 0, kind: 'Service', name: 'chat', port: 'ws', ready: 2, draining: 0 },
      { rule: 1, backendRef: 0, kind: 'Static', ready: 0, draining: 0 },
    ],
  });

  // A rebuild with equal counts (new objects, same content) writes nothing.
  w.update([counted(2, 0)]);
  await w.idle();
  assert.equal(patches(fake), 1);

  // A pod starts terminating: one write, the conditions untouched.
  w.update([counted(1, 1)]);
  await w.idle();
  assert.equal(patches(fake), 2);
  assert.equal(counts().readyEndpoints, 1);
  assert.deepEqual(served(fake, 'a').conditions.map((c) => `${c.type}=${c.status}`), ['Accepted=True', 'Programmed=True']);

  // Rejected: the builder sends no counts, and the apply drops the ones written before.
  w.update([status('a', 'False', 'Conflicted')]);
  await w.idle();
  assert.equal(patches(fake), 3);
  assert.deepEqual(counts(), { readyEndpoints: undefined, backends: undefined });
});
