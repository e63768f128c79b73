// The Lua scripts that keep cluster-wide budgets in Redis. Each runs atomically on the server, so one round trip
// checks and takes every count and rate a handshake needs, and no two replicas can both take the last slot.
//
// Data layout (all keys under the configured prefix; one Redis primary, not Redis Cluster: the scripts read the
// replica set and several counters that a cluster would spread over slots):
// - replicas: a sorted set, member = replica id, score = lease expiry (server time, ms). A replica renews its
//   lease in one batch per interval; a replica that stops renewing drops out of every count at its expiry.
// - count keys: a hash per (route, scope), field = replica id, value = that replica's open connections. A count
//   is the sum over live replicas; dead replicas' fields are deleted as they are met. Keys expire with the lease
//   TTL and are renewed by every replica that holds a field in them.
// - rate keys: the GCRA theoretical arrival time (ms, server time), expiring when it is in the past.
// - revoked keys: the revocation reason, expiring when the revocation ends.
// Server time (TIME) is used throughout, so replicas' clocks never need to agree.

/**
 * KEYS: replicas, then nRevoked revoked keys, nRates rate keys, nCounts count keys.
 * ARGV: replica id, lease TTL ms, nRevoked, nRates, nCounts, then (interval ms, burst) per rate, then limit per
 * count. Rate tokens are taken once every rate passes, whether or not the counts admit (a refused attempt is
 * still an attempt). Counts are taken only when all of them have room.
 * Reply: {0} admitted | {1, reason} revoked | {2, i, retry ms} rate i exceeded | {3, i} count i full.
 */
export const ADMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, ttl = ARGV[1], tonumber(ARGV[2])
local nrv, nrt, nct = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 1, nrv do
  local r = redis.call('GET', KEYS[1 + i])
  if r then return {1, r} end
end
local a = 6
local tats = {}
for i = 1, nrt do
  local interval, burst = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local tat = tonumber(redis.call('GET', KEYS[1 + nrv + i]) or '0')
  if tat < now then tat = now end
  local allowAt = tat + interval - burst * interval
  if now < allowAt then return {2, i, allowAt - now} end
  tats[i] = tat + interval
end
for i = 1, nrt do
  redis.call('SET', KEYS[1 + nrv + i], tats[i], 'PX', math.max(1, tats[i] - now))
end
if nct == 0 then return {0} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, me)
local alive = {}
for _, r in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do alive[r] = true end
local base = 1 + nrv + nrt
for i = 1, nct do
  local key = KEYS[base + i]
  local limit = tonumber(ARGV[a + i - 1])
  local h = redis.call('HGETALL', key)
  local sum = 0
  for j = 1, #h, 2 do
    if alive[h[j]] then sum = sum + tonumber(h[j + 1]) else redis.call('HDEL', key, h[j]) end
  end
  if sum >= limit then return {3, i} end
end
for i = 1, nct do
  redis.call('HINCRBY', KEYS[base + i], me, 1)
  redis.call('PEXPIRE', KEYS[base + i], ttl)
end
return {0}
`;

/**
 * Writes this replica's counts as absolute values (idempotent: a retried or late sync cannot count twice) and,
 * with renew = 1, renews its lease and the TTL of every key it holds.
 * KEYS: replicas, then count keys. ARGV: replica id, lease TTL ms, renew (0|1), then one count per key.
 * Reply: 1 when the lease was renewed and this replica had no lease (its counts had expired or Redis lost its
 * data), else 0.
 */
export const SYNC_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, ttl = ARGV[1], tonumber(ARGV[2])
local fresh = 0
if ARGV[3] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  fresh = redis.call('ZADD', KEYS[1], now + ttl, me)
end
for i = 2, #KEYS do
  local n = tonumber(ARGV[i + 2])
  if n > 0 then
    redis.call('HSET', KEYS[i], me, n)
    redis.call('PEXPIRE', KEYS[i], ttl)
  else
    redis.call('HDEL', KEYS[i], me)
  end
end
return fresh
`;

/** Leaves the cluster on a clean stop: the lease and every field this replica holds. KEYS: replicas, count
 *  keys. ARGV: replica id. */
export const LEAVE_SCRIPT = `
redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, #KEYS do redis.call('HDEL', KEYS[i], ARGV[1]) end
return 0
`;
