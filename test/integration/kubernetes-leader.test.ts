// Leader election on a Lease in the fake API server: one leader among replicas, release on stop, takeover of
// an expired lease, 409 races, and losing the lease without throwing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeApiServer } from '../support/fake-apiserver/index.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { KubeClient } from '../../src/sources/kubernetes/kube-client.ts';
import { LeaderElector } from '../../src/sources/kubernetes/leader-elector.ts';

const log = pino({ level: 'silent' });

async function fakeServer(t: TestContext): Promise<FakeApiServer> {
  const fake = await FakeApiServer.start();
  t.after(() => fake.close());
  return fake;
}

interface Replica {
  readonly e: LeaderElector;
  readonly events: string[];
  readonly clock: ManualClock;
  /** Resolves when the attempt in flight is over: the elector then arms its next attempt on its clock. */
  settled(): Promise<void>;
  /** Runs the next attempt at `time` on this replica's clock (its next retry when not given) and waits for it. */
  attemptAt(time?: number): Promise<void>;
}

/** Each replica runs on its own manual clock (lease expiry, renew deadline, retry timer): a replica's local
 *  time is its own, and attempts happen only when a test runs them, at an exact local time. */
function elector(t: TestContext, fake: FakeApiServer, identity: string): Replica {
  const events: string[] = [];
  const clock = new ManualClock(1_000_000);
  const e = new LeaderElector({
    client: new KubeClient({ kubeconfig: { kind: 'inline', yaml: fake.kubeconfig() } }),
    namespace: 'wsgate', name: 'wsgate-leader', identity, log, clock,
    leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 10,
    onStartedLeading: () => events.push('start'),
    onStoppedLeading: () => events.push('stop'),
  });
  t.after(() => e.stop());
  const settled = () => clock.whenPending();
  return {
    e, events, clock, settled,
    async attemptAt(time) {
      const due = clock.nextAt;
      assert.ok(due !== undefined, `${identity} has an attempt armed`);
      const at = time ?? due;
      assert.ok(at >= due, `${identity}'s next attempt is due at ${due}, not before`);
      // Time passes without anything firing, then the overdue retry runs at exactly `at`.
      clock.stall(at - clock.now());
      clock.advance(0);
      await settled();
    },
  };
}

const lease = (fake: FakeApiServer): { spec: Record<string, unknown>; metadata: { resourceVersion?: string } } =>
  fake.get('coordination.k8s.io/v1', 'Lease', 'wsgate', 'wsgate-leader') as never;

const leaders = (...rs: Replica[]): number => rs.filter((r) => r.e.isLeader()).length;

test('one of two replicas leads; stopping it releases the lease and the other takes over at once', async (t) => {
  const fake = await fakeServer(t);
  const a = elector(t, fake, 'a');
  const b = elector(t, fake, 'b');
  a.e.start();
  b.e.start();
  await Promise.all([a.settled(), b.settled()]);
  assert.equal(leaders(a, b), 1, 'the first attempts race; one wins');
  // Both keep trying for a while; there is still exactly one leader, and it renews every round.
  const rv = Number(fake.resourceVersion());
  for (let i = 0; i < 5; i++) {
    await a.attemptAt();
    await b.attemptAt();
    assert.equal(leaders(a, b), 1);
  }
  assert.ok(Number(fake.resourceVersion()) >= rv + 5, 'renewed in every round');
  const [leader, other] = a.e.isLeader() ? [a, b] : [b, a];
  const held = lease(fake).spec;
  assert.match(String(held['renewTime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.match(String(held['acquireTime']), /\.\d{6}Z$/);
  assert.equal(held['leaseDurationSeconds'], 2);

  await leader.e.stop();
  assert.deepEqual(leader.events, ['start', 'stop']);
  // Released: the other's very next attempt takes it, with no lease time to wait out.
  await other.attemptAt();
  assert.equal(other.e.isLeader(), true, 'takeover on the next attempt after release');
  assert.equal(lease(fake).spec['leaseTransitions'], 1);
  assert.deepEqual(other.events, ['start']);
});

test('a lease left by a crashed holder is taken once it expires on the local clock', async (t) => {
  const fake = await fakeServer(t);
  fake.create({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'wsgate-leader', namespace: 'wsgate' },
    spec: { holderIdentity: 'ghost', leaseDurationSeconds: 15, renewTime: '2026-01-01T00:00:00.000000Z', acquireTime: '2026-01-01T00:00:00.000000Z', leaseTransitions: 3 },
  });
  const b = elector(t, fake, 'b');
  // The lease is valid for leaseDurationSeconds from the local moment its record was first seen, whatever its
  // renewTime says (client-go's observedTime: https://github.com/kubernetes/client-go/blob/master/tools/leaderelection/leaderelection.go).
  const seenAt = b.clock.now();
  b.e.start();
  await b.settled();
  await b.attemptAt();
  await b.attemptAt(seenAt + 14_999);
  assert.equal(b.e.isLeader(), false, 'the lease is still valid 1 ms before it expires');
  // The next attempt (one retry period later) is the first after expiry.
  await b.attemptAt();
  assert.equal(b.e.isLeader(), true, 'taken at the first attempt after it expired');
  assert.equal(lease(fake).spec['holderIdentity'], 'b');
  assert.equal(lease(fake).spec['leaseTransitions'], 4);
});

test('a leader that loses the lease, or cannot renew past the deadline, stops leading without throwing', async (t) => {
  const fake = await fakeServer(t);
  const a = elector(t, fake, 'a');
  a.e.start();
  await a.settled();
  assert.equal(a.e.isLeader(), true);

  // Someone else takes it over (e.g. after a partition).
  const l = fake.get('coordination.k8s.io/v1', 'Lease', 'wsgate', 'wsgate-leader');
  fake.update({ ...l, spec: { ...(l['spec'] as object), holderIdentity: 'z', renewTime: '2026-06-01T00:00:00.000000Z' } });
  await a.attemptAt();
  const zSeenAt = a.clock.now();
  assert.equal(a.e.isLeader(), false, 'lost to z');
  assert.deepEqual(a.events, ['start', 'stop']);

  // It stays a candidate and wins again once z's lease (2 s) expires on its clock.
  await a.attemptAt(zSeenAt + 1999);
  assert.equal(a.e.isLeader(), false);
  await a.attemptAt();
  assert.equal(a.e.isLeader(), true, 're-acquired at the first attempt after it expired');
  const renewedAt = a.clock.now();

  // The API server fails every lease call: leadership is kept until the renew deadline (1.5 s), then dropped.
  fake.faults.failNext({ resource: 'leases', count: 1_000_000 });
  const failed = (): number => fake.requests.filter((r) => r.resource === 'leases' && r.status === 500).length;
  await a.attemptAt();
  await a.attemptAt();
  await a.attemptAt(renewedAt + 1499);
  assert.ok(failed() >= 3, 'renewals failed');
  assert.equal(a.e.isLeader(), true, 'within the renew deadline');
  await a.attemptAt();
  assert.equal(a.e.isLeader(), false, 'gave up at the first attempt past the deadline');
  assert.deepEqual(a.events, ['start', 'stop', 'start', 'stop']);
});
