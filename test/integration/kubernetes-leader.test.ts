// Fake API server: stands in for Lease 409 races, failing renewals and a lease taken by another holder; the normal election runs on a real Lease in real-apiserver.test.ts.
// Leader election on a Lease in the fake API server: one leader among replicas, release on stop, takeover of
// an expired lease, 409 races, and losing the lease without throwing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeApiServer, waitUntil } from '../support/fake-apiserver/index.ts';
import { KubeClient } from '../../src/sources/kubernetes/kube-client.ts';
import { LeaderElector } from '../../src/sources/kubernetes/leader-elector.ts';

const log = pino({ level: 'silent' });

async function fakeServer(t: TestContext): Promise<FakeApiServer> {
  const fake = await FakeApiServer.start();
  t.after(() => fake.close());
  return fake;
}

function elector(t: TestContext, fake: FakeApiServer, identity: string, extra: { now?: () => number } = {}): { e: LeaderElector; events: string[] } {
  const events: string[] = [];
  const e = new LeaderElector({
    client: new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } }),
    namespace: 'wsgate', name: 'wsgate-leader', identity, log,
    leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 10,
    onStartedLeading: () => events.push('start'),
    onStoppedLeading: () => events.push('stop'),
    ...extra,
  });
  t.after(() => e.stop());
  return { e, events };
}

const lease = (fake: FakeApiServer): { spec: Record<string, unknown>; metadata: { resourceVersion?: string } } =>
  fake.get('coordination.k8s.io/v1', 'Lease', 'wsgate', 'wsgate-leader') as never;

test('one of two replicas leads; stopping it releases the lease and the other takes over at once', async (t) => {
  const fake = await fakeServer(t);
  const a = elector(t, fake, 'a');
  const b = elector(t, fake, 'b');
  a.e.start();
  b.e.start();
  await waitUntil(() => a.e.isLeader() || b.e.isLeader(), 'a leader');
  // Both keep trying for a while; there is still exactly one leader.
  const rv = Number(fake.resourceVersion());
  await waitUntil(() => fake.resourceVersion() > rv + 5, 'several renewals');
  assert.equal(Number(a.e.isLeader()) + Number(b.e.isLeader()), 1);
  const [leader, other] = a.e.isLeader() ? [a, b] : [b, a];
  const held = lease(fake).spec;
  assert.match(String(held['renewTime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.match(String(held['acquireTime']), /\.\d{6}Z$/);
  assert.equal(held['leaseDurationSeconds'], 2);

  await leader.e.stop();
  assert.deepEqual(leader.events, ['start', 'stop']);
  await waitUntil(() => other.e.isLeader(), 'takeover after release');
  assert.equal(lease(fake).spec['leaseTransitions'], 1);
  assert.deepEqual(other.events, ['start']);
});

test('a lease left by a crashed holder is taken once it expires on the local clock', async (t) => {
  const fake = await fakeServer(t);
  fake.create({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'wsgate-leader', namespace: 'wsgate' },
    spec: { holderIdentity: 'ghost', leaseDurationSeconds: 15, renewTime: '2026-01-01T00:00:00.000000Z', acquireTime: '2026-01-01T00:00:00.000000Z', leaseTransitions: 3 },
  });
  let clock = 1_000_000;
  const b = elector(t, fake, 'b', { now: () => clock });
  b.e.start();
  const gets = (): number => fake.requests.filter((r) => r.verb === 'get').length;
  await waitUntil(() => gets() >= 3, 'a few attempts');
  assert.equal(b.e.isLeader(), false, 'the lease is still valid from the moment it was first seen');
  clock += 15_001;
  await waitUntil(() => b.e.isLeader(), 'takeover after expiry');
  assert.equal(lease(fake).spec['holderIdentity'], 'b');
  assert.equal(lease(fake).spec['leaseTransitions'], 4);
});

test('a leader that loses the lease, or cannot renew past the deadline, stops leading without throwing', async (t) => {
  const fake = await fakeServer(t);
  let clock = 5_000_000;
  const a = elector(t, fake, 'a', { now: () => clock });
  a.e.start();
  await waitUntil(() => a.e.isLeader(), 'leading');

  // Someone else takes it over (e.g. after a partition).
  const l = fake.get('coordination.k8s.io/v1', 'Lease', 'wsgate', 'wsgate-leader');
  fake.update({ ...l, spec: { ...(l['spec'] as object), holderIdentity: 'z', renewTime: '2026-06-01T00:00:00.000000Z' } });
  await waitUntil(() => !a.e.isLeader(), 'lost to z');
  assert.deepEqual(a.events, ['start', 'stop']);

  // It stays a candidate and wins again once z's lease expires.
  clock += 3000;
  await waitUntil(() => a.e.isLeader(), 're-acquired');

  // The API server fails every lease call: leadership is kept until the renew deadline, then dropped.
  fake.faults.failNext({ resource: 'leases', count: 1_000_000 });
  const failed = (): number => fake.requests.filter((r) => r.resource === 'leases' && r.status === 500).length;
  await waitUntil(() => failed() >= 3, 'failing renewals');
  assert.equal(a.e.isLeader(), true, 'within the renew deadline');
  clock += 1500;
  await waitUntil(() => !a.e.isLeader(), 'gave up after the deadline');
  assert.deepEqual(a.events, ['start', 'stop', 'start', 'stop']);
});
