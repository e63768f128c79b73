// The upstream answer parser (heads split anywhere, malformed and oversized heads, the three body framings),
// openUpstream against raw TCP servers (101 hand-over with the first frame bytes, relayed non-101 answers,
// refused, silent and aborted attempts) and pooled trace ids.
import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import type { Endpoint } from '../../src/model/snapshot.ts';
import { BodyReader, HEAD_CAP, HeadError, ResponseHeadParser, type UpstreamHead } from '../../src/proxy/upstream/handshake.ts';
import { TraceIds } from '../../src/proxy/handshake/forward-headers.ts';
import { acceptKey, openUpstream, requestHead } from '../../src/proxy/upstream/dial.ts';
import { ManualClock } from '../support/manual-clock.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const HEAD_101 = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(KEY)}\r\nSec-WebSocket-Protocol: chat\r\nX-Dup: a\r\nx-dup: b\r\n\r\n`;

/** Feeds `bytes` in the given pieces; returns the head and everything after it. */
function parseIn(pieces: Buffer[]): { head: UpstreamHead; rest: Buffer } | undefined {
  const p = new ResponseHeadParser();
  for (let i = 0; i < pieces.length; i++) {
    const got = p.push(pieces[i]);
    if (got) return { head: got.head, rest: Buffer.concat([got.rest, ...pieces.slice(i + 1)]) };
  }
  return undefined;
}

test('a 101 head split at every byte boundary (and into single bytes) parses the same, frame bytes kept', () => {
  const frame = Buffer.from([0x81, 0x02, 0x68, 0x69]);
  const all = Buffer.concat([Buffer.from(HEAD_101, 'latin1'), frame]);
  for (let cut = 0; cut <= all.length; cut++) {
    const got = parseIn([all.subarray(0, cut), all.subarray(cut)]);
    assert.ok(got, `cut ${cut}`);
    assert.equal(got.head.statusCode, 101);
    assert.equal(got.head.statusMessage, 'Switching Protocols');
    assert.equal(got.head.headers['sec-websocket-accept'], acceptKey(KEY));
    assert.equal(got.head.headers['sec-websocket-protocol'], 'chat');
    assert.equal(got.head.headers['x-dup'], 'a, b');
    assert.deepEqual(got.head.rawHeaders.slice(-4), ['X-Dup', 'a', 'x-dup', 'b']);
    assert.deepEqual(got.rest, frame, `cut ${cut}`);
  }
  const bytes = [...all].map((b) => Buffer.from([b]));
  const got = parseIn(bytes);
  assert.equal(got?.head.statusCode, 101);
  assert.deepEqual(got?.rest, frame);
});

test('bare LF line endings, a missing reason phrase and 1xx before the answer are accepted', () => {
  const got = parseIn([Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 403\nA:  b \n\nbody')]);
  assert.equal(got?.head.statusCode, 403);
  assert.equal(got?.head.statusMessage, '');
  assert.equal(got?.head.headers.a, 'b');
  assert.equal(got?.rest.toString(), 'body');
});

test('malformed heads throw HeadError', () => {
  const bad = [
    'HTTP/2 101 Switching\r\n\r\n',
    'HTTP/1.1 1O1 Switching\r\n\r\n',
    'ICY 200 OK\r\n\r\n',
    'garbage\r\n\r\n',
    'HTTP/1.1 101 OK\r\nNo colon here\r\n\r\n',
    'HTTP/1.1 101 OK\r\n: empty name\r\n\r\n',
    'HTTP/1.1 101 OK\r\nName : space before colon\r\n\r\n',
    'HTTP/1.1 101 OK\r\nA: b\r\n folded continuation\r\n\r\n',
    'HTTP/1.1 101 OK\r\nA: nul\0inside\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
  ];
  for (const h of bad) assert.throws(() => new ResponseHeadParser().push(Buffer.from(h, 'latin1')), HeadError, JSON.stringify(h));
});

test('a head over the cap throws, whether it comes in one chunk or many; one just under it parses', () => {
  const filler = (n: number) => `HTTP/1.1 101 OK\r\nX: ${'a'.repeat(n)}\r\n\r\n`;
  assert.throws(() => new ResponseHeadParser().push(Buffer.from(filler(HEAD_CAP))), HeadError);
  const p = new ResponseHeadParser();
  assert.throws(() => {
    for (let i = 0; i < 100; i++) p.push(Buffer.from(`X-${i}: ${'b'.repeat(400)}\r\n`));
  }, HeadError);
  assert.equal(new ResponseHeadParser().push(Buffer.from(filler(HEAD_CAP - 100)))?.head.statusCode, 101);
});

function readBody(head: string, pieces: string[], cap = 1 << 20): { body: string; done: boolean } {
  const got = new ResponseHeadParser().push(Buffer.from(head));
  assert.ok(got);
  const r = new BodyReader(got.head, cap);
  let done = r.done || r.push(got.rest);
  for (const p of pieces) if (!done) done = r.push(Buffer.from(p));
  return { body: (done ? r.body : r.end()).toString(), done };
}

test('Content-Length body: complete at the length, bytes after it ignored; truncated by close', () => {
  assert.deepEqual(readBody('HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nhel', ['lo', 'extra']), { body: 'hello', done: true });
  assert.deepEqual(readBody('HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nhel', ['lo']), { body: 'hello', done: false });
  assert.deepEqual(readBody('HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n', []), { body: '', done: true });
  assert.throws(() => readBody('HTTP/1.1 400 Bad\r\nContent-Length: -1\r\n\r\n', []), HeadError);
});

test('chunked body split at every byte boundary decodes the same; extensions and trailers pass', () => {
  const wire = '5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n';
  for (let cut = 0; cut <= wire.length; cut++) {
    const got = readBody('HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n', [wire.slice(0, cut), wire.slice(cut)]);
    assert.deepEqual(got, { body: 'hello, world', done: true }, `cut ${cut}`);
  }
  assert.throws(() => readBody('HTTP/1.1 401 U\r\nTransfer-Encoding: chunked\r\n\r\n', ['zz\r\n']), HeadError);
  assert.throws(() => readBody('HTTP/1.1 401 U\r\nTransfer-Encoding: chunked\r\n\r\n', ['2\r\nabc\r\n']), HeadError);
});

test('close-delimited body and the cap', () => {
  assert.deepEqual(readBody('HTTP/1.1 500 Oops\r\n\r\nab', ['cd']), { body: 'abcd', done: false });
  assert.deepEqual(readBody('HTTP/1.1 500 Oops\r\n\r\nab', ['cdef'], 3), { body: 'abc', done: true });
  // Transfer-Encoding wins over Content-Length; a coding other than chunked reads until close.
  assert.deepEqual(readBody('HTTP/1.1 500 Oops\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nab', ['cd']), { body: 'abcd', done: false });
});

test('requestHead writes one head and refuses what Node would', () => {
  assert.equal(requestHead('/x?y=1', ['Host', 'a', 'X', 'b']), 'GET /x?y=1 HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n');
  assert.throws(() => requestHead('/a b', []), TypeError);
  assert.throws(() => requestHead('/', ['X', 'a\r\nInjected: 1']), TypeError);
  assert.throws(() => requestHead('/', ['Bad Name', 'a']), TypeError);
});

async function server(onConn: (s: Socket, req: string) => void): Promise<{ endpoint: Endpoint; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    let req = '';
    s.on('data', (d) => {
      req += d.toString('latin1');
      if (req.includes('\r\n\r\n')) onConn(s, req);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return {
    endpoint: { host: '127.0.0.1', port, address: `127.0.0.1:${port}`, key: `127.0.0.1:${port}` } as Endpoint,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

// Timeouts run on a manual clock: only the test that moves it sees one.
const base = { path: '/p', headers: ['Host', 'h', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', KEY], key: KEY, connectTimeoutMs: 1000, handshakeTimeoutMs: 300, clock: new ManualClock() };

test('openUpstream: 101 in two writes with a frame behind it → upgraded, frame bytes handed over', async () => {
  let seen = '';
  const srv = await server((s, req) => {
    seen = req;
    s.write(HEAD_101.slice(0, 20));
    setTimeout(() => s.write(Buffer.concat([Buffer.from(HEAD_101.slice(20)), Buffer.from([0x81, 0x00])])), 20);
  });
  try {
    const r = await openUpstream({ ...base, endpoint: srv.endpoint }).result;
    assert.equal(r.kind, 'upgraded');
    if (r.kind !== 'upgraded') return;
    assert.deepEqual([...r.head], [0x81, 0x00]);
    assert.equal(r.res.headers['sec-websocket-protocol'], 'chat');
    assert.match(seen, /^GET \/p HTTP\/1\.1\r\nHost: h\r\n/);
    assert.equal(r.socket.listenerCount('data'), 0);
    r.socket.destroy();
  } finally {
    srv.close();
  }
});

test('openUpstream: wrong accept → failed 502 (connected); 403 chunked → response with body', async () => {
  const srv = await server((s, req) => {
    if (req.startsWith('GET /bad')) s.write('HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: nope\r\n\r\n');
    else s.end('HTTP/1.1 403 Forbidden\r\nX-Why: no\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nno!\r\n0\r\n\r\n');
  });
  try {
    const bad = await openUpstream({ ...base, path: '/bad', endpoint: srv.endpoint }).result;
    assert.equal(bad.kind, 'failed');
    if (bad.kind === 'failed') {
      assert.equal(bad.error.reason, 'upstream_bad_handshake');
      assert.equal(bad.connected, true);
    }
    const res = await openUpstream({ ...base, endpoint: srv.endpoint }).result;
    assert.equal(res.kind, 'response');
    if (res.kind === 'response') {
      assert.equal(res.res.statusCode, 403);
      assert.equal(res.res.headers['x-why'], 'no');
      assert.equal(res.body.toString(), 'no!');
    }
  } finally {
    srv.close();
  }
});

test('openUpstream: refused is retry-able, silent times out with 504 when its clock passes the deadline, abort settles at once', async () => {
  const arrivals: (() => void)[] = [];
  const arrived = () => new Promise<void>((resolve) => arrivals.push(resolve));
  const srv = await server(() => arrivals.shift()?.());
  const port = srv.endpoint.port;
  try {
    const clock = new ManualClock();
    const reached = arrived();
    const silentAttempt = openUpstream({ ...base, clock, endpoint: srv.endpoint });
    let settled = false;
    void silentAttempt.result.then(() => (settled = true));
    // The request reached the upstream, so the connect is done and the handshake deadline armed.
    await reached;
    clock.advance(base.handshakeTimeoutMs - 1);
    await null;
    assert.equal(settled, false, 'a millisecond before the deadline: still waiting');
    clock.advance(1);
    const silent = await silentAttempt.result;
    assert.equal(silent.kind, 'failed');
    if (silent.kind === 'failed') {
      assert.equal(silent.error.httpStatus, 504);
      assert.equal(silent.connected, true);
    }
    const reached2 = arrived();
    const attempt = openUpstream({ ...base, clock, endpoint: srv.endpoint });
    await reached2;
    attempt.abort();
    const aborted = await attempt.result;
    assert.equal(aborted.kind, 'failed');
    assert.equal(clock.pending, 0, 'every timeout cleared');
  } finally {
    await srv.close();
  }
  const refused = await openUpstream({ ...base, endpoint: { ...srv.endpoint, port } as Endpoint }).result;
  assert.equal(refused.kind, 'failed');
  if (refused.kind === 'failed') {
    assert.equal(refused.error.reason, 'upstream_refused');
    assert.equal(refused.connected, false);
  }
});

test('TraceIds: valid, distinct traceparents across pool refills', () => {
  const ids = new TraceIds(48);
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const tp = ids.traceparent();
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    seen.add(tp);
  }
  assert.equal(seen.size, 500);
});
