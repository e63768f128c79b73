// Request paths are normalized before matching and forwarded normalized, as Envoy does with normalize_path,
// merge_slashes and path_with_escaped_slashes_action: REJECT_REQUEST
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto).
// Requests go out as raw bytes: a client library would resolve "../" itself (WHATWG URL parsing), and the point
// is what wsgate does with the request line as an attacker sends it.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { parseResponse, rawExchange, routeObject, startGate, upgradeRequest, type Gate } from '../support/harness.ts';

interface Backend {
  readonly wss: WebSocketServer;
  readonly addr: string;
  readonly urls: string[];
}

async function backend(): Promise<Backend> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const urls: string[] = [];
  wss.on('connection', (ws, req) => {
    urls.push(req.url ?? '');
    ws.on('error', () => {});
  });
  return { wss, addr: `127.0.0.1:${(wss.address() as AddressInfo).port}`, urls };
}

let pub: Backend;
let priv: Backend;
let gate: Gate;

before(async () => {
  pub = await backend();
  priv = await backend();
  const rule = (prefix: string, b: Backend) => ({ matches: [{ path: { type: 'PathPrefix', value: prefix } }], backendRefs: [{ endpoints: [b.addr] }] });
  gate = await startGate([routeObject('paths', { rules: [rule('/public', pub), rule('/private', priv)] })]);
});

after(async () => {
  await gate.close();
  for (const b of [pub, priv]) {
    for (const c of b.wss.clients) c.terminate();
    b.wss.close();
  }
});

/** Sends one raw upgrade and reads the response head; on a 101, which backend got the request and its target. */
async function send(path: string): Promise<{ status: number; reason?: string; backend?: 'public' | 'private'; url?: string }> {
  const before = { pub: pub.urls.length, priv: priv.urls.length };
  const sock = net.connect(gate.port, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  sock.write(upgradeRequest(path));
  let acc = '';
  while (!acc.includes('\r\n\r\n')) {
    const [chunk] = (await Promise.race([once(sock, 'data'), once(sock, 'close').then(() => [Buffer.alloc(0)])])) as [Buffer];
    if (chunk.length === 0) break;
    acc += chunk.toString('latin1');
  }
  sock.destroy();
  const res = parseResponse(acc);
  if (res.status !== 101) return { status: res.status, ...(res.headers['wsgate-reason'] ? { reason: res.headers['wsgate-reason'] } : {}) };
  if (pub.urls.length > before.pub) return { status: 101, backend: 'public', url: pub.urls.at(-1)! };
  assert.ok(priv.urls.length > before.priv, 'a 101 without any backend connection');
  return { status: 101, backend: 'private', url: priv.urls.at(-1)! };
}

test('dot segments, encoded dots and repeated slashes are resolved before matching; the backend gets the result', async () => {
  const cases: [string, 'public' | 'private', string][] = [
    ['/public/room', 'public', '/public/room'],
    ['/public/../private', 'private', '/private'],
    ['/public/../private/x?room=1', 'private', '/private/x?room=1'],
    ['/public/%2e%2e/private', 'private', '/private'],
    ['/public/%2E%2e/private', 'private', '/private'],
    ['/public/.%2E/private', 'private', '/private'],
    ['/public/./a/b/../../../private', 'private', '/private'],
    ['/public/../../../private', 'private', '/private'],
    ['//private', 'private', '/private'],
    ['/public//a///b', 'public', '/public/a/b'],
    ['/public/a/..', 'public', '/public/'],
    // Unreserved characters are decoded (RFC 3986 §6.2.2.2); other escapes kept, hex upper-cased (§6.2.2.1).
    ['/%70ublic/%7Euser', 'public', '/public/~user'],
    ['/public/a%20b/%e2%82%ac', 'public', '/public/a%20b/%E2%82%AC'],
  ];
  for (const [path, where, url] of cases) assert.deepEqual(await send(path), { status: 101, backend: where, url }, path);
});

test('the query is not part of the path: "?/../private" stays a query of /public, forwarded byte for byte', async () => {
  assert.deepEqual(await send('/public?/../private'), { status: 101, backend: 'public', url: '/public?/../private' });
  assert.deepEqual(await send('/public/x/..?a=%2e%2e/%2F'), { status: 101, backend: 'public', url: '/public/?a=%2e%2e/%2F' });
});

test('encoded slashes and backslashes, bad escapes, fragments and absolute-form targets → 400 bad_path', async () => {
  for (const path of ['/public/..%2Fprivate', '/public/%2fx', '/public/..%5Cprivate', '/public/..\\private', '/public/%zz', '/public/%2', '/public#x', 'http://example.com/public']) {
    assert.deepEqual(await send(path), { status: 400, reason: 'bad_path' }, path);
  }
  // The same answer for a plain request (the HTTP fallback's path), with the reason header.
  const plain = await rawExchange(gate.port, 'GET /public/%2f HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
  assert.equal(plain.status, 400);
  assert.equal(plain.headers['wsgate-reason'], 'bad_path');
});
