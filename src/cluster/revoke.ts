// `wsgate revoke`: records a revocation (a key with its TTL, so replicas that connect later learn it) and
// publishes it, in one transaction. Anyone who can write to the Redis server can run it.
import type { ClusterKeys } from './keys.ts';
import type { Redis } from './redis-link.ts';
import type { Revocation } from './revocations.ts';

/** Publishes the revocation; resolves with how many replicas' subscribers received it. */
export async function publishRevocation(client: Redis, keys: ClusterKeys, r: Revocation): Promise<number> {
  const key = keys.revoked(r.principal, r.route);
  const multi = client.multi();
  if (r.clear) multi.del(key);
  else multi.set(key, r.reason, { expiration: { type: 'PX', value: r.ttlMs } });
  multi.publish(keys.revocationChannel, JSON.stringify(r));
  const replies = await multi.exec();
  return Number(replies[1]);
}
