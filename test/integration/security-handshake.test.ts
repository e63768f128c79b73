// Every admission path on the wire through a live proxy: status, wsgate-reason, extra header and the
// rejection metric; what the upstream receives once admitted (credentials removed, claims forwarded); and no
// token, key or claim value in any log line.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { createBuilder } from '../../src/dag/build.ts';
import type { RouteObject } from '../../src/dag/input.ts';
import { createSecurity, type Security } from '../../src/policy/admission.ts';
import { closed, type Gate, metricValue, rawExchange, routeObject, startGate, upgradeRequest } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';

const hmac = '0123456789abcdef0123456789abcdef-hmac';
const apiKey = 'k3y-that-must-never-be-logged';
const logLines: string[] = [];
const log = pino({ level: 'trace' }, new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } }));
let upstream: WebSocketServer;
let gate: Gate;
let security: Security;
const seen: { url: string; headers: IncomingMessage['headers'] }[] = [];

async function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(hmac));
}

before(async () => {
  upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(upstream, 'listening');
  upstream.on('connection', (ws, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    ws.on('message', (d, b) => ws.send(d as Buffer, { binary: b }));
  });
  const addr = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const r = (name: string, extra: Record<string, unknown>): RouteObject =>
    routeObject(name, { hostnames: ['example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: `/${name}` } }], backendRefs: [{ endpoints: [addr] }] }], ...extra });
  const routes = [
    r('origin', { allowedOrigins: ['https://*.example.com', 'https://exact.test'], allowMissingOrigin: false }),
    r('ip', { clientIPs: { allow: ['10.0.0.0/8'], deny: ['10.6.6.6'] } }),
    r('rate', { rateLimit: { connectionsPerMinutePerIP: 2 } }),
    r('perip', { limits: { maxConnectionsPerIP: 1 } }),
    r('full', { limits: { maxConnections: 1 } }),
    r('key', { auth: { apiKey: { secretName: 'keys', header: 'X-Api-Key', queryParam: 'api_key' } } }),
    r('jwt', {
      auth: { jwt: { secretName: 'jwt', tokenSources: [{ type: 'Header' }, { type: 'Subprotocol' }, { type: 'Query' }], requiredClaims: [{ name: 'role', values: ['admin'] }], forwardClaims: [{ claim: 'sub', header: 'X-User' }] } },
    }),
  ];
  security = createSecurity({ trustedProxies: ['127.0.0.1/32'], log });
  gate = await startGate([], { log, hooks: { admission: security.admission } });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes, services: [], endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'keys' }, data: { a: b64(apiKey) } }, { metadata: { namespace: 'default', name: 'jwt' }, data: { key: b64(hmac) } }],
  });
  gate.holder.publish(built.content);
});

after(async () => {
  await gate.close();
  upstream.close();
});

async function refused(path: string, headers: Record<string, string | undefined>, status: number, reason: string, route: string, header?: [string, RegExp]) {
  const labels = { namespace: 'default', route, reason };
  const before = await metricValue(gate.metrics, 'wsgate_rejections_total', labels);
  const res = await rawExchange(gate.port, upgradeRequest(path, headers));
  assert.equal(res.status, status, res.raw);
  assert.equal(res.headers['wsgate-reason'], reason);
  if (header) assert.match(res.headers[header[0]] ?? '', header[1]);
  assert.equal((await metricValue(gate.metrics, 'wsgate_rejections_total', labels)) - before, 1);
}

async function admitted(path: string, headers: Record<string, string> = {}, protocols?: string[]): Promise<{ ws: WebSocket; upstream: (typeof seen)[number] }> {
  const n = seen.length;
  const ws = new WebSocket(`ws://127.0.0.1:${gate.port}${path}`, protocols, { headers: { Host: 'example.com', ...headers } });
  ws.on('error', () => {});
  await once(ws, 'open');
  return { ws, upstream: seen[n]! };
}

async function done(ws: WebSocket) {
  ws.close();
  await closed(ws);
}

test('origin: wildcard and exact admitted; others and a missing Origin → 403', async () => {
  await done((await admitted('/origin', { Origin: 'https://app.example.com' })).ws);
  await done((await admitted('/origin', { Origin: 'https://exact.test' })).ws);
  await refused('/origin', { Host: 'example.com', Origin: 'https://evil.com' }, 403, 'origin_not_allowed', 'origin');
  await refused('/origin', { Host: 'example.com' }, 403, 'origin_not_allowed', 'origin');
});

test('client IP: X-Forwarded-For believed from a trusted proxy; allow and deny', async () => {
  await refused('/ip', {}, 403, 'client_ip_not_allowed', 'ip');
  await refused('/ip', { 'X-Forwarded-For': '10.6.6.6' }, 403, 'client_ip_not_allowed', 'ip');
  const { ws, upstream: up } = await admitted('/ip', { 'X-Forwarded-For': '192.0.2.1, 10.1.2.3' });
  assert.equal(up.headers['x-forwarded-for'], '192.0.2.1, 10.1.2.3, 10.1.2.3');
  await done(ws);
});

test('new connections per client IP per minute → 429 with Retry-After', async () => {
  await done((await admitted('/rate')).ws);
  await done((await admitted('/rate')).ws);
  await refused('/rate', {}, 429, 'rate_limited', 'rate', ['retry-after', /^\d+$/]);
});

test('concurrent connections per IP → 429, per route → 503, released when connections end', async () => {
  const a = await admitted('/perip');
  await refused('/perip', {}, 429, 'connection_limit', 'perip', ['retry-after', /^1$/]);
  await done(a.ws);
  const f = await admitted('/full', { 'X-Forwarded-For': '10.0.0.1' });
  await refused('/full', { 'X-Forwarded-For': '10.0.0.2' }, 503, 'route_connection_limit', 'full', ['retry-after', /^1$/]);
  await done(f.ws);
  // The slot comes back when the client socket has closed on the proxy's side too.
  await waitUntil(() => security.limiter.held('default/full') === 0, 'the slot released');
  await done((await admitted('/full')).ws);
});

test('API key: 401 with WWW-Authenticate; admitted by header or query, never forwarded', async () => {
  await refused('/key', {}, 401, 'unauthorized', 'key', ['www-authenticate', /^ApiKey realm="wsgate"/]);
  await refused('/key', { 'X-Api-Key': 'wrong' }, 401, 'unauthorized', 'key');
  const h = await admitted('/key', { 'X-Api-Key': apiKey });
  assert.equal(h.upstream.headers['x-api-key'], undefined);
  await done(h.ws);
  const q = await admitted(`/key?api_key=${apiKey}&room=1`);
  assert.equal(q.upstream.url, '/key?room=1');
  await done(q.ws);
});

test('JWT: 401 missing/invalid, 403 claims; subprotocol token removed and the 101 still valid; claims forwarded', async () => {
  await refused('/jwt', {}, 401, 'unauthorized', 'jwt', ['www-authenticate', /^Bearer realm="wsgate"$/]);
  await refused('/jwt', { Authorization: 'Bearer nope.nope.nope' }, 401, 'unauthorized', 'jwt', ['www-authenticate', /invalid_token/]);
  await refused('/jwt', { Authorization: `Bearer ${await token({ sub: 'bob', role: 'user' })}` }, 403, 'claims_not_allowed', 'jwt');
  const admin = await token({ sub: 'alice', role: 'admin' });
  const h = await admitted('/jwt', { Authorization: `Bearer ${admin}`, 'X-User': 'root' });
  assert.equal(h.upstream.headers.authorization, undefined);
  assert.equal(h.upstream.headers['x-user'], 'alice');
  await done(h.ws);
  // Browsers: the token rides in Sec-WebSocket-Protocol; the upstream never sees it, the client gets a valid 101.
  const s = await admitted('/jwt', {}, ['access_token', admin]);
  assert.equal(s.ws.protocol, 'access_token');
  assert.equal(s.upstream.headers['sec-websocket-protocol'], undefined);
  await done(s.ws);
  const s2 = await admitted('/jwt', {}, ['chat', 'access_token', admin]);
  assert.equal(s2.upstream.headers['sec-websocket-protocol'], 'chat');
  assert.equal(s2.ws.protocol, 'chat');
  await done(s2.ws);
  const q = await admitted(`/jwt?access_token=${admin}`);
  assert.equal(q.upstream.url, '/jwt');
  await done(q.ws);
});

// An unsigned token (RFC 7519 §6.1, alg "none") with an admin claim: what an attacker would slip past a proxy that
// verifies one token source and forwards the others untouched.
const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"mallory","role":"admin"}').toString('base64url')}.`;

test('JWT: a second, different token in another source → 400 ambiguous_credentials (RFC 6750 §3.1 invalid_request)', async () => {
  const admin = await token({ sub: 'alice', role: 'admin' });
  const challenge: [string, RegExp] = ['www-authenticate', /^Bearer realm="wsgate", error="invalid_request"$/];
  await refused(`/jwt?access_token=${forged}`, { Authorization: `Bearer ${admin}` }, 400, 'ambiguous_credentials', 'jwt', challenge);
  await refused('/jwt', { Authorization: `Bearer ${admin}`, 'Sec-WebSocket-Protocol': `access_token, ${forged}` }, 400, 'ambiguous_credentials', 'jwt', challenge);
  await refused(`/jwt?access_token=${admin}&access_token=${forged}`, {}, 400, 'ambiguous_credentials', 'jwt', challenge);
  await refused('/jwt', { 'Sec-WebSocket-Protocol': `access_token, ${admin}, access_token, ${forged}` }, 400, 'ambiguous_credentials', 'jwt', challenge);
});

test('JWT: every configured source is stripped, not only the one that was used', async () => {
  const admin = await token({ sub: 'alice', role: 'admin' });
  // The same token twice is not ambiguous; neither copy goes upstream.
  const same = await admitted(`/jwt?room=1&access_token=${admin}`, { Authorization: `Bearer ${admin}` }, ['chat', 'access_token', admin]);
  assert.equal(same.upstream.url, '/jwt?room=1');
  assert.equal(same.upstream.headers.authorization, undefined);
  assert.equal(same.upstream.headers['sec-websocket-protocol'], 'chat');
  await done(same.ws);
  // A source present but carrying no usable token (an empty parameter, a non-Bearer Authorization) is stripped too.
  const empty = await admitted(`/jwt?access_token=&room=2`, {}, ['access_token', admin]);
  assert.equal(empty.upstream.url, '/jwt?room=2');
  await done(empty.ws);
  const basic = await admitted(`/jwt?access_token=${admin}`, { Authorization: 'Basic bWFsbG9yeTpzZWNyZXQ=' });
  assert.equal(basic.upstream.url, '/jwt');
  assert.equal(basic.upstream.headers.authorization, undefined);
  await done(basic.ws);
});

test('API key: a different key in the header and the query → 400 ambiguous_credentials; both always stripped', async () => {
  await refused(`/key?api_key=${apiKey}`, { 'X-Api-Key': 'another-key' }, 400, 'ambiguous_credentials', 'key', ['www-authenticate', /^ApiKey realm="wsgate"/]);
  await refused(`/key?api_key=${apiKey}&api_key=other`, {}, 400, 'ambiguous_credentials', 'key');
  const both = await admitted(`/key?api_key=${apiKey}&room=1`, { 'X-Api-Key': apiKey });
  assert.equal(both.upstream.url, '/key?room=1');
  assert.equal(both.upstream.headers['x-api-key'], undefined);
  await done(both.ws);
});

test('no token, key or claim value in any log line', async () => {
  const admin = await token({ sub: 'alice-claim-value', role: 'admin' });
  await done((await admitted('/jwt', { Authorization: `Bearer ${admin}` })).ws);
  await rawExchange(gate.port, upgradeRequest('/jwt', { Authorization: `Bearer ${admin}x` }));
  await rawExchange(gate.port, upgradeRequest('/key', { 'X-Api-Key': `${apiKey}-wrong` }));
  const all = logLines.join('');
  assert.ok(logLines.length > 0);
  for (const secret of [admin, apiKey, 'alice-claim-value', hmac]) assert.ok(!all.includes(secret), 'a secret reached the log');
});
