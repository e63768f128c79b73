// --redis-* and `wsgate revoke` parse into one validated config; the budget plan takes exactly the route's
// settings; revocations close a principal's connections and expire on the injected clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ClusterMetrics } from '../../src/cluster/cluster-metrics.ts';
import { ClusterKeys } from '../../src/cluster/keys.ts';
import { planFor } from '../../src/cluster/plan.ts';
import { reconnectDelay } from '../../src/cluster/redis-link.ts';
import { closeReason, parseRevocation, Revocations } from '../../src/cluster/revocations.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { ConfigError } from '../../src/errors.ts';
import type { Route } from '../../src/model/snapshot.ts';
import type { LiveConnection } from '../../src/proxy/connections.ts';
import type { HandshakeContext } from '../../src/proxy/hooks.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { compiledRoute } from '../support/compiled-route.ts';

const problems = (argv: string[], env = {}) => {
  try {
    loadConfig(argv, env);
    return [];
  } catch (e) {
    return (e as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
};

test('--redis-url turns on cluster-wide state; env and flags give every setting', () => {
  assert.equal(loadConfig(['--config', 'r.yaml'], {}).redis, undefined);
  const c = loadConfig(['--config', 'r.yaml', '--redis-failure-mode', 'Closed', '--redis-lease-ttl-seconds', '2.5'], {
    WSGATE_REDIS_URL: 'rediss://r:6380/1',
    WSGATE_REDIS_USERNAME: 'wsgate',
    WSGATE_REDIS_PASSWORD: 'pw',
    WSGATE_REDIS_TLS_CA_FILE: '/ca.pem',
  });
  assert.deepEqual(c.redis, { url: 'rediss://r:6380/1', username: 'wsgate', password: 'pw', tlsCaFile: '/ca.pem', timeoutMs: 200, keyPrefix: 'wsgate:', leaseTtlMs: 2500, failureMode: 'Closed' });
  assert.deepEqual(problems(['--config', 'r.yaml', '--redis-url', 'http://x', '--redis-failure-mode', 'open']), [
    '--redis-failure-mode: must be Open or Closed, got open',
    '--redis-url: must be redis://HOST:PORT or rediss://HOST:PORT',
  ]);
});

test('wsgate revoke: its flags, and only with the revoke command', () => {
  const c = loadConfig(['revoke', '--principal', 'alice', '--route', 'default/chat', '--reason', 'bye', '--ttl-seconds', '60', '--redis-url', 'redis://r:6379'], {});
  assert.equal(c.command, 'revoke');
  assert.deepEqual(c.revoke, { principal: 'alice', route: 'default/chat', reason: 'bye', ttlMs: 60000, clear: false });
  assert.deepEqual(loadConfig(['revoke', '--principal', 'a', '--clear'], { WSGATE_REDIS_URL: 'redis://r' }).revoke, { principal: 'a', reason: 'access revoked', ttlMs: 3600000, clear: true });
  assert.deepEqual(problems(['revoke', '--route', 'Bad']), ['--principal: revoke needs --principal', '--route: must be namespace/name, got Bad', '--redis-url: revoke needs --redis-url (or WSGATE_REDIS_URL)']);
  assert.deepEqual(problems(['--config', 'r.yaml', '--principal', 'a']), ['--principal: only for wsgate revoke']);
});

const route = (spec: Record<string, unknown>): Route => ({ ...compiledRoute(spec), key: 'ns/r', namespace: 'ns', name: 'r' });

test('the plan takes the route\'s budgets, the principal\'s only with a principal, and the revocation keys then', () => {
  const keys = new ClusterKeys('p:');
  const spec = { limits: { maxConnections: 9, maxConnectionsPerIP: 3, maxConnectionsPerPrincipal: 2 }, rateLimit: { connectionsPerMinutePerIP: 60, connectionsPerMinutePerPrincipal: 6 } };
  assert.deepEqual(planFor(keys, route(spec), '10.0.0.1', 'a|b', 'all'), {
    revoked: ['p:revoked|a%7Cb', 'p:revoked|a%7Cb|ns/r'],
    rates: [{ key: 'p:r|ip|ns/r|60|10.0.0.1', scope: 'ip', perMinute: 60 }, { key: 'p:r|principal|ns/r|6|a%7Cb', scope: 'principal', perMinute: 6 }],
    counts: [{ key: 'p:n|ip|ns/r|10.0.0.1', scope: 'ip', limit: 3 }, { key: 'p:n|principal|ns/r|a%7Cb', scope: 'principal', limit: 2 }, { key: 'p:n|route|ns/r', scope: 'route', limit: 9 }],
  });
  assert.deepEqual(planFor(keys, route(spec), '10.0.0.1', undefined, 'principal'), undefined);
  assert.deepEqual(planFor(keys, route({}), '10.0.0.1', 'a', 'all'), undefined);
  assert.deepEqual(keys.parseRevoked('p:revoked|a%7Cb|ns/r'), { principal: 'a|b', route: 'ns/r' });
});

test('reconnect backoff doubles from 50 ms to a 2 s cap, jittered within its upper half', () => {
  assert.deepEqual([0, 1, 2, 5, 6, 20].map((n) => reconnectDelay(n, () => 0)), [25, 50, 100, 800, 1000, 1000]);
  assert.deepEqual([0, 6, 20].map((n) => reconnectDelay(n, () => 1)), [50, 2000, 2000]);
});

test('a revocation closes the principal\'s connections (one route or all) with 1008, refuses it, and expires', () => {
  const clock = new ManualClock();
  const r = new Revocations({ clock, metrics: new ClusterMetrics(new Registry()), log: pino({ level: 'silent' }) });
  const closes: string[] = [];
  const conn = (id: number, routeKey: string) => ({ id, route: { key: routeKey }, close: (code: number, reason: string) => closes.push(`${id} ${code} ${reason}`) }) as unknown as LiveConnection;
  const ctx = (principal: string) => ({ principal }) as HandshakeContext;
  r.established(ctx('alice'), conn(1, 'ns/a'));
  r.established(ctx('alice'), conn(2, 'ns/b'));
  r.established(ctx('bob'), conn(3, 'ns/a'));
  const gone = conn(4, 'ns/a');
  r.established(ctx('alice'), gone);
  r.ended(gone);
  assert.equal(r.apply({ principal: 'alice', route: 'ns/b', reason: 'b only', ttlMs: 1000 }), 1);
  assert.equal(r.check('alice', 'ns/a'), undefined);
  assert.equal(r.check('alice', 'ns/b')?.reason, 'revoked');
  assert.equal(r.apply({ principal: 'alice', reason: 'x'.repeat(200), ttlMs: 5000 }), 2);
  assert.deepEqual(closes, ['2 1008 b only', `1 1008 ${'x'.repeat(123)}`, `2 1008 ${'x'.repeat(123)}`]);
  assert.equal(r.check('bob', 'ns/a'), undefined);
  clock.advance(5000);
  assert.equal(r.check('alice', 'ns/a'), undefined);
  r.apply({ principal: 'bob', reason: 'r', ttlMs: 5000 });
  r.apply({ principal: 'bob', reason: '', ttlMs: 0, clear: true });
  assert.equal(r.check('bob', 'ns/a'), undefined);
  assert.equal(closeReason('é'.repeat(100)), 'é'.repeat(61));
  assert.deepEqual(parseRevocation('{"principal":"a","ttlMs":5}'), { principal: 'a', reason: 'access revoked', ttlMs: 5 });
  assert.equal(parseRevocation('{"route":"x"}'), undefined);
  assert.equal(parseRevocation('not json'), undefined);
});
