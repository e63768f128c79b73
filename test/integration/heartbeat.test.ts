// Heartbeats and idle timeouts through a real proxy with real peers (1-second settings), on a manual clock: the
// proxy's timer wheel runs on injected time, so every deadline is asserted to the tick, whatever the machine's
// load. A client whose network silently stops is found at interval + timeout and its upstream released; the
// proxy's pongs stay with the proxy while peers' pings pass; a silent upstream gets its client 1014; idle
// connections close with 1001 at the idle timeout.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { pino } from 'pino';
import { Heartbeats } from '../../src/proxy/heartbeat.ts';
import type { ProxyHooks } from '../../src/proxy/hooks.ts';
import { acceptKey } from '../../src/proxy/upstream/dial.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { closed, connect, metricValue, nextMessage, startEcho, startGate, staticRoute, type Echo, type Gate } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';

// A test that misses an event fails after this long instead of hanging; nothing is measured against it.
const bounded = { timeout: 15_000 };

let echo: Echo;
let silent: SilentUpstream;
let gate: Gate;
let heartbeats: Heartbeats;
const clock = new ManualClock(10_000);
const wheel = new TimerWheel({ clock });
/** 'established' and 'ended' for every relayed connection, as the proxy's hooks see them. */
const proxyEvents = new EventEmitter();
/** 'close' (code) for every connection the echo upstream sees end. */
const upstreamEvents = new EventEmitter();
const upstreamPongs: string[] = [];
const upstreamPings: string[] = [];

/** Moves injected time forward one wheel tick at a time, so every tick the wheel would see is processed. */
function advance(ms: number): void {
  while (ms > 0) {
    const step = Math.min(ms, wheel.tickMs);
    clock.advance(step);
    wheel.advance();
    ms -= step;
  }
}

interface Frame {
  readonly opcode: number;
  readonly payload: Buffer;
}

interface SilentUpstream {
  readonly port: number;
  readonly sockets: net.Socket[];
  readonly server: net.Server;
  /** 'frame' (Frame) for every frame the proxy sends it. */
  readonly events: EventEmitter;
}

/** An upstream that completes the handshake, then reads every frame and never answers anything (not even pings). */
async function startSilentUpstream(): Promise<SilentUpstream> {
  const sockets: net.Socket[] = [];
  const events = new EventEmitter();
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    let buf: Buffer | undefined;
    s.on('data', (c: Buffer) => {
      if (buf === undefined) {
        const key = /sec-websocket-key: *(\S+)/i.exec(c.toString('latin1'))?.[1] ?? '';
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
        buf = Buffer.alloc(0);
        return;
      }
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const f = parseFrame(buf);
        if (!f) break;
        buf = buf.subarray(f.size);
        events.emit('frame', f.frame);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, sockets, server, events };
}

/** One whole frame at the start of buf (RFC 6455 §5.2), unmasked; undefined until it has all arrived. */
function parseFrame(buf: Buffer): { frame: Frame; size: number } | undefined {
  if (buf.length < 2) return undefined;
  let len = buf[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const masked = (buf[1] & 0x80) !== 0;
  const key = masked ? buf.subarray(at, at + 4) : undefined;
  if (masked) at += 4;
  if (buf.length < at + len) return undefined;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return { frame: { opcode: buf[0] & 0x0f, payload }, size: at + len };
}

/** Resolves with the first frame the silent upstream receives that matches. */
function silentFrame(pred: (f: Frame) => boolean): Promise<Frame> {
  return new Promise((resolve) => {
    const on = (f: Frame) => {
      if (!pred(f)) return;
      silent.events.off('frame', on);
      resolve(f);
    };
    silent.events.on('frame', on);
  });
}

before(async () => {
  echo = await startEcho();
  echo.wss.on('connection', (ws) => {
    ws.on('pong', (d) => upstreamPongs.push(d.toString('hex')));
    ws.on('ping', (d) => upstreamPings.push(d.toString()));
    ws.on('close', (code) => upstreamEvents.emit('close', code));
  });
  silent = await startSilentUpstream();
  heartbeats = new Heartbeats({ wheel, log: pino({ level: 'silent' }) });
  const hb = heartbeats.hooks();
  const hooks: ProxyHooks = {
    established: (ctx, conn, relay) => {
      hb.established(ctx, conn, relay);
      proxyEvents.emit('established', conn);
    },
    ended: (conn, end) => {
      hb.ended(conn, end);
      proxyEvents.emit('ended', conn);
    },
  };
  gate = await startGate(
    [
      staticRoute('hb', [echo.address], { hostnames: ['hb.test'], heartbeat: { intervalSeconds: 1, timeoutSeconds: 1 } }),
      staticRoute('hb-up', [`127.0.0.1:${silent.port}`], { hostnames: ['up.test'], heartbeat: { intervalSeconds: 1, timeoutSeconds: 1, pingUpstream: true } }),
      staticRoute('idle', [echo.address], { hostnames: ['idle.test'], heartbeat: { intervalSeconds: 0 }, limits: { idleTimeoutSeconds: 1 } }),
    ],
    { clock, wheel, hooks },
  );
});

after(async () => {
  await gate.close();
  await echo.close();
  for (const s of silent.sockets) s.destroy();
  silent.server.close();
});

/** Opens a ws client through the proxy and waits until the proxy has started watching it. */
async function relayed(host: string): Promise<WebSocket> {
  const established = once(proxyEvents, 'established');
  const ws = await connect(gate.url('/'), { headers: { host } });
  await established;
  return ws;
}

/** A raw client: handshake by hand, then it never answers a ping (no WebSocket library auto-pong). */
async function rawClient(host: string): Promise<{ sock: net.Socket; pings: () => number; nextPing: () => Promise<void> }> {
  const established = once(proxyEvents, 'established');
  const sock = net.connect(gate.port, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let head: string | undefined;
  let buf = Buffer.alloc(0);
  let pings = 0;
  const upgraded = new Promise<string>((resolve) => {
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (head === undefined) {
        const at = buf.indexOf('\r\n\r\n');
        if (at < 0) return;
        head = buf.subarray(0, at).toString('latin1');
        buf = buf.subarray(at + 4);
        resolve(head);
      }
      for (;;) {
        const f = parseFrame(buf);
        if (!f) break;
        buf = buf.subarray(f.size);
        if (f.frame.opcode === 0x9) {
          pings++;
          sock.emit('ws-ping');
        }
      }
    });
  });
  assert.match(await upgraded, /^HTTP\/1.1 101/);
  await established;
  return { sock, pings: () => pings, nextPing: () => once(sock, 'ws-ping').then(() => undefined) };
}

test('a client that answers pings stays; the proxy’s pongs are swallowed, peers’ pings pass both ways', bounded, async () => {
  const ws = await relayed('hb.test');
  let pingsFromProxy = 0;
  ws.on('ping', () => pingsFromProxy++);
  // Three intervals: the second and third pings come exactly at the previous ping's pong deadline
  // (interval = timeout), where an unanswered ping would have ended the connection.
  for (let i = 1; i <= 3; i++) {
    const ping = once(ws, 'ping');
    advance(1000);
    await ping;
    // ws writes its pong before it emits 'ping'; an echo sent after it comes back only after the proxy has read
    // that pong (one ordered TCP stream).
    ws.send(`after ping ${i}`);
    assert.equal((await nextMessage(ws)).data.toString(), `after ping ${i}`);
  }
  assert.equal(pingsFromProxy, 3);
  assert.equal(ws.readyState, WebSocket.OPEN);
  assert.equal(heartbeats.size, 1);
  assert.deepEqual(upstreamPongs, [], 'the client’s answers to proxy pings never reach the upstream');
  ws.ping(Buffer.from('from-client'));
  const pong = new Promise<Buffer>((r) => ws.once('pong', (d: Buffer) => r(d)));
  assert.equal((await pong).toString(), 'from-client');
  assert.ok(upstreamPings.includes('from-client'));
  const ended = once(proxyEvents, 'ended');
  ws.close();
  await closed(ws);
  await ended;
  assert.equal(heartbeats.size, 0);
});

test('a client whose network silently stops is found at interval + timeout; its upstream gets 1001 and is released', bounded, async () => {
  const closesBefore = await metricValue(gate.metrics, 'wsgate_closes_total', { route: 'hb', code: '1001', initiator: 'proxy' });
  const upstreamClosed = once(upstreamEvents, 'close');
  const c = await rawClient('hb.test');
  assert.equal(gate.connections.size, 1);
  const ping = c.nextPing();
  advance(1000);
  await ping;
  // The network stops: nothing is read from now on and no pong will ever be sent.
  c.sock.pause();
  // Its pong deadline is interval + timeout after the watch started: one tick before, it is still watched.
  advance(999);
  assert.equal(heartbeats.size, 1, 'still watched before interval + timeout');
  assert.equal(gate.connections.size, 1);
  const ended = once(proxyEvents, 'ended');
  advance(1);
  assert.equal(heartbeats.size, 0, 'found at interval + timeout');
  const [code] = (await upstreamClosed) as [number];
  assert.equal(code, 1001);
  await ended;
  assert.equal(gate.connections.size, 0);
  assert.equal(c.pings(), 1);
  assert.equal(await metricValue(gate.metrics, 'wsgate_closes_total', { route: 'hb', code: '1001', initiator: 'proxy' }), closesBefore + 1);
  c.sock.destroy();
});

test('pingUpstream: an upstream that stops answering gets its client a 1014 at interval + timeout', bounded, async () => {
  const ws = await relayed('up.test');
  const clientPing = once(ws, 'ping');
  const upstreamPing = silentFrame((f) => f.opcode === 0x9);
  advance(1000);
  await Promise.all([clientPing, upstreamPing]);
  // The client answered its ping; a message it sends after that reaches the upstream only after the proxy has
  // read the pong, so only the upstream's silence is left to find.
  const marker = silentFrame((f) => f.opcode === 0x1 && f.payload.toString() === 'after pong');
  ws.send('after pong');
  await marker;
  const clientClosed = closed(ws);
  advance(999);
  assert.equal(heartbeats.size, 1, 'still watched before interval + timeout');
  advance(1);
  assert.equal(heartbeats.size, 0, 'found at interval + timeout');
  const { code } = await clientClosed;
  assert.equal(code, 1014);
  // The silent upstream never answers the close either: the relay's close deadline (closeTimeoutMs 2000, on the
  // same wheel) releases it.
  const ended = once(proxyEvents, 'ended');
  advance(2000);
  await ended;
  assert.equal(gate.connections.size, 0);
});

test('idle timeout: no data frames in either direction for 1 s closes with 1001; messages keep it open', bounded, async () => {
  const busy = await relayed('idle.test');
  const idle = await relayed('idle.test');
  const idleClosed = closed(idle);
  /** One message through the busy connection, echoed back. */
  const talk = async (i: number) => {
    busy.send(`m${i}`);
    assert.equal((await nextMessage(busy)).data.toString(), `m${i}`);
  };
  // Both watches started now. The busy one talks before every tick; the idle one says nothing.
  for (let i = 0; i < 9; i++) {
    await talk(i);
    advance(100);
  }
  await talk(9);
  advance(99);
  assert.equal(heartbeats.size, 2, 'nothing closed before the idle timeout');
  advance(1);
  assert.equal(heartbeats.size, 1, 'the idle one closed exactly at the idle timeout');
  const { code } = await idleClosed;
  assert.equal(code, 1001);
  // The busy one stays as long as it talks, past several idle timeouts.
  for (let i = 10; i < 40; i++) {
    await talk(i);
    advance(100);
  }
  assert.equal(busy.readyState, WebSocket.OPEN, 'a connection with traffic stays');
  assert.equal(heartbeats.size, 1);
  // Then it falls silent: activity is sampled at the next tick, so it closes between idleTimeout and
  // idleTimeout × 1.1 after its last message.
  const busyClosed = closed(busy);
  advance(999);
  assert.equal(heartbeats.size, 1, 'not before the idle timeout');
  advance(101);
  assert.equal(heartbeats.size, 0, 'by idle timeout × 1.1');
  assert.equal((await busyClosed).code, 1001);
  assert.equal(await metricValue(gate.metrics, 'wsgate_idle_closes_total', { route: 'idle' }), 0, 'no metrics given to this Heartbeats');
});
