// Composition of the cluster-wide state for one process: with Redis, budgets shared by every replica and
// revocations heard on a channel; without it, per-principal budgets counted by this process alone (the
// address and route budgets stay with policy/rate-limit.ts, as before Redis).
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { AdmissionCheck, HandshakeContext } from '../proxy/hooks.ts';
import type { LiveConnection } from '../proxy/connections.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../util/clock.ts';
import { ClusterBudgets, type Holder } from './cluster-budgets.ts';
import { ClusterMetrics } from './cluster-metrics.ts';
import { ClusterKeys } from './keys.ts';
import { LocalBudgets } from './local-budgets.ts';
import { planFor, type BudgetPlan } from './plan.ts';
import { createRedis, ScriptRunner, type Redis, type RedisSettings } from './redis-link.ts';
import { RevocationFeed } from './revocation-feed.ts';
import { Revocations } from './revocations.ts';

export interface ClusterOptions {
  /** Unset: no Redis, everything per process. */
  readonly redis?: RedisSettings;
  /** Names this process in Redis (the pod name; a random suffix tells workers and restarts apart). */
  readonly identity: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly registry: Registry;
  /** Longest wait at start for a first connection before serving in the failure mode. */
  readonly connectWaitMs?: number;
}

export interface ClusterState {
  /** True when address and route budgets are taken here (cluster-wide) instead of by the local limiter. */
  readonly distributed: boolean;
  /** Runs after the credentials: revocation, then every budget that applies, in one Redis round trip at most. */
  readonly admission: AdmissionCheck;
  established(ctx: HandshakeContext, conn: LiveConnection): void;
  ended(conn: LiveConnection): void;
  readonly revocations: Revocations;
  /** With Redis: the shared budgets (tests, the bench). */
  readonly budgets?: ClusterBudgets;
  close(): Promise<void>;
}

export async function startCluster(o: ClusterOptions): Promise<ClusterState> {
  const log = o.log.child({ component: 'cluster' });
  const metrics = new ClusterMetrics(o.registry);
  const revocations = new Revocations({ clock: o.clock, metrics, log });
  const keys = new ClusterKeys(o.redis?.keyPrefix ?? 'wsgate:');
  const hooks = {
    established: (ctx: HandshakeContext, conn: LiveConnection) => revocations.established(ctx, conn),
    ended: (conn: LiveConnection) => revocations.ended(conn),
  };
  const plan = (ctx: HandshakeContext, scopes: 'all' | 'principal'): BudgetPlan | undefined => planFor(keys, ctx.match.route, ctx.clientIp, ctx.principal, scopes);
  const revoked = (ctx: HandshakeContext) => (ctx.principal === undefined ? undefined : revocations.check(ctx.principal, ctx.match.route.key));

  if (!o.redis) {
    const local = new LocalBudgets(o.clock);
    return {
      distributed: false,
      revocations,
      ...hooks,
      admission: (ctx) => {
        const p = plan(ctx, 'principal');
        if (!p) return undefined;
        const err = local.admit(p);
        if (!err) hold(ctx.socket, () => { for (const c of p.counts) local.add(c.key, -1); });
        return err;
      },
      close: () => Promise.resolve(),
    };
  }

  const client: Redis = createRedis(o.redis);
  let lastError = '';
  client.on('error', (err: Error) => {
    // node-redis reports each failed reconnect; one line per distinct error is enough.
    if (err.message !== lastError) log.warn({ err: err.message }, 'Redis connection error');
    lastError = err.message;
  });
  const runner = new ScriptRunner({ client, clock: o.clock, timeoutMs: o.redis.timeoutMs, metrics, log });
  const replicaId = `${o.identity}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const feed = new RevocationFeed({ client, keys, revocations, log });
  const budgets = new ClusterBudgets({
    runner,
    keys,
    replicaId,
    leaseTtlMs: o.redis.leaseTtlMs,
    failureMode: o.redis.failureMode,
    clock: o.clock,
    log,
    metrics,
    onRevokedSeen: () => {
      metrics.revocations.inc({ result: 'refused' });
      void feed.reload();
    },
  });
  client.on('ready', () => {
    lastError = '';
    log.info({ replica: replicaId }, 'Redis connected');
    void budgets.sync(true);
  });
  const connected = client.connect().then(
    () => true,
    () => false,
  );
  let waitTimer: ReturnType<Clock['setTimeout']> | undefined;
  await Promise.race([connected, new Promise((resolve) => (waitTimer = o.clock.setTimeout(() => resolve(false), o.connectWaitMs ?? 2000)))]);
  o.clock.clearTimeout(waitTimer);
  await feed.start();
  budgets.start();
  return {
    distributed: true,
    revocations,
    budgets,
    ...hooks,
    admission: (ctx) => {
      const r = revoked(ctx);
      if (r) return r;
      const p = plan(ctx, 'all');
      return p ? budgets.admit(p, ctx.socket) : undefined;
    },
    async close() {
      await budgets.close();
      await feed.close();
      await client.close().catch(() => undefined);
    },
  };
}

function hold(socket: Holder, release: () => void): void {
  if (socket.destroyed) release();
  else socket.once('close', release);
}
