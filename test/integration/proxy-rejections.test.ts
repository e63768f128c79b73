// Every refusal this proxy answers before the upgrade, seen on the wire: status, wsgate-reason and the
// rejection metric; and an upstream's own non-101 answer passed through as it is.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { closed, connect, metricValue, nextMessage, rawExchange, routeObject, startEcho, startGate, upgradeRequest, type Echo, type Gate } from '../support/harness.ts';

let echo: Echo;
let gate: Gate;
let forbidding: http.Server;
let silent: net.Server;
let garbage: net.Server;
const held: net.Socket[] = [];

async function listen<T extends net.Server>(s: T): Promise<number> {
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return (s.address() as AddressInfo).port;
}

before(async () => {
  echo = await startEcho();
  forbidding = http.createServer();
  forbidding.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Upstream: yes\r\nContent-Length: 6\r\n\r\nno way'));
  silent = net.createServer((s) => held.push(s)); // accepts, never answers: the handshake deadline applies
  garbage = net.createServer((s) => s.end('this is not HTTP\r\n\r\n'));
  const [fp, sp, gp] = await Promise.all([listen(forbidding), listen(silent), listen(garbage)]);
  const closedPort = await (async () => { const s = net.createServer(); const p = await listen(s); s.close(); return p; })();
  const route = (name: string, path: string, addrs: string[], spec: Record<string, unknown> = {}) =>
    routeObject(name, { hostnames: ['example.com'], rules: [{ matches: [{ path: { value: path } }], backendRefs: [{ endpoints: addrs }] }], ...spec });
  gate = await startGate([
    route('ok', '/ok', [echo.address]),
    route('forbid', '/forbid', [`127.0.0.1:${fp}`]),
    route('silent', '/silent', [`127.0.0.1:${sp}`], { upstream: { handshakeTimeoutSeconds: 1 } }),
    route('refused', '/refused', [`127.0.0.1:${closedPort}`]),
    route('retry', '/retry', [`127.0.0.1:${closedPort}`, echo.address], { loadBalancer: { policy: 'RoundRobin' } }),
    route('garbage', '/garbage', [`127.0.0.1:${gp}`]),
    routeObject('unresolved', { hostnames: ['example.com'], rules: [{ matches: [{ path: { value: '/svc' } }], backendRefs: [{ name: 'nope', port: 80 }] }] }),
  ]);
});

after(async () => {
  for (const s of held) s.destroy();
  await gate.close();
  await echo.close();
  forbidding.close();
  silent.close();
  garbage.close();
});

const cases: { name: string; req: string; status: number; reason: string; route?: string; header?: [string, string] }[] = [
  { name: 'POST cannot upgrade', req: upgradeRequest('/ok').replace('GET', 'POST'), status: 400, reason: 'bad_handshake' },
  { name: 'bad key', req: upgradeRequest('/ok', { 'Sec-WebSocket-Key': 'short' }), status: 400, reason: 'bad_handshake' },
  { name: 'missing Connection: upgrade', req: upgradeRequest('/ok', { Connection: 'keep-alive' }), status: 400, reason: 'bad_handshake' },
  { name: 'wrong version', req: upgradeRequest('/ok', { 'Sec-WebSocket-Version': '8' }), status: 426, reason: 'unsupported_version', header: ['sec-websocket-version', '13'] },
  { name: 'body on upgrade (smuggling)', req: upgradeRequest('/ok', { 'Content-Length': '5' }), status: 400, reason: 'request_smuggling' },
  { name: 'duplicate Host', req: upgradeRequest('/ok').replace('Host: example.com\r\n', 'Host: example.com\r\nHost: evil.com\r\n'), status: 400, reason: 'bad_host' },
  { name: 'no route', req: upgradeRequest('/nowhere'), status: 404, reason: 'no_route' },
  { name: 'unresolved backend', req: upgradeRequest('/svc'), status: 503, reason: 'backend_not_found', route: 'unresolved' },
  { name: 'upstream refused', req: upgradeRequest('/refused'), status: 502, reason: 'upstream_refused', route: 'refused' },
  { name: 'upstream silent', req: upgradeRequest('/silent'), status: 504, reason: 'upstream_timeout', route: 'silent' },
  { name: 'upstream garbage', req: upgradeRequest('/garbage'), status: 502, reason: 'upstream_bad_handshake', route: 'garbage' },
  { name: 'plain HTTP on a route without fallback', req: 'GET /ok HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n', status: 426, reason: 'upgrade_required', route: 'ok', header: ['upgrade', 'websocket'] },
  { name: 'headers too large', req: upgradeRequest('/ok', { 'X-Big': 'a'.repeat(20000) }), status: 431, reason: 'headers_too_large' },
  { name: 'not HTTP at all', req: '\x16\x03\x01garbage\r\n\r\n', status: 400, reason: 'bad_handshake' },
];

for (const c of cases) {
  test(`${c.name} → ${c.status} ${c.reason}`, async () => {
    const labels = { namespace: c.route ? 'default' : '', route: c.route ?? '', reason: c.reason };
    const before = await metricValue(gate.metrics, 'wsgate_rejections_total', labels);
    const res = await rawExchange(gate.port, c.req);
    assert.equal(res.status, c.status, res.raw);
    assert.equal(res.headers['wsgate-reason'], c.reason);
    if (c.header) assert.equal(res.headers[c.header[0]], c.header[1]);
    assert.equal((await metricValue(gate.metrics, 'wsgate_rejections_total', labels)) - before, 1);
  });
}

test('an upstream 403 reaches the client as it is', async () => {
  const res = await rawExchange(gate.port, upgradeRequest('/forbid'));
  assert.equal(res.status, 403);
  assert.equal(res.headers['x-upstream'], 'yes');
  assert.equal(res.body, 'no way');
  assert.equal(await metricValue(gate.metrics, 'wsgate_rejections_total', { route: 'forbid', reason: 'upstream_status' }), 1);
});

test('a refused endpoint is retried on the next one', async () => {
  // Round-robin alternates between the closed port and the echo: every attempt must still get through.
  for (let i = 0; i < 4; i++) {
    const ws = await connect(gate.url('/retry'), { headers: { Host: 'example.com' } });
    ws.send('hi');
    assert.equal((await nextMessage(ws)).data.toString(), 'hi');
    ws.close();
    await closed(ws);
  }
});
