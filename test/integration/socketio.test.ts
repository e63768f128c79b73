// Real Socket.IO behind wsgate: 3 backends, cookie affinity and HTTP fallback. Clients start with long-polling
// (several HTTP requests per session) and upgrade to WebSocket later; every request of a session must reach
// the pod that holds it, or engine.io answers "Session ID unknown".
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Server } from 'socket.io';
import { io as ioc, type Socket as ClientSocket } from 'socket.io-client';
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

before(async () => {
  backends = await Promise.all(['a', 'b', 'c'].map(startBackend));
  affinity = affinityHooks({ secret: 'test-secret', className: 'wsgate', log: silentLog, balancer: () => gate.balancer });
  gate = await startGate(
    [
      staticRoute('sio', backends.map((b) => b.address), {
        sessionAffinity: { type: 'Cookie' },
        httpFallback: { enabled: true, timeoutSeconds: 10 },
      }),
    ],
    { hooks: { admission: affinity.admission, httpFallback: affinity.httpFallback } },
  );
});

after(async () => {
  await gate.close();
  affinity.close();
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
