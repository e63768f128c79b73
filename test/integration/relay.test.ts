// The relay between real ws peers, through test/support/raw-proxy.ts (no routing, no handshake checks):
// echo of every length encoding, fragments with control frames between them, ping/pong, close codes both
// ways, permessage-deflate end to end, the size limit, proxy pings and closes, upstream and client loss.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { CloseCode } from '../../src/errors.ts';
import type { Relay } from '../../src/proxy/relay/relay.ts';
import { Verdict } from '../../src/proxy/relay/relay.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { within } from '../support/fake-apiserver/index.ts';
import { assertEchoes, assertFragmentsWithPings, closed, nextMessage } from '../support/harness.ts';
import { startRawProxy, type RawProxy } from '../support/raw-proxy.ts';

let wss: WebSocketServer;
let proxy: RawProxy;
let limited: RawProxy;
/** Server-side sockets by the path the client asked for. */
const serverSide = new Map<string, WebSocket>();
const serverSideWaiters = new Map<string, (ws: WebSocket) => void>();

function upstreamFor(path: string): Promise<WebSocket> {
  const ws = serverSide.get(path);
  if (ws) return Promise.resolve(ws);
  return new Promise((resolve) => serverSideWaiters.set(path, resolve));
}

before(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: true, maxPayload: 64 * 1024 * 1024 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    const path = req.url ?? '/';
    ws.on('error', () => {});
    if (path.startsWith('/echo')) ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    if (path === '/close-me') ws.close(4001, 'bye from upstream');
    if (path === '/ping-me') ws.ping(Buffer.from('srv'));
    serverSide.set(path, ws);
    serverSideWaiters.get(path)?.(ws);
    serverSideWaiters.delete(path);
  });
  const port = (wss.address() as AddressInfo).port;
  proxy = await startRawProxy({ upstreamPort: port, maxMessageBytes: 16 * 1024 * 1024 });
  limited = await startRawProxy({ upstreamPort: port, maxMessageBytes: 1000 });
});

after(async () => {
  await proxy.close();
  await limited.close();
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
});

async function open(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, ...opts });
  ws.on('error', () => {});
  await once(ws, 'open');
  return ws;
}


for (const size of [0, 125, 126, 65535, 65536, 10 * 1024 * 1024]) {
  test(`echo ${size} bytes, binary and text`, async () => {
    const ws = await open(`${proxy.url}/echo`);
    await assertEchoes(ws, size);
    ws.close(1000, 'done');
    assert.deepEqual(await closed(ws), { code: 1000, reason: 'done' });
    const e = await proxy.endOf('/echo');
    assert.equal(e.code, 1000);
    assert.equal(e.initiator, 'client');
    assert.equal(e.stats.messagesFromClient, 2);
    assert.equal(e.stats.messagesFromUpstream, 2);
  });
}

test('fragmented message with pings between fragments arrives whole; pongs come back', async () => {
  const ws = await open(`${proxy.url}/echo`);
  await assertFragmentsWithPings(ws);
  ws.close();
  await closed(ws);
});

test('pings from the upstream reach the client and its pong reaches the upstream', async () => {
  const ws = new WebSocket(`${proxy.url}/ping-me`, { perMessageDeflate: false });
  const [payload] = (await once(ws, 'ping')) as [Buffer];
  assert.equal(payload.toString(), 'srv');
  const up = await upstreamFor('/ping-me');
  const [pong] = (await once(up, 'pong')) as [Buffer];
  assert.equal(pong.toString(), 'srv');
  ws.close();
  await closed(ws);
});

test('close code and reason pass from the upstream to the client', async () => {
  const ws = new WebSocket(`${proxy.url}/close-me`, { perMessageDeflate: false });
  assert.deepEqual(await closed(ws), { code: 4001, reason: 'bye from upstream' });
  const e = await proxy.endOf('/close-me');
  assert.deepEqual([e.code, e.reason, e.initiator], [4001, 'bye from upstream', 'upstream']);
});

test('close code and reason pass from the client to the upstream', async () => {
  const ws = await open(`${proxy.url}/from-client`);
  const up = await upstreamFor('/from-client');
  const upClosed = once(up, 'close');
  const clientClosed = closed(ws);
  ws.close(4002, 'bye from client');
  const [code, reason] = (await upClosed) as [number, Buffer];
  assert.deepEqual([code, reason.toString()], [4002, 'bye from client']);
  assert.equal((await clientClosed).code, 4002);
});

test('permessage-deflate is negotiated end to end and RSV1 frames pass', async () => {
  const ws = await open(`${proxy.url}/echo-deflate`, { perMessageDeflate: { threshold: 0 } });
  assert.match(ws.extensions, /permessage-deflate/);
  const text = 'compress me '.repeat(1000);
  ws.send(text);
  assert.equal((await nextMessage(ws)).data.toString(), text);
  const before = proxy.counters.bytesFromClient;
  ws.send(text);
  await nextMessage(ws);
  // Compressed on the wire through the relay: far fewer bytes than the text.
  assert.ok(proxy.counters.bytesFromClient - before < text.length / 10);
  ws.close();
  await closed(ws);
});

test('a message over maxMessageBytes gets 1009 to the sender and 1001 to the other side', async () => {
  const ws = await open(`${limited.url}/limit`);
  const up = await upstreamFor('/limit');
  const upClosed = once(up, 'close');
  ws.send(Buffer.alloc(600), { fin: false });
  ws.send(Buffer.alloc(600), { fin: true });
  assert.equal((await closed(ws)).code, CloseCode.MessageTooBig);
  assert.equal(((await upClosed) as [number])[0], CloseCode.GoingAway);
  const e = await limited.endOf('/limit');
  assert.equal(e.code, CloseCode.MessageTooBig);
  assert.equal(e.initiator, 'proxy');
});

test('a message over the limit from the upstream: 1009 to it, 1001 to the client', async () => {
  const ws = await open(`${limited.url}/limit-up`);
  const up = await upstreamFor('/limit-up');
  const upClosed = once(up, 'close');
  up.send(Buffer.alloc(5000));
  assert.equal((await closed(ws)).code, CloseCode.GoingAway);
  assert.equal(((await upClosed) as [number])[0], CloseCode.MessageTooBig);
});

test('upstream destroyed without a close frame: the client gets 1014', async () => {
  const ws = await open(`${proxy.url}/vanish-up`);
  const up = await upstreamFor('/vanish-up');
  up.terminate();
  assert.equal((await closed(ws)).code, CloseCode.UpstreamFailed);
  const e = await proxy.endOf('/vanish-up');
  assert.deepEqual([e.code, e.initiator], [CloseCode.UpstreamFailed, 'upstream']);
});

test('client destroyed: the upstream gets 1001 and is released', async () => {
  const ws = await open(`${proxy.url}/vanish-client`);
  const up = await upstreamFor('/vanish-client');
  const upClosed = once(up, 'close');
  ws.terminate();
  assert.equal(((await upClosed) as [number])[0], CloseCode.GoingAway);
  const e = await proxy.endOf('/vanish-client');
  assert.deepEqual([e.code, e.initiator], [CloseCode.Abnormal, 'client']);
});

test('proxy close(): both sides get the code and reason, then TCP ends', async () => {
  let relay: Relay | undefined;
  const p = await startRawProxy({ upstreamPort: (wss.address() as AddressInfo).port, onRelay: (r) => (relay = r) });
  try {
    const ws = await open(`${p.url}/proxy-close`);
    const up = await upstreamFor('/proxy-close');
    const upClosed = once(up, 'close');
    relay!.close(CloseCode.ServiceRestart, 'draining');
    assert.deepEqual(await closed(ws), { code: 1012, reason: 'draining' });
    const [code, reason] = (await upClosed) as [number, Buffer];
    assert.deepEqual([code, reason.toString()], [1012, 'draining']);
    const e = await p.endOf('/proxy-close');
    assert.deepEqual([e.code, e.initiator], [1012, 'proxy']);
    assert.equal(p.openSockets(), 0);
  } finally {
    await p.close();
  }
});

test('proxy pings: the answering pong is swallowed and counted; peer pings still pass', async () => {
  let relay: Relay | undefined;
  const p = await startRawProxy({ upstreamPort: (wss.address() as AddressInfo).port, onRelay: (r) => (relay = r) });
  try {
    const ws = await open(`${p.url}/echo-hb`);
    const up = await upstreamFor('/echo-hb');
    const upPongs: Buffer[] = [];
    up.on('pong', (d: Buffer) => upPongs.push(d));
    assert.equal(relay!.ping('client'), true);
    assert.equal(relay!.heartbeat('client').sent, 1);
    await once(ws, 'ping');
    // The echo proves the pong (sent before it) went through the relay.
    ws.send('after');
    await nextMessage(ws);
    assert.equal(relay!.heartbeat('client').answered, 1);
    assert.equal(upPongs.length, 0);
    // Pongs that are not answers to the proxy still pass.
    up.ping(Buffer.from('12345678'));
    const [pong] = (await once(up, 'pong')) as [Buffer];
    assert.equal(pong.toString(), '12345678');
    assert.equal(relay!.ping('upstream'), true);
    ws.send('again');
    await nextMessage(ws);
    assert.equal(relay!.heartbeat('upstream').answered, 1);
    ws.close();
    await closed(ws);
  } finally {
    await p.close();
  }
});

test('a message check can close with 1008', async () => {
  const p = await startRawProxy({
    upstreamPort: (wss.address() as AddressInfo).port,
    onRelay: (r) => {
      let n = 0;
      r.setMessageCheck('client', () => (++n > 2 ? Verdict.Close : Verdict.Allow));
    },
  });
  try {
    const ws = await open(`${p.url}/echo-rate`);
    ws.send('1');
    await nextMessage(ws);
    ws.send('2');
    await nextMessage(ws);
    ws.send('3');
    assert.equal((await closed(ws)).code, CloseCode.PolicyViolation);
  } finally {
    await p.close();
  }
});

test('a protocol error from a raw client: 1002 to it, 1001 to the upstream', async () => {
  const ws = await rawUpgrade(proxy.port, '/raw-bad');
  const up = await upstreamFor('/raw-bad');
  const upClosed = once(up, 'close');
  const got: Buffer[] = [];
  ws.on('data', (d: Buffer) => got.push(d));
  ws.resume();
  // An unmasked text frame from a client.
  ws.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
  await once(ws, 'end');
  const frame = Buffer.concat(got);
  assert.equal(frame[0], 0x88);
  assert.equal(frame.readUInt16BE(2), CloseCode.ProtocolError);
  assert.equal(((await upClosed) as [number])[0], CloseCode.GoingAway);
  const e = await proxy.endOf('/raw-bad');
  assert.equal(e.code, CloseCode.ProtocolError);
  assert.match(e.reason, /unmasked/);
  ws.destroy();
});

for (const from of ['client', 'upstream'] as const) {
  test(`backpressure: a stalled ${from === 'client' ? 'upstream' : 'client'} pauses reading from the ${from}, which resumes on drain`, async () => {
    const path = `/bp-${from}`;
    const ws = await open(`${proxy.url}${path}`);
    const up = await upstreamFor(path);
    const [sender, receiver] = from === 'client' ? [ws, up] : [up, ws];
    const receiverSocket = (receiver as unknown as { _socket: net.Socket })._socket;
    receiverSocket.pause();
    const paused = once(proxy.socketsOf(path)[from], 'pause');
    const chunk = Buffer.alloc(1024 * 1024, 1);
    const count = 32;
    for (let i = 0; i < count; i++) sender.send(chunk);
    // Bounded waits: a proxy that never pauses or never resumes fails here with a message instead of hanging
    // (the bound only decides when to give up; nothing is measured against it).
    await within(paused, `the proxy pausing the ${from} while its receiver is stalled`, 20_000);
    const sizes: number[] = [];
    const all = new Promise<void>((resolve) => receiver.on('message', (d: Buffer) => sizes.push(d.length) === count && resolve()));
    const resumed = once(proxy.socketsOf(path)[from], 'resume');
    receiverSocket.resume();
    await within(resumed, `the proxy resuming the ${from} once its receiver drains`, 20_000);
    await within(all, `all ${count} messages through after the resume`, 20_000);
    assert.deepEqual(sizes, Array.from({ length: count }, () => chunk.length), 'every message arrived whole, none lost');
    ws.close();
    await closed(ws);
  });
}

test('upstream FIN without a close frame: the client gets 1014', async () => {
  const ws = await open(`${proxy.url}/fin-up`);
  const up = await upstreamFor('/fin-up');
  (up as unknown as { _socket: net.Socket })._socket.end();
  assert.equal((await closed(ws)).code, CloseCode.UpstreamFailed);
  assert.equal((await proxy.endOf('/fin-up')).code, CloseCode.UpstreamFailed);
});

test('upstream gone in the middle of a frame: the client socket is destroyed (no close frame can follow)', async () => {
  const raw = await rawUpstream((s) => {
    // A 1000-byte binary frame of which only 10 bytes come.
    s.write(Buffer.concat([Buffer.from([0x82, 0x7e, 0x03, 0xe8]), Buffer.alloc(10)]), () => s.destroy());
  });
  const p = await startRawProxy({ upstreamPort: raw.port });
  try {
    const ws = new WebSocket(`${p.url}/mid-frame`, { perMessageDeflate: false });
    ws.on('error', () => {});
    assert.equal((await closed(ws)).code, CloseCode.Abnormal);
    const e = await p.endOf('/mid-frame');
    assert.deepEqual([e.code, e.initiator], [CloseCode.UpstreamFailed, 'upstream']);
    assert.equal(p.openSockets(), 0);
  } finally {
    await p.close();
    await raw.close();
  }
});

test('an upstream sending garbage gets 1002 and the client 1001', async () => {
  let upstreamGot: Buffer = Buffer.alloc(0);
  const raw = await rawUpstream((s) => {
    s.on('data', (d: Buffer) => (upstreamGot = Buffer.concat([upstreamGot, d])));
    s.write(Buffer.from([0x83, 0x00])); // opcode 3
  });
  const p = await startRawProxy({ upstreamPort: raw.port });
  try {
    const ws = new WebSocket(`${p.url}/garbage`, { perMessageDeflate: false });
    ws.on('error', () => {});
    assert.equal((await closed(ws)).code, CloseCode.GoingAway);
    const e = await p.endOf('/garbage');
    assert.equal(e.code, CloseCode.ProtocolError);
    assert.match(e.reason, /upstream: unknown opcode 3/);
    // The close to the upstream is masked (the proxy is its client): unmask and read the code.
    assert.equal(upstreamGot[0], 0x88);
    assert.equal(upstreamGot[1] & 0x80, 0x80);
    const code = ((upstreamGot[6] ^ upstreamGot[2]) << 8) | (upstreamGot[7] ^ upstreamGot[3]);
    assert.equal(code, CloseCode.ProtocolError);
  } finally {
    await p.close();
    await raw.close();
  }
});

test('close timeout: an upstream that never answers the close is destroyed when the wheel says so', async () => {
  const raw = await rawUpstream(() => {});
  const { p, relay, expire, wheelIdle } = await deadlineProxy(raw.port);
  try {
    const ws = await open(`${p.url}/silent`);
    relay().close(CloseCode.ServiceRestart, 'draining');
    assert.equal((await closed(ws)).code, CloseCode.ServiceRestart);
    assert.equal(relay().ended, false);
    const ended = p.endOf('/silent');
    expire();
    const e = await ended;
    assert.deepEqual([e.code, e.initiator], [CloseCode.ServiceRestart, 'proxy']);
    assert.equal(p.openSockets(), 0);
    assert.equal(wheelIdle(), true);
  } finally {
    await p.close();
    await raw.close();
  }
});

test('after a clean close the proxy leaves ending the upstream TCP to the server (RFC 6455 §7.1.1)', async () => {
  // The proxy is the upstream's WebSocket client: the server closes first and keeps the TIME_WAIT, not the
  // proxy's ephemeral ports.
  let upstream: net.Socket | undefined;
  let finFromProxy = false;
  let answered!: () => void;
  const closeAnswered = new Promise<void>((resolve) => (answered = resolve));
  const raw = await rawUpstream((s) => {
    upstream = s;
    s.on('end', () => (finFromProxy = true));
    s.on('data', (d: Buffer) => {
      if ((d[0] & 0x0f) !== 0x08) return;
      s.write(Buffer.from([0x88, 0x02, 0x03, 0xe8])); // close 1000, and the TCP stays open
      answered();
    });
  });
  const p = await startRawProxy({ upstreamPort: raw.port });
  try {
    const ws = await open(`${p.url}/server-closes-first`);
    const clientClosed = closed(ws);
    ws.close(1000);
    await closeAnswered;
    assert.equal((await clientClosed).code, 1000);
    assert.equal(finFromProxy, false, 'the proxy ended the upstream TCP before the server did');
    const proxyFin = once(upstream!, 'end');
    upstream!.end();
    await proxyFin;
    const e = await p.endOf('/server-closes-first');
    assert.deepEqual([e.code, e.initiator], [1000, 'client']);
    assert.equal(p.openSockets(), 0);
  } finally {
    await p.close();
    await raw.close();
  }
});

test('an upstream that answers the close but keeps its TCP open is destroyed at the close deadline', async () => {
  let finFromProxy = false;
  const raw = await rawUpstream((s) => {
    s.on('end', () => (finFromProxy = true));
    s.on('data', (d: Buffer) => {
      if ((d[0] & 0x0f) === 0x08) s.write(Buffer.from([0x88, 0x02, 0x03, 0xe8])); // close 1000, never a FIN
    });
  });
  const { p, relay, expire, wheelIdle } = await deadlineProxy(raw.port);
  try {
    const ws = await open(`${p.url}/no-fin`);
    const clientClosed = closed(ws);
    ws.close(1000);
    assert.equal((await clientClosed).code, 1000);
    assert.equal(relay().ended, false);
    assert.equal(finFromProxy, false);
    const ended = p.endOf('/no-fin');
    expire();
    const e = await ended;
    assert.deepEqual([e.code, e.initiator], [1000, 'client']);
    assert.equal(p.openSockets(), 0);
    assert.equal(wheelIdle(), true);
  } finally {
    await p.close();
    await raw.close();
  }
});

test('after many connections no socket is left open and the counters add up', async () => {
  const before = { ...proxy.counters };
  const clients = await Promise.all(Array.from({ length: 50 }, () => open(`${proxy.url}/echo-many`)));
  await Promise.all(
    clients.map(async (ws, i) => {
      ws.send(`m${i}`);
      await nextMessage(ws);
    }),
  );
  await Promise.all(clients.map((ws, i) => (i % 2 ? (ws.close(), closed(ws)) : (ws.terminate(), closed(ws)))));
  await proxy.allEnded();
  assert.equal(proxy.counters.messagesFromClient - before.messagesFromClient, 50);
  assert.equal(proxy.counters.messagesFromUpstream - before.messagesFromUpstream, 50);
  // onEnd comes after both sockets' 'close', which the raw proxy saw first (its listener is older).
  assert.equal(proxy.openSockets(), 0);
});

/** A raw proxy whose close deadline (5 s) runs on a wheel with a fake clock: expire() moves the clock past it and
 *  ticks; wheelIdle() says the wheel stopped its interval (nothing left on it). */
async function deadlineProxy(upstreamPort: number) {
  const clock = new ManualClock(0);
  let relay: Relay | undefined;
  const p = await startRawProxy({ upstreamPort, closeTimeoutMs: 5000, wheel: new TimerWheel({ clock }), onRelay: (r) => (relay = r) });
  return {
    p,
    relay: () => relay!,
    expire: () => clock.advance(5000),
    // The wheel's interval is the only thing it sets on the clock.
    wheelIdle: () => clock.pending === 0,
  };
}

/** A raw upstream: answers the upgrade with a valid 101, then runs a script on the socket. */
async function rawUpstream(script: (s: net.Socket) => void): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let acc = '';
    const onData = (d: Buffer) => {
      acc += d.toString('latin1');
      if (!acc.includes('\r\n\r\n')) return;
      s.off('data', onData);
      const key = /sec-websocket-key: *(\S+)/i.exec(acc)?.[1] ?? '';
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      script(s);
    };
    s.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A raw TCP client that has completed the upgrade; returns its socket with the 101 consumed. */
async function rawUpgrade(port: number, path: string): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let acc = Buffer.alloc(0);
  while (acc.indexOf('\r\n\r\n') < 0) {
    const [c] = (await once(s, 'data')) as [Buffer];
    acc = Buffer.concat([acc, c]);
  }
  s.pause();
  const rest = acc.subarray(acc.indexOf('\r\n\r\n') + 4);
  if (rest.length) s.unshift(rest);
  return s;
}
