// Client-address headers a backend may believe: X-Forwarded-For, Forwarded (RFC 7239) and X-Real-IP. From a
// client that is not a trusted proxy none of its own values reach the backend; from a trusted proxy the
// Forwarded chain is kept and wsgate's element appended (RFC 7239 §4), and X-Real-IP is always the address
// wsgate resolved.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { createSecurity } from '../../src/policy/admission.ts';
import { closed, routeObject, silentLog, startGate, type Gate } from '../support/harness.ts';

let upstream: WebSocketServer;
let untrusted: Gate;
let trusted: Gate;
const seen: IncomingHttpHeaders[] = [];

before(async () => {
  upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(upstream, 'listening');
  upstream.on('connection', (ws, req) => {
    seen.push(req.headers);
    ws.on('error', () => {});
  });
  const routes = [routeObject('fwd', { rules: [{ backendRefs: [{ endpoints: [`127.0.0.1:${(upstream.address() as AddressInfo).port}`] }] }] })];
  untrusted = await startGate(routes, { hooks: { admission: createSecurity({ trustedProxies: [], log: silentLog }).admission } });
  trusted = await startGate(routes, { hooks: { admission: createSecurity({ trustedProxies: ['127.0.0.1/32'], log: silentLog }).admission } });
});

after(async () => {
  await untrusted.close();
  await trusted.close();
  upstream.close();
});

async function upstreamHeaders(gate: Gate, headers: Record<string, string>): Promise<IncomingHttpHeaders> {
  const n = seen.length;
  const ws = new WebSocket(gate.url('/'), { headers: { Host: 'chat.example.com', ...headers } });
  ws.on('error', () => {});
  await once(ws, 'open');
  ws.close();
  await closed(ws);
  return seen[n]!;
}

const spoofed = { Forwarded: 'for=6.6.6.6;proto=https', 'X-Real-IP': '6.6.6.6', 'X-Forwarded-For': '6.6.6.6' };

test('an untrusted client: its Forwarded, X-Real-IP and X-Forwarded-For are replaced', async () => {
  const h = await upstreamHeaders(untrusted, spoofed);
  assert.deepEqual(
    { forwarded: h.forwarded, real: h['x-real-ip'], xff: h['x-forwarded-for'] },
    { forwarded: 'for=127.0.0.1;host=chat.example.com;proto=http', real: '127.0.0.1', xff: '127.0.0.1' },
  );
  // A Host with a port is a quoted-string in Forwarded (RFC 7239 §4: ":" is not a token character).
  const p = await upstreamHeaders(untrusted, { Host: 'chat.example.com:8080' });
  assert.equal(p.forwarded, 'for=127.0.0.1;host="chat.example.com:8080";proto=http');
});

test('a trusted proxy: its Forwarded chain is kept and extended; X-Real-IP is the resolved client', async () => {
  const h = await upstreamHeaders(trusted, { Forwarded: 'for=192.0.2.60;proto=https;by=203.0.113.43', 'X-Forwarded-For': '192.0.2.60', 'X-Real-IP': '6.6.6.6' });
  assert.equal(h.forwarded, 'for=192.0.2.60;proto=https;by=203.0.113.43, for=127.0.0.1;host=chat.example.com;proto=http');
  assert.equal(h['x-real-ip'], '192.0.2.60');
  // Forwarded without X-Forwarded-For from a trusted proxy is kept all the same.
  const f = await upstreamHeaders(trusted, { Forwarded: 'for="[2001:db8::1]"' });
  assert.equal(f.forwarded, 'for="[2001:db8::1]", for=127.0.0.1;host=chat.example.com;proto=http');
  assert.equal(f['x-real-ip'], '127.0.0.1');
});
