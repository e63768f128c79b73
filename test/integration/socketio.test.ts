// Real Socket.IO behind wsgate: 3 backends, cookie affinity and HTTP fallback. Clients start with long-polling
// (several HTTP requests per session) and upgrade to WebSocket later; every request of a session must reach
// the pod that holds it, or engine.io answers "Session ID unknown". Cookie affinity keeps one session on one
// pod; header (hash) affinity also sends every later session of the same user there.
import assert from 'node:assert/strict';
import { systemClock } from '../../src/util/clock.ts';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Server } from 'socket.io';
import { io as ioc, type Socket as ClientSocket } from 'socket.io-client';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { affinityHooks, type AffinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { silentLog, startGate, staticRoute, type Gate } from '../support/harness.ts';

interface Backend {
  readonly name: string;
  readonly address: string;
  readonly io: Server;
  readonly http: http.Server;
  readonly sessionErrors: string[];
}

async function startBackend(name: string): Promise<Backend> {
  const server = http.createServer();
  const io = new Server(server, { pingInterval: 2000, pingTimeout: 2000 });
  const sessionErrors: string[] = [];
  io.engine.on('connection_error', (err: { message: string }) => sessionErrors.push(err.message));
  io.on('connection', (s) => {
    s.on('whoami', (ack: (n: string) => void) => ack(name));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { name, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, io, http: server, sessionErrors };
}

let backends: Backend[] = [];
let gate: Gate;
let affinity: AffinityHooks;
// The same three backends behind a route keyed by a header (hash affinity, strict by default).
let keyed: Gate;
let keyedAffinity: AffinityHooks;

before(async () => {
  backends = await Promise.all(['a', 'b', 'c'].map(startBackend));
  const balancer = new BalancerState();
  affinity = affinityHooks({ secret: 'test-secret', className: 'wsgate', log: silentLog, balancer, clock: systemClock() });
  gate = await startGate(
    [
      staticRoute('sio', backends.map((b) => b.address), {
        sessionAffinity: { type: 'Cookie' },
        httpFallback: { enabled: true, timeoutSeconds: 10 },
      }),
    ],
    { balancer, hooks: { admission: affinity.admission, httpFallback: affinity.httpFallback } },
  );
  const keyedBalancer = new BalancerState();
  keyedAffinity = affinityHooks({ secret: 'test-secret', className: 'wsgate', log: silentLog, balancer: keyedBalancer, clock: systemClock() });
  keyed = await startGate(
    [
      staticRoute('sio-keyed', backends.map((b) => b.address), {
        sessionAffinity: { type: 'Header', header: { name: 'X-User' } },
        httpFallback: { enabled: true, timeoutSeconds: 10 },
      }),
    ],
    { balancer: keyedBalancer, hooks: { admission: keyedAffinity.admission, httpFallback: keyedAffinity.httpFallback } },
  );
});

after(async () => {
  await gate.close();
  affinity.close();
  await keyed.close();
  keyedAffinity.close();
  for (const b of backends) {
    b.io.close();
    b.http.closeAllConnections();
  }
});

function whoami(s: ClientSocket): Promise<string> {
  return s.timeout(5000).emitWithAck('whoami') as Promise<string>;
}

test('50 Socket.IO clients start with polling, upgrade to websocket and stay on one backend', async () => {
  const clients = Array.from({ length: 50 }, () =>
    ioc(`http://127.0.0.1:${gate.port}`, {
      transports: ['polling', 'websocket'],
      withCredentials: true, // the Node client keeps cookies only then
      reconnection: false,
      forceNew: true,
    }),
  );
  const errors: string[] = [];
  try {
    const results = await Promise.all(
      clients.map(async (s) => {
        s.on('connect_error', (e) => errors.push(e.message));
        const upgraded = new Promise<string>((resolve) => s.io.engine?.once('upgrade', () => resolve(s.io.engine.transport.name)));
        await new Promise<void>((resolve) => s.once('connect', () => resolve()));
        assert.equal(s.io.engine.transport.name, 'polling', 'the session starts with long-polling');
        const before = await whoami(s);
        // The upgrade probe is itself a request of the session (a WebSocket on the same sid).
        const transport = await upgraded;
        const afterUpgrade = [await whoami(s), await whoami(s)];
        return { before, afterUpgrade, transport };
      }),
    );
    assert.deepEqual(errors, []);
    for (const b of backends) assert.deepEqual(b.sessionErrors, [], `${b.name}: engine.io rejected a request`);
    for (const r of results) {
      assert.equal(r.transport, 'websocket');
      assert.deepEqual(r.afterUpgrade, [r.before, r.before], 'one backend for the whole session');
    }
    const perBackend = new Map<string, number>();
    for (const r of results) perBackend.set(r.before, (perBackend.get(r.before) ?? 0) + 1);
    // A fresh session is placed by the route's policy (least connections, rotating ties): all three serve.
    assert.equal(perBackend.size, 3, JSON.stringify([...perBackend]));
    assert.equal(gate.connections.size, 50);
  } finally {
    for (const s of clients) s.disconnect();
  }
});

/** One Socket.IO session of `user` with the client's default options (long-polling first, then the upgrade),
 *  its key in a header the client sends on every request of both transports. Returns where each request of the
 *  session landed: before and after the upgrade. */
async function keyedSession(user: string): Promise<{ polling: string; websocket: string }> {
  const s = ioc(`http://127.0.0.1:${keyed.port}`, { extraHeaders: { 'x-user': user }, reconnection: false, forceNew: true });
  try {
    const upgraded = new Promise<void>((resolve) => s.io.engine?.once('upgrade', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    assert.equal(s.io.engine.transport.name, 'polling', 'the session starts with long-polling');
    const polling = await whoami(s);
    await upgraded;
    assert.equal(s.io.engine.transport.name, 'websocket');
    return { polling, websocket: await whoami(s) };
  } finally {
    s.disconnect();
  }
}

test('30 Socket.IO users keyed by a header on 3 backends: every session and every reconnect of a user lands on one backend', async () => {
  const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
  const first = await Promise.all(users.map((u) => keyedSession(u)));
  for (const r of first) assert.equal(r.websocket, r.polling, 'polling and the upgraded WebSocket reach the same backend');
  const spread = new Set(first.map((r) => r.polling));
  assert.ok(spread.size >= 2, `30 keys hash over several backends (${[...spread].join(',')})`);
  // Each user comes back with a new session (a page reload): the key, not the session, decides.
  const again = await Promise.all(users.map((u) => keyedSession(u)));
  assert.deepEqual(again.map((r) => [r.polling, r.websocket]), first.map((r) => [r.polling, r.polling]), 'every reconnect is sticky');
  for (const b of backends) assert.deepEqual(b.sessionErrors, [], `${b.name}: engine.io rejected a request`);
});
