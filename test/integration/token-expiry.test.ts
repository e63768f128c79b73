// auth.jwt.requireExpiry and closeOnExpiry through a live proxy, on a timer wheel driven by a manual clock: a
// token without exp is refused unless the route allows it; with closeOnExpiry the connection is closed with 1008
// "token expired" at exp + clockSkewSeconds (not before), and a fresh token connects again.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket, WebSocketServer } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { TokenExpiry } from '../../src/policy/token-expiry.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { closed, nextMessage, rawExchange, routeObject, silentLog, startGate, upgradeRequest, type Gate } from '../support/harness.ts';

const hmac = '0123456789abcdef0123456789abcdef-hmac';
const wall0 = Date.UTC(2030, 0, 1);

/** Monotonic time for the wheel and wall time for the tokens, moved together. */
class ManualWheelClock extends ManualClock {
  wall(): number {
    return wall0 + this.now() - 10_000;
  }
}

const clock = new ManualWheelClock(10_000);
let upstream: WebSocketServer;
let gate: Gate;

async function token(expiresInSeconds?: number): Promise<string> {
  const iat = Math.floor(clock.wall() / 1000);
  const t = new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(iat);
  if (expiresInSeconds !== undefined) t.setExpirationTime(iat + expiresInSeconds);
  return t.sign(new TextEncoder().encode(hmac));
}

before(async () => {
  upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(upstream, 'listening');
  upstream.on('connection', (ws) => {
    ws.on('message', (d, b) => ws.send(d as Buffer, { binary: b }));
    ws.on('error', () => {});
  });
  const addr = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const r = (name: string, jwt: Record<string, unknown>) =>
    routeObject(name, { rules: [{ matches: [{ path: { type: 'Exact', value: `/${name}` } }], backendRefs: [{ endpoints: [addr] }] }], auth: { jwt: { secretName: 'jwt', ...jwt } } });
  const wheel = new TimerWheel({ tickMs: 100, clock });
  const security = createSecurity({ trustedProxies: [], log: silentLog, jwt: { now: () => new Date(clock.wall()) } });
  const expiry = new TokenExpiry({ wheel, now: () => clock.wall() }).hooks();
  gate = await startGate([], { wheel, hooks: { admission: security.admission, established: expiry.established, ended: expiry.ended } });
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes: [r('default', {}), r('noexp', { requireExpiry: false }), r('close', { closeOnExpiry: true, clockSkewSeconds: 10 })],
    services: [],
    endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'jwt' }, data: { key: Buffer.from(hmac).toString('base64') } }],
  });
  gate.holder.publish(built.content);
});

after(async () => {
  await gate.close();
  upstream.close();
});

async function open(path: string, tok: string): Promise<WebSocket> {
  const ws = new WebSocket(gate.url(path), { headers: { Authorization: `Bearer ${tok}` } });
  ws.on('error', () => {});
  await once(ws, 'open');
  return ws;
}

async function echoes(ws: WebSocket, text: string): Promise<void> {
  ws.send(text);
  assert.equal((await nextMessage(ws)).data.toString(), text);
}

test('a token without exp → 401 by default (requireExpiry), admitted with requireExpiry: false', async () => {
  const res = await rawExchange(gate.port, upgradeRequest('/default', { Authorization: `Bearer ${await token()}` }));
  assert.equal(res.status, 401);
  assert.equal(res.headers['wsgate-reason'], 'unauthorized');
  assert.match(res.body, /claim exp check failed/);
  const ws = await open('/noexp', await token());
  await echoes(ws, 'never expires');
  ws.close();
  await closed(ws);
});

test('closeOnExpiry: 1008 "token expired" at exp + skew, not before; a fresh token reconnects', async () => {
  const ws = await open('/close', await token(60));
  const end = closed(ws);
  // exp is 60 s away, the skew 10 s: one tick before 70 s the connection is still relaying.
  clock.advance(69_900);
  await echoes(ws, 'still valid');
  clock.advance(100);
  assert.deepEqual(await end, { code: 1008, reason: 'token expired' });
  const again = await open('/close', await token(60));
  await echoes(again, 'fresh token');
  again.close();
  await closed(again);
});

test('without closeOnExpiry the connection outlives its token', async () => {
  const ws = await open('/default', await token(60));
  clock.advance(120_000);
  await echoes(ws, 'after exp');
  ws.close();
  await closed(ws);
});
