// The connection to Redis: node-redis with TLS and ACL credentials from the config, no offline queue (a
// command sent while disconnected fails at once instead of waiting for a reconnect), reconnection with capped
// exponential backoff, and scripts run by SHA with a per-call timeout on the injected clock.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createClient, type RedisClientType } from 'redis';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock } from '../util/clock.ts';
import type { RedisConfig } from '../config/config.ts';
import type { ClusterMetrics, RedisOp } from './cluster-metrics.ts';

/** --redis-* (src/config). */
export type RedisSettings = RedisConfig;

export type Redis = RedisClientType;

export class RedisTimeout extends Error {
  constructor(ms: number) {
    super(`no Redis reply within ${ms} ms`);
    this.name = 'RedisTimeout';
  }
}

/** Backoff between reconnect attempts: 50 ms doubling to 2 s, with jitter so replicas do not reconnect in step. */
export function reconnectDelay(retries: number, random: () => number = Math.random): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(retries, 6));
  return Math.round(base / 2 + random() * (base / 2));
}

export function createRedis(s: RedisSettings, o: { reconnect?: boolean } = {}): Redis {
  const tls = s.url.startsWith('rediss:');
  const client = createClient({
    url: s.url,
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.max(1000, s.timeoutMs * 10),
      reconnectStrategy: o.reconnect === false ? false : (retries: number) => reconnectDelay(retries),
      ...(tls ? { tls: true as const, ...(s.tlsCaFile ? { ca: readFileSync(s.tlsCaFile, 'utf8') } : {}) } : {}),
    },
  });
  return client as unknown as Redis;
}

export interface ScriptRunnerOptions {
  readonly client: Redis;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly metrics: ClusterMetrics;
  readonly log: Logger;
}

/** Runs scripts by EVALSHA (EVAL once after a NOSCRIPT: a restarted server has forgotten them). */
export class ScriptRunner {
  readonly #o: ScriptRunnerOptions;
  readonly #sha = new Map<string, string>();

  constructor(o: ScriptRunnerOptions) {
    this.#o = o;
  }

  get ready(): boolean {
    return this.#o.client.isReady;
  }

  async run(op: RedisOp, script: string, keys: string[], args: string[]): Promise<unknown> {
    const started = performance.now();
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#o.clock.setTimeout(() => reject(new RedisTimeout(this.#o.timeoutMs)), this.#o.timeoutMs);
    });
    try {
      const reply = await Promise.race([this.#eval(script, keys, args), timeout]);
      this.#o.metrics.roundTrip.observe({ op }, (performance.now() - started) / 1000);
      return reply;
    } catch (err) {
      this.#o.metrics.errors.inc({ op, kind: err instanceof RedisTimeout ? 'timeout' : 'error' });
      throw err;
    } finally {
      this.#o.clock.clearTimeout(timer);
    }
  }

  async #eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    let sha = this.#sha.get(script);
    if (!sha) this.#sha.set(script, (sha = createHash('sha1').update(script).digest('hex')));
    try {
      return await this.#o.client.evalSha(sha, { keys, arguments: args });
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return this.#o.client.eval(script, { keys, arguments: args });
    }
  }
}
