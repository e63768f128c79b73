// Heartbeats and idle timeouts through a real proxy with real peers (1-second settings): a client whose network
// silently stops is found within interval + timeout and its upstream released; the proxy's pongs stay with the
// proxy while peers' pings pass; a silent upstream gets its client 1014; idle connections close with 1001.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { pino } from 'pino';
import { Heartbeats } from '../../src/proxy/heartbeat.ts';
import { acceptKey } from '../../src/proxy/upstream.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { closed, connect, metricValue, nextMessage, startEcho, startGate, staticRoute, until, type Echo, type Gate } from '../support/harness.ts';

let echo: Echo;
let silent: { port: number; sockets: net.Socket[]; server: net.Server };
let gate: Gate;
let heartbeats: Heartbeats;
const upstreamPongs: string[] = [];
const upstreamPings: string[] = [];
const upstreamCloses: { code: number; at: number }[] = [];

/** An upstream that completes the handshake and then never reads or answers anything. */
async function startSilentUpstream() {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.once('data', (head: Buffer) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(head.toString('latin1'))?.[1] ?? '';
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
      s.pause();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, sockets, server };
}

before(async () => {
  echo = await startEcho();
  echo.wss.on('connection', (ws) => {
    ws.on('pong', (d) => upstreamPongs.push(d.toString('hex')));
    ws.on('ping', (d) => upstreamPings.push(d.toString()));
    ws.on('close', (code) => upstreamCloses.push({ code, at: performance.now() }));
  });
  silent = await startSilentUpstream();
  const wheel = new TimerWheel();
  heartbeats = new Heartbeats({ wheel, log: pino({ level: 'silent' }) });
  const hb = { heartbeat: { intervalSeconds: 1, timeoutSeconds: 1 } };
  gate = await startGate(
    [
      staticRoute('hb', [echo.address], { hostnames: ['hb.test'], ...hb }),
      staticRoute('hb-up', [`127.0.0.1:${silent.port}`], { hostnames: ['up.test'], heartbeat: { intervalSeconds: 1, timeoutSeconds: 1, pingUpstream: true } }),
      staticRoute('idle', [echo.address], { hostnames: ['idle.test'], heartbeat: { intervalSeconds: 0 }, limits: { idleTimeoutSeconds: 1 } }),
    ],
    { wheel, hooks: heartbeats.hooks() },
  );
});

after(async () => {
  await gate.close();
  await echo.close();
  for (const s of silent.sockets) s.destroy();
  silent.server.close();
});

/** A raw client: handshake by hand, then it never answers a ping (no WebSocket library auto-pong). */
async function rawClient(host: string): Promise<{ sock: net.Socket; upgradedAt: number; pings: () => number }> {
  const sock = net.connect(gate.port, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf = Buffer.alloc(0);
  let pings = 0;
  sock.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    // Count proxy pings (0x89) after the 101; only headers are looked at.
    const at = buf.indexOf('\r\n\r\n');
    if (at >= 0) {
      for (let i = at + 4; i < buf.length; ) {
        const len = buf[i + 1] & 0x7f;
        if (buf[i] === 0x89) pings++;
        i += 2 + len;
      }
    }
  });
  await until(() => buf.includes('\r\n\r\n'), '101');
  assert.match(buf.toString('latin1'), /^HTTP\/1.1 101/);
  return { sock, upgradedAt: performance.now(), pings: () => pings };
}

test('a client that answers pings stays; the proxy’s pongs are swallowed, peers’ pings pass both ways', async () => {
  const ws = await connect(gate.url('/'), { headers: { host: 'hb.test' } });
  let pingsFromProxy = 0;
  ws.on('ping', () => pingsFromProxy++);
  await until(() => pingsFromProxy >= 2, 'two proxy pings', 5000);
  assert.equal(ws.readyState, WebSocket.OPEN);
  assert.deepEqual(upstreamPongs, [], 'the client’s answers to proxy pings never reach the upstream');
  ws.ping(Buffer.from('from-client'));
  const pong = new Promise<Buffer>((r) => ws.once('pong', (d: Buffer) => r(d)));
  assert.equal((await pong).toString(), 'from-client');
  assert.ok(upstreamPings.includes('from-client'));
  ws.send('still echoing');
  assert.equal((await nextMessage(ws)).data.toString(), 'still echoing');
  ws.close();
  await closed(ws);
});

test('a client whose network silently stops is found within interval + timeout; its upstream is released', async () => {
  const before = upstreamCloses.length;
  const c = await rawClient('hb.test');
  await until(() => gate.proxy.connections.size === 1, 'relayed');
  // The network stops: nothing is read from now on and no pong will ever be sent.
  c.sock.pause();
  const stoppedAt = performance.now();
  await until(() => upstreamCloses.length > before, 'upstream close', 5000);
  const found = upstreamCloses.at(-1)!;
  assert.equal(found.code, 1001);
  const elapsed = found.at - stoppedAt;
  console.log(`# silent client found after ${Math.round(elapsed)} ms (interval 1000 + timeout 1000)`);
  assert.ok(elapsed <= 2000 + 250, `found after ${elapsed} ms`);
  await until(() => gate.proxy.connections.size === 0, 'connection released');
  assert.ok(await metricValue(gate.metrics, 'wsgate_closes_total', { route: 'hb', code: '1001', initiator: 'proxy' }) >= 1);
  assert.equal(heartbeats.size, 0);
  c.sock.destroy();
});

test('pingUpstream: an upstream that stops answering gets its client a 1014', async () => {
  const ws = await connect(gate.url('/'), { headers: { host: 'up.test' } });
  const t0 = performance.now();
  const { code } = await closed(ws);
  assert.equal(code, 1014);
  const elapsed = performance.now() - t0;
  console.log(`# silent upstream found after ${Math.round(elapsed)} ms`);
  assert.ok(elapsed <= 2000 + 250, `found after ${elapsed} ms`);
  await until(() => gate.proxy.connections.size === 0, 'connection released', 8000);
});

test('idle timeout: no data frames in either direction for 1 s closes with 1001; messages keep it open', async () => {
  const busy = await connect(gate.url('/'), { headers: { host: 'idle.test' } });
  const idle = await connect(gate.url('/'), { headers: { host: 'idle.test' } });
  const t0 = performance.now();
  const idleClosed = closed(idle);
  // The busy one talks every 300 ms until the idle one is closed.
  let talking = true;
  const talk = (async () => {
    while (talking) {
      busy.send('x');
      await nextMessage(busy);
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  const { code } = await idleClosed;
  const elapsed = performance.now() - t0;
  talking = false;
  await talk;
  console.log(`# idle connection closed after ${Math.round(elapsed)} ms (idleTimeoutSeconds 1)`);
  assert.equal(code, 1001);
  assert.ok(elapsed >= 1000 && elapsed <= 1100 + 250, `closed after ${elapsed} ms`);
  assert.equal(busy.readyState, WebSocket.OPEN, 'a connection with traffic stays');
  assert.equal(await metricValue(gate.metrics, 'wsgate_idle_closes_total', { route: 'idle' }), 0, 'no metrics given to this Heartbeats');
  busy.close();
  await closed(busy);
});
