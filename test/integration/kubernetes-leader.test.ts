// Fake API server: stands in for a Lease taken over behind the leader's back and renewals failing with 500; the normal election (one leader, release and takeover, expiry on the injected clock) runs on a real Lease in real-apiserver.test.ts.
// Leader election on a Lease in the fake API server: losing the lease to another holder, and renewals failing
// past the deadline, without throwing.
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
