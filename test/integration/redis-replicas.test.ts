// Three wsgate processes (the CLI, from source) sharing one real redis-server: connection counts are one
// budget for the fleet, a SIGKILLed replica's slots come back when its lease expires, and `wsgate revoke`
// closes a principal's connections on every replica with 1008 and the reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import { ClusterKeys } from '../../src/cluster/keys.ts';
import { publishRevocation } from '../../src/cluster/revoke.ts';
import type { Redis } from '../../src/cluster/redis-link.ts';
import { startEcho, type Echo } from '../support/harness.ts';
import { attempt, runCli, startGateProcess, type Attempt, type GateProcess } from '../support/redis-gate.ts';
import { redisMissing, startRedis, type RedisServer } from '../support/redis-server.ts';

const skip = redisMissing();
const hmac = '0123456789abcdef0123456789abcdef-hmac';
const token = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(new TextEncoder().encode(hmac));

function closedWith(ws: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString(), at: performance.now() })));
}

describe('three wsgate replicas sharing one Redis', { skip }, () => {
  let redis: RedisServer;
  let echo: Echo;
  let dir: string;
  let replicas: GateProcess[] = [];
  let probe: Redis;
  before(async () => {
    redis = await startRedis();
    echo = await startEcho();
    dir = mkdtempSync(join(tmpdir(), 'wsgate-redis-'));
    writeFileSync(join(dir, 'hmac.key'), hmac);
    const route = (name: string, path: string, spec: string) => `apiVersion: wsgate.io/v1alpha1
kind: WebSocketRoute
metadata: { name: ${name}, namespace: default }
spec:
  rules:
    - matches: [{ path: { type: PathPrefix, value: ${path} } }]
      backendRefs: [{ endpoints: ["${echo.address}"] }]
${spec}
`;
    writeFileSync(join(dir, 'routes.yaml'), [
      route('per-ip', '/ip', '  limits: { maxConnectionsPerIP: 10 }'),
      route('users', '/users', `  auth: { jwt: { keyFile: ${join(dir, 'hmac.key')}, algorithms: [HS256] } }\n  limits: { maxConnectionsPerPrincipal: 3 }`),
    ].join('---\n'));
    const args = ['--config', dir, '--redis-url', redis.url, '--redis-lease-ttl-seconds', '2', '--redis-timeout-ms', '2000', '--log-level', 'info'];
    replicas = await Promise.all([0, 1, 2].map((i) => startGateProcess([...args, '--pod-name', `replica-${i}`])));
    probe = createClient({ url: redis.url }) as unknown as Redis;
    probe.on('error', () => {});
    await probe.connect();
  });
  after(async () => {
    await probe?.close().catch(() => undefined);
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    await echo?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const url = (i: number, path: string) => `ws://127.0.0.1:${replicas[i]!.port}${path}`;

  test('a revocation closes the principal\'s connections on all three replicas with 1008 and the reason, and refuses it', async (t) => {
    const live = [0, 1, 2];
    const alice = { authorization: `Bearer ${await token('alice')}` };
    const bob = { authorization: `Bearer ${await token('bob')}` };
    const aliceWs: WebSocket[] = [];
    for (const i of live) {
      const r = await attempt(url(i, '/users'), alice);
      assert.equal(r.status, 101);
      aliceWs.push(r.ws!);
    }
    // maxConnectionsPerPrincipal 3 holds across the replicas: alice has one on each, a fourth is refused.
    const fourth = await attempt(url(0, '/users'), alice);
    assert.deepEqual([fourth.status, fourth.reason], [429, 'connection_limit']);
    const bobWs = (await attempt(url(live[0]!, '/users'), bob)).ws!;
    const closes = aliceWs.map(closedWith);
    const t0 = performance.now();
    const receivers = await publishRevocation(probe, new ClusterKeys('wsgate:'), { principal: 'alice', reason: 'account suspended', ttlMs: 60000 });
    assert.ok(receivers >= live.length, `${receivers} subscribers`);
    const ends = await Promise.all(closes);
    assert.deepEqual(ends.map((e) => [e.code, e.reason]), ends.map(() => [1008, 'account suspended']));
    t.diagnostic(`revocation: last of ${ends.length} closes ${Math.round(Math.max(...ends.map((e) => e.at)) - t0)} ms after publish`);
    for (const i of live) {
      const r = await attempt(url(i, '/users'), alice);
      assert.deepEqual([r.status, r.reason], [403, 'revoked']);
    }
    assert.equal(bobWs.readyState, WebSocket.OPEN);

    // The CLI clears it; every replica admits alice again.
    const cleared = await runCli(['revoke', '--principal', 'alice', '--clear', '--redis-url', redis.url]);
    assert.equal(cleared.code, 0, cleared.err);
    assert.match(cleared.out, /alice: cleared; \d replica\(s\) notified/);
    for (const i of live) {
      let r = await attempt(url(i, '/users'), alice);
      // The clear arrives on the channel; the key is gone at once, the local entry as soon as the message lands.
      while (r.status === 403) r = await attempt(url(i, '/users'), alice);
      assert.equal(r.status, 101);
      r.ws!.terminate();
    }
    bobWs.terminate();
  });
  test('maxConnectionsPerIP 10: exactly 10 of 30 connections from one address are admitted across the three', async () => {
    const results: Attempt[] = [];
    for (let i = 0; i < 30; i++) results.push(await attempt(url(i % 3, '/ip')));
    assert.equal(results.filter((r) => r.status === 101).length, 10);
    assert.deepEqual(new Set(results.filter((r) => r.status !== 101).map((r) => `${r.status} ${r.reason}`)), new Set(['429 connection_limit']));

    // SIGKILL the replica holding the most: no cleanup runs, its slots come back only when its lease expires.
    const held = [0, 1, 2].map((i) => results.filter((r, j) => j % 3 === i && r.status === 101).length);
    const victim = held.indexOf(Math.max(...held));
    replicas[victim]!.child.kill('SIGKILL');
    await replicas[victim]!.exited;
    const other = (victim + 1) % 3;
    // Asked until admitted: each answer is an event, and the expiry is Redis's (TTL 2 s on the server clock).
    const back: Attempt[] = [];
    while (back.length < held[victim]!) {
      const r = await attempt(url(other, '/ip'));
      if (r.status === 101) back.push(r);
    }
    const over = await attempt(url(other, '/ip'));
    assert.deepEqual([over.status, over.reason], [429, 'connection_limit'], `exactly the ${held[victim]} slots of the killed replica came back`);
    for (const r of [...results, ...back]) r.ws?.terminate();
  });

});
