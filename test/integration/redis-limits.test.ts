// Cluster-wide budgets on a real redis-server: replicas in this process share counts and rates through Redis,
// one script round trip per handshake, and fall back as --redis-failure-mode says when Redis goes away.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { createClient } from 'redis';
import { metricValue, startEcho, staticRoute, type Echo } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';
import { redisMissing, startRedis, type RedisServer } from '../support/redis-server.ts';
import { attempt, redisConfig, startClusterGate, type Attempt } from '../support/redis-gate.ts';

const skip = redisMissing();

async function closeAll(list: (WebSocket | undefined)[]): Promise<void> {
  await Promise.all(list.filter((w): w is WebSocket => w !== undefined).map((w) => new Promise<void>((resolve) => {
    if (w.readyState === WebSocket.CLOSED) return resolve();
    w.once('close', () => resolve());
    w.close();
  })));
}

describe('cluster-wide budgets on Redis', { skip }, () => {
  let redis: RedisServer;
  let echo: Echo;
  before(async () => {
    redis = await startRedis();
    echo = await startEcho();
  });
  after(async () => {
    await echo?.close();
    await redis?.stop();
  });

  test('maxConnectionsPerIP 3 across two replicas admits 3 in total; a close frees a slot on any replica', async () => {
    const routes = [staticRoute('ip', [echo.address], { limits: { maxConnectionsPerIP: 3 } })];
    const cfg = redisConfig(redis.url, { keyPrefix: 'ip-test:' });
    const a = await startClusterGate(routes, cfg, { identity: 'a' });
    const b = await startClusterGate(routes, cfg, { identity: 'b' });
    try {
      const results: Attempt[] = [];
      for (let i = 0; i < 6; i++) results.push(await attempt((i % 2 ? b : a).gate.url('/')));
      assert.deepEqual(results.map((r) => r.status), [101, 101, 101, 429, 429, 429]);
      assert.deepEqual(new Set(results.slice(3).map((r) => r.reason)), new Set(['connection_limit']));
      await closeAll([results[0]!.ws]);
      // The release reaches Redis in the next batch: wait for it on the other replica by asking until admitted.
      let again = await attempt(b.gate.url('/'));
      for (let i = 0; again.status !== 101 && i < 200; i++) again = await attempt(b.gate.url('/'));
      assert.equal(again.status, 101);
      assert.equal((await attempt(a.gate.url('/'))).status, 429);
      await closeAll([...results.map((r) => r.ws), again.ws]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('connectionsPerMinutePerIP is one bucket for the fleet (GCRA in Redis)', async () => {
    const routes = [staticRoute('rate', [echo.address], { rateLimit: { connectionsPerMinutePerIP: 4 } })];
    const cfg = redisConfig(redis.url, { keyPrefix: 'rate-test:' });
    const a = await startClusterGate(routes, cfg, { identity: 'a' });
    const b = await startClusterGate(routes, cfg, { identity: 'b' });
    try {
      const results: Attempt[] = [];
      for (let i = 0; i < 6; i++) results.push(await attempt((i % 2 ? b : a).gate.url('/')));
      assert.deepEqual(results.map((r) => r.status), [101, 101, 101, 101, 429, 429]);
      assert.equal(results[4]!.reason, 'rate_limited');
      await closeAll(results.map((r) => r.ws));
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('Redis killed mid-load: Open falls back to the local limits, Closed refuses with 503; counts reconcile on return', async () => {
    const routes = [staticRoute('fail', [echo.address], { limits: { maxConnectionsPerIP: 4 } })];
    const open = await startClusterGate(routes, redisConfig(redis.url, { keyPrefix: 'fail-test:', leaseTtlMs: 3000 }), { identity: 'open' });
    const closed = await startClusterGate(routes, redisConfig(redis.url, { keyPrefix: 'fail-test:', leaseTtlMs: 3000, failureMode: 'Closed' }), { identity: 'closed' });
    const probe = createClient({ url: redis.url });
    probe.on('error', () => {});
    try {
      const first = [await attempt(open.gate.url('/')), await attempt(closed.gate.url('/'))];
      assert.deepEqual(first.map((r) => r.status), [101, 101]);
      await redis.kill();
      // Open: this replica alone, with its own connection counted: 3 more, then the local limit.
      const during: Attempt[] = [];
      for (let i = 0; i < 4; i++) during.push(await attempt(open.gate.url('/')));
      assert.deepEqual(during.map((r) => r.status), [101, 101, 101, 429]);
      assert.ok(open.cluster.budgets!.inFallback);
      const refused = await attempt(closed.gate.url('/'));
      assert.deepEqual([refused.status, refused.reason], [503, 'limits_unavailable']);
      // A restarted Redis starts empty: each replica writes back what it holds (4 + 1) once it reconnects.
      await redis.restart();
      await probe.connect();
      const total = async () => Object.values(await probe.hGetAll('fail-test:n|ip|default/fail|127.0.0.1')).reduce((s, v) => s + Number(v), 0);
      await waitUntil(async () => !open.cluster.budgets!.inFallback && !closed.cluster.budgets!.inFallback && (await total()) === 5, 'both replicas reconciled');
      assert.equal(await total(), 5);
      assert.equal(open.cluster.budgets!.inFallback, false);
      assert.equal((await attempt(closed.gate.url('/'))).status, 429);
      await closeAll([...first, ...during].map((r) => r.ws));
    } finally {
      await probe.close().catch(() => undefined);
      await open.close();
      await closed.close();
    }
  });

  test('a hung Redis under load: only the handshakes in flight when it stopped answering wait for the timeout, the rest go straight to the local limits', async () => {
    const routes = [staticRoute('hung', [echo.address], { limits: { maxConnectionsPerIP: 1000 } })];
    const g = await startClusterGate(routes, redisConfig(redis.url, { keyPrefix: 'hung-test:', timeoutMs: 300, leaseTtlMs: 3000 }), { identity: 'hung' });
    const concurrency = 8;
    const answered: Attempt[] = [];
    let paused = false;
    let stop = false;
    // Each worker opens, and once open closes, connections one after another; the load stops by itself.
    const worker = async () => {
      for (let i = 0; i < 60 && !stop; i++) {
        const r = await attempt(g.gate.url('/'));
        answered.push(r);
        r.ws?.terminate();
        if (answered.length === 40 && !paused) {
          paused = true;
          redis.pause();
        }
      }
    };
    try {
      await Promise.all([
        ...Array.from({ length: concurrency }, worker),
        waitUntil(() => g.cluster.budgets!.inFallback, 'fallback').then(() => waitUntil(() => answered.length >= 200, '200 answers')).then(() => {
          stop = true;
        }),
      ]);
      assert.ok(answered.every((r) => r.status === 101), 'every handshake admitted (Open, under the local limits)');
      const timeouts = await metricValue(g.gate.metrics, 'wsgate_redis_errors_total', { op: 'admit', kind: 'timeout' });
      assert.ok(timeouts >= 1 && timeouts <= concurrency, `${timeouts} admits timed out: at most the ${concurrency} in flight`);
      redis.resume();
      await waitUntil(() => !g.cluster.budgets!.inFallback, 'fallback ended after Redis answered again');
    } finally {
      redis.resume();
      await g.close();
    }
  });
});
