// A heartbeat timeout on a traced connection: the proxy's wheel runs on a manual clock (1-second heartbeat), the
// upstream completes its handshake and then answers nothing, not even pings. The connection span gets a
// "heartbeat timeout" event naming the silent side, and ends with the 1014 the client was sent.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { TracingConfig } from '../../src/config/tracing.ts';
import { Heartbeats } from '../../src/proxy/heartbeat.ts';
import { acceptKey } from '../../src/proxy/upstream/dial.ts';
import { createTracing, type Tracing } from '../../src/telemetry/tracing/provider.ts';
import { ProxyTracing } from '../../src/telemetry/tracing/proxy-tracing.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { closed, connect, staticRoute, startGate, type Gate } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { testTracingConfig, OtlpReceiver } from '../support/otlp-receiver.ts';

const bounded = { timeout: 20_000 };
const clock = new ManualClock(10_000);
const wheel = new TimerWheel({ clock });
const proxyEvents = new EventEmitter();

let receiver: OtlpReceiver;
let tracing: Tracing;
let gate: Gate;
let silent: net.Server;
const sockets: net.Socket[] = [];
/** 'bytes' (total so far) each time the silent upstream reads something after its handshake. */
const upstreamEvents = new EventEmitter();

function advance(ms: number): void {
  while (ms > 0) {
    const step = Math.min(ms, wheel.tickMs);
    clock.advance(step);
    wheel.advance();
    ms -= step;
  }
}

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  silent = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    let handshook = false;
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      if (!handshook) {
        handshook = true;
        const key = /sec-websocket-key: *(\S+)/i.exec(c.toString('latin1'))?.[1] ?? '';
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
        return;
      }
      bytes += c.length;
      upstreamEvents.emit('bytes', bytes);
    });
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const c: TracingConfig = testTracingConfig(receiver.url);
  tracing = createTracing(c);
  const hb = new Heartbeats({ wheel, log: pino({ level: 'silent' }) }).hooks();
  gate = await startGate(
    [staticRoute('hb-up', [`127.0.0.1:${(silent.address() as AddressInfo).port}`], { heartbeat: { intervalSeconds: 1, timeoutSeconds: 1, pingUpstream: true } })],
    {
      clock,
      wheel,
      tracing: new ProxyTracing(tracing.tracer),
      hooks: {
        established: (ctx, conn, relay) => {
          hb.established(ctx, conn, relay);
          proxyEvents.emit('established');
        },
        ended: (conn, end) => {
          hb.ended(conn, end);
          proxyEvents.emit('ended');
        },
      },
    },
  );
});

after(async () => {
  await gate.close();
  await tracing.shutdown();
  for (const s of sockets) s.destroy();
  silent.close();
  await receiver.stop();
});

/** Resolves when the silent upstream has read at least n bytes since its handshake. */
function upstreamRead(n: number): Promise<void> {
  return new Promise((resolve) => {
    const on = (total: number) => {
      if (total < n) return;
      upstreamEvents.off('bytes', on);
      resolve();
    };
    upstreamEvents.on('bytes', on);
  });
}

test('an upstream that stops answering pings: a "heartbeat timeout" event, then 1014', bounded, async () => {
  const established = once(proxyEvents, 'established');
  const ws = await connect(gate.url('/'));
  await established;
  const clientPing = once(ws, 'ping');
  // The proxy's ping to the upstream: 2 header bytes, a 4-byte mask, 8 bytes of payload (RFC 6455 §5.2).
  const upstreamPing = upstreamRead(14);
  advance(1000);
  await Promise.all([clientPing, upstreamPing]);
  // The client's pong is read before this message (it answered its ping first), so only the upstream is silent
  // when the timeout comes. The upstream declined permessage-deflate: the text goes as is, 2 + 4 + 10 bytes.
  const marker = upstreamRead(14 + 16);
  ws.send('after pong');
  await marker;
  const clientClosed = closed(ws);
  advance(1000);
  assert.equal((await clientClosed).code, 1014);
  // The silent upstream never answers the close: the relay's close deadline (2 s, on the same wheel) ends it.
  const ended = once(proxyEvents, 'ended');
  advance(2000);
  await ended;
  await tracing.forceFlush();
  const conn = receiver.spans.find((s) => s.kind === 1);
  assert.ok(conn);
  assert.deepEqual(
    { code: conn.attributes['wsgate.close.code'], initiator: conn.attributes['wsgate.close.initiator'], reason: conn.attributes['wsgate.close.reason'], status: conn.status.code, events: conn.events },
    {
      code: 1014,
      initiator: 'proxy',
      reason: 'upstream heartbeat timeout',
      status: 2,
      events: [{ name: 'heartbeat timeout', attributes: { 'wsgate.heartbeat.side': 'upstream', 'wsgate.close.code': 1014 } }],
    },
  );
});
