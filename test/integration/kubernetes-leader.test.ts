// Fake API server: stands in for a Lease taken over behind the leader's back and renewals failing with 500; the normal election (one leader, release and takeover, expiry on the injected clock) runs on a real Lease in real-apiserver.test.ts.
// Leader election on a Lease in the fake API server: losing the lease to another holder, and renewals failing
// past the deadline, without throwing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { FakeApiServer } from '../support/fake-apiserver/index.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { KubeClient } from '../../src/kube/kube-client.ts';
import { LeaderElector } from '../../src/status/leader-elector.ts';

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
