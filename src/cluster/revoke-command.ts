// `wsgate revoke`: one connection, one transaction, one line of output. Exit 0 when the revocation was written
// (even if no replica was listening: they load it when they connect), 1 when Redis could not be reached.
import type { RedisConfig, RevokeRequest } from '../config/config.ts';
import { ClusterKeys } from './keys.ts';
import { createRedis } from './redis-link.ts';
import { publishRevocation } from './revoke.ts';

export async function runRevoke(redis: RedisConfig, r: RevokeRequest, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  // A command line tool gives up instead of reconnecting for ever.
  const client = createRedis({ ...redis, timeoutMs: Math.max(redis.timeoutMs, 1000) }, { reconnect: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const receivers = await publishRevocation(client, new ClusterKeys(redis.keyPrefix), {
      principal: r.principal,
      ...(r.route ? { route: r.route } : {}),
      reason: r.reason,
      ttlMs: r.ttlMs,
      ...(r.clear ? { clear: true } : {}),
    });
    const what = r.clear ? 'cleared' : `revoked for ${r.ttlMs / 1000} s`;
    out.write(`${r.principal}${r.route ? ` on ${r.route}` : ''}: ${what}; ${receivers} replica(s) notified\n`);
    return 0;
  } catch (e) {
    err.write(`wsgate revoke: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}
