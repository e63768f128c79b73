// TLS at both ends: SNI certificate choice (exact, wildcard, default), TLS 1.2 minimum, ALPN http/1.1, a
// certificate swap under 100 open wss connections with none dropped, and upstream wss with a CA from a
// Secret, a wrong CA (502) and insecureSkipVerify.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import type { RouteObject, SecretLite } from '../../src/dag/input.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { TlsListener } from '../../src/proxy/tls/tls-listener.ts';
import { selfSigned, tlsSecret, type TestCert } from '../support/certs.ts';
import { closed, metricValue, nextMessage, rawExchange, routeObject, silentLog, startEcho, startGate, upgradeRequest, type Echo, type Gate } from '../support/harness.ts';

const builder = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' });
let echo: Echo;
let gate: Gate;
let listener: TlsListener;
let tlsPort = 0;
let dir: string;
let upstreamTls: https.Server;
let upstreamWss: WebSocketServer;
const chatA = selfSigned(['chat.example.com']);
const chatB = selfSigned(['chat.example.com']);
const wild = selfSigned(['*.wild.test']);
const fallback = selfSigned(['default.invalid']);
const upstreamCert = selfSigned(['localhost']);
const otherCa = selfSigned(['localhost']);

function caSecret(name: string, c: TestCert): SecretLite {
  return { metadata: { namespace: 'default', name }, data: { 'ca.crt': Buffer.from(c.cert).toString('base64') } };
}

let routes: RouteObject[] = [];
function publish(secrets: SecretLite[]): void {
  const r = builder({ routes, services: [], endpointSlices: [], secrets });
  gate.holder.publish(r.content);
}

before(async () => {
  echo = await startEcho();
  upstreamTls = https.createServer({ cert: upstreamCert.cert, key: upstreamCert.key });
  upstreamWss = new WebSocketServer({ server: upstreamTls });
  upstreamWss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d as Buffer, { binary: bin })));
  upstreamTls.listen(0, '127.0.0.1');
  await once(upstreamTls, 'listening');
  const up = `127.0.0.1:${(upstreamTls.address() as AddressInfo).port}`;
  const wssRoute = (name: string, path: string, t: Record<string, unknown>) =>
    routeObject(name, { hostnames: ['up.example.com'], rules: [{ matches: [{ path: { value: path } }], backendRefs: [{ endpoints: [up] }] }], upstream: { protocol: 'wss', tls: t } });
  routes = [
    routeObject('chat', { hostnames: ['chat.example.com'], tls: { secretName: 'chat-tls' }, rules: [{ backendRefs: [{ endpoints: [echo.address] }] }] }),
    routeObject('wild', { hostnames: ['*.wild.test'], tls: { secretName: 'wild-tls' }, rules: [{ backendRefs: [{ endpoints: [echo.address] }] }] }),
    wssRoute('up-ca', '/ca', { caSecretName: 'up-ca', serverName: 'localhost' }),
    wssRoute('up-wrong', '/wrong', { caSecretName: 'other-ca', serverName: 'localhost' }),
    wssRoute('up-insecure', '/insecure', { insecureSkipVerify: true }),
  ];
  const security = createSecurity({ trustedProxies: [], log: silentLog });
  gate = await startGate([], { hooks: { admission: security.admission } });
  publish([tlsSecret('default', 'chat-tls', chatA), tlsSecret('default', 'wild-tls', wild), caSecret('up-ca', upstreamCert), caSecret('other-ca', otherCa)]);
  dir = mkdtempSync(join(tmpdir(), 'wsgate-tls-'));
  writeFileSync(join(dir, 'default.crt'), fallback.cert);
  writeFileSync(join(dir, 'default.key'), fallback.key);
  listener = new TlsListener({ holder: gate.holder, log: silentLog, handshakeTimeoutMs: 5000, maxHeaderBytes: 16384, defaultCertFile: join(dir, 'default.crt'), defaultKeyFile: join(dir, 'default.key') });
  await listener.start();
  gate.proxy.attach(listener.server);
  listener.server.listen(0, '127.0.0.1');
  await once(listener.server, 'listening');
  tlsPort = (listener.server.address() as AddressInfo).port;
});

after(async () => {
  await gate.close();
  listener.close();
  await echo.close();
  upstreamWss.close();
  upstreamTls.close();
  rmSync(dir, { recursive: true, force: true });
});

function handshake(opts: tls.ConnectionOptions): Promise<{ fingerprint: string; alpn: string | false | null; version: string | null }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'], ...opts }, () => {
      const r = { fingerprint: s.getPeerX509Certificate()?.fingerprint256 ?? '', alpn: s.alpnProtocol, version: s.getProtocol() };
      s.end();
      resolve(r);
    });
    s.on('error', reject);
  });
}

test('SNI picks the route certificate, then a wildcard, then the default; ALPN http/1.1', async () => {
  const exact = await handshake({ servername: 'chat.example.com' });
  assert.equal(exact.fingerprint, chatA.fingerprint);
  assert.equal(exact.alpn, 'http/1.1');
  assert.equal((await handshake({ servername: 'a.wild.test' })).fingerprint, wild.fingerprint);
  assert.equal((await handshake({ servername: 'nothing.example.org' })).fingerprint, fallback.fingerprint);
  assert.equal((await handshake({})).fingerprint, fallback.fingerprint, 'no SNI at all: the default');
});

test('TLS 1.1 and older are refused', async () => {
  await assert.rejects(handshake({ servername: 'chat.example.com', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }));
  assert.equal((await handshake({ servername: 'chat.example.com', maxVersion: 'TLSv1.2' })).version, 'TLSv1.2');
});

function wss(path = '/', host = 'chat.example.com', ca: string[] = [chatA.cert, chatB.cert]): Promise<WebSocket> {
  // ws hands TLS options through to tls.connect; its types do not list servername.
  const tlsOpts: tls.ConnectionOptions = { servername: host, ca };
  const ws = new WebSocket(`wss://127.0.0.1:${tlsPort}${path}`, { ...tlsOpts, headers: { Host: host } } as ClientOptions);
  ws.on('error', () => {});
  return once(ws, 'open').then(() => ws);
}

test('a certificate swap under 100 open wss connections drops none', async () => {
  const conns = await Promise.all(Array.from({ length: 100 }, () => wss()));
  let drops = 0;
  for (const ws of conns) ws.on('close', () => drops++);
  const before = listener.cachedContexts;
  publish([tlsSecret('default', 'chat-tls', chatB), tlsSecret('default', 'wild-tls', wild), caSecret('up-ca', upstreamCert), caSecret('other-ca', otherCa)]);
  assert.equal((await handshake({ servername: 'chat.example.com' })).fingerprint, chatB.fingerprint, 'new handshakes see the new certificate');
  assert.ok(listener.cachedContexts <= before + 1);
  await Promise.all(conns.map(async (ws, i) => {
    const got = nextMessage(ws);
    ws.send(`still here ${i}`);
    assert.equal((await got).data.toString(), `still here ${i}`);
  }));
  const fresh = await wss();
  const got = nextMessage(fresh);
  fresh.send('new');
  assert.equal((await got).data.toString(), 'new');
  assert.equal(drops, 0);
  for (const ws of [...conns, fresh]) ws.close();
  await Promise.all([...conns, fresh].map((ws) => closed(ws)));
});

async function tlsExchange(request: string): Promise<string> {
  const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'chat.example.com', ca: [chatB.cert, chatA.cert] });
  await once(s, 'secureConnect');
  s.write(request);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => {});
  await once(s, 'close');
  return Buffer.concat(chunks).toString();
}

test('the TLS listener serves the same routes and rejections (X-Forwarded-Proto https)', async () => {
  assert.match(await tlsExchange(upgradeRequest('/', { Host: 'chat.example.com', 'Sec-WebSocket-Version': '8' })), /^HTTP\/1.1 426/);
  // What the upgrade front leaves to Node's parser gets Node's answer over TLS too: framing on an upgrade GET,
  // a request that is not an upgrade.
  assert.match(await tlsExchange(upgradeRequest('/', { Host: 'chat.example.com', 'Content-Length': '5' })), /^HTTP\/1.1 400[^]*wsgate-reason: request_smuggling/i);
  assert.match(await tlsExchange('GET / HTTP/1.1\r\nHost: chat.example.com\r\nConnection: close\r\n\r\n'), /^HTTP\/1.1 426/);
});

test('upstream wss: CA from a Secret verifies; a wrong CA is 502; insecureSkipVerify connects', async () => {
  const url = (p: string) => `ws://127.0.0.1:${gate.port}${p}`;
  const ws = new WebSocket(url('/ca'), { headers: { Host: 'up.example.com' } });
  await once(ws, 'open');
  const got = nextMessage(ws);
  ws.send('over tls');
  assert.equal((await got).data.toString(), 'over tls');
  ws.close();
  await closed(ws);
  const wrong = await rawExchange(gate.port, upgradeRequest('/wrong', { Host: 'up.example.com' }));
  assert.equal(wrong.status, 502);
  assert.equal(await metricValue(gate.metrics, 'wsgate_rejections_total', { route: 'up-wrong', reason: wrong.headers['wsgate-reason']! }), 1);
  const insecure = new WebSocket(url('/insecure'), { headers: { Host: 'up.example.com' } });
  await once(insecure, 'open');
  insecure.close();
  await closed(insecure);
});
