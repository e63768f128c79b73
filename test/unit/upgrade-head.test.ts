// The front's parser of a client's opening handshake: the plain shape is taken (fields as IncomingMessage has
// them), everything else is left to Node's parser, and a head still arriving is kept only while it may become
// the plain shape (garbage goes to Node at once, which refuses it at once).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { headEnd, parseUpgradeHead, plausiblePartialHead } from '../../src/proxy/handshake/head.ts';

const socket = {} as Socket;
const PLAIN =
  'GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Trailing:  spaced \t\r\n\r\n';

function parse(text: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = headEnd(buf);
  return end < 0 ? undefined : parseUpgradeHead(buf, end, socket);
}

test('a plain upgrade is parsed as IncomingMessage would have it', () => {
  const req = parse(`${PLAIN}\x81\x00`);
  assert.ok(req);
  assert.equal(req.method, 'GET');
  assert.equal(req.url, '/chat?room=1');
  assert.equal(req.httpVersionMinor, 1);
  assert.equal(req.headers.host, 'example.com');
  assert.equal(req.headers['x-trailing'], 'spaced');
  assert.equal(req.headers.constructor, undefined);
  assert.deepEqual(req.rawHeaders.slice(0, 4), ['Host', 'example.com', 'Upgrade', 'websocket']);
  assert.equal(req.socket, socket);
});

test("everything but the plain shape is left to Node's parser", () => {
  const swap = (from: string, to: string) => PLAIN.replace(from, to);
  for (const text of [
    swap('GET ', 'POST '),
    swap('HTTP/1.1', 'HTTP/1.0'),
    swap('GET /chat?room=1', 'GET http://example.com/chat'),
    swap('Upgrade: websocket\r\n', ''),
    swap('Connection: keep-alive, Upgrade', 'Connection: keep-alive'),
    // llhttp misses the token before a tab, so Node would not see an upgrade (found by the differential test).
    swap('Connection: keep-alive, Upgrade', 'Connection: keep-alive, Upgrade\t'),
    swap('Connection: keep-alive, Upgrade', 'Connection: Upgrade\t, keep-alive'),
    swap('Host: example.com\r\n', 'Host: example.com\r\nHost: evil.example\r\n'),
    swap('Host: example.com\r\n', 'Host: example.com\r\nContent-Length: 0\r\n'),
    swap('Host: example.com\r\n', 'Host: example.com\r\nTransfer-Encoding: chunked\r\n'),
    swap('Host: example.com\r\n', 'Host : example.com\r\n'),
    swap('Host: example.com\r\n', 'Host: example.com\r\n folded\r\n'),
    swap('Host: example.com\r\n', 'Host: ex\xe4mple.com\r\n'),
    swap('Host: example.com\r\n', 'Host: example.com\n'),
    swap('Host: example.com\r\n', 'Host example.com\r\n'),
    swap('Host: example.com\r\n', `Host: example.com\r\n${'X-A: b\r\n'.repeat(70)}`),
  ]) {
    assert.equal(parse(text), undefined, JSON.stringify(text.slice(0, 80)));
  }
});

test('a head still arriving waits only while it may become a plain upgrade', () => {
  const plausible = (s: string) => plausiblePartialHead(Buffer.from(s, 'latin1'));
  for (let cut = 0; cut < PLAIN.length - 1; cut++) assert.ok(plausible(PLAIN.slice(0, cut)), `cut ${cut}`);
  for (const s of ['\x16\x03\x01', 'POST /', 'GET x', 'GET / HTTP/1.0\r\n', 'GET / HTTP/2', 'GET / HTTP/1.1\r\nHost\r', 'GET / HTTP/1.1\r\nno colon\r\n', 'GET / HTTP/1.1\r\nContent-Length: 1', 'GET / HTTP/1.1\nHost']) {
    assert.equal(plausible(s), false, JSON.stringify(s));
  }
});
