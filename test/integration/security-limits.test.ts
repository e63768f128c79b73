// Limits on the wire: message rate with onExceed Close (1008) and Throttle (paused, nothing lost, order kept)
// on injected clocks; maxMessageBytes (1009); slowloris (408); oversized headers (431); handshakes in flight
// (503). Each with its metric.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { MessageLimits } from '../../src/policy/message-limits.ts';
import { closed, connect, metricValue, nextMessage, rawExchange, routeObject, startEcho, startGate, upgradeRequest, type Echo, type Gate } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';

let echo: Echo;
let gate: Gate;
let silent: net.Server;
const held: net.Socket[] = [];
// The message buckets and the timer that resumes a throttled sender run on this clock.
const clock = new ManualClock(0);
/** 'ended' (route name) whenever the proxy's relay of a connection has ended: its close is counted by then. */
const proxyEvents = new EventEmitter();
/** The next end of a connection of this route. */
const endedOn = (route: string) =>
  new Promise<void>((resolve) => {
    const on = (name: string) => {
      if (name !== route) return;
      proxyEvents.off('ended', on);
      resolve();
    };
    proxyEvents.on('ended', on);
  });

before(async () => {
  echo = await startEcho();
  silent = net.createServer((s) => held.push(s));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const r = (name: string, extra: Record<string, unknown>, addr = echo.address) =>
    routeObject(name, { hostnames: ['example.com'], rules: [{ matches: [{ path: { type: 'Exact', value: `/${name}` } }], backendRefs: [{ endpoints: [addr] }] }], ...extra });
  const limits = new MessageLimits({ clock, get metrics() { return gate?.metrics; } });
  gate = await startGate(
    [
      r('close', { rateLimit: { messagesPerSecond: 5, burst: 5, onExceed: 'Close' } }),
      r('bytes', { rateLimit: { bytesPerSecond: 100, onExceed: 'Close', direction: 'Both' } }),
      r('throttle', { rateLimit: { messagesPerSecond: 10, burst: 10, onExceed: 'Throttle' } }),
      r('big', { limits: { maxMessageBytes: 16 } }),
      r('silent', {}, `127.0.0.1:${(silent.address() as AddressInfo).port}`),
    ],
    { hooks: { established: limits.established, ended: (conn) => proxyEvents.emit('ended', conn.route.name) }, handshakeTimeoutMs: 400, maxHeaderBytes: 4096, maxHandshakesInFlight: 1 },
  );
});

after(async () => {
  for (const s of held) s.destroy();
  await gate.close();
  await echo.close();
  silent.close();
});

const opts = { headers: { Host: 'example.com' } };
const labels = (route: string) => ({ namespace: 'default', route });

test('messagesPerSecond with onExceed Close → 1008 to the sender', async () => {
  const ws = await connect(gate.url('/close'), opts);
  const ended = endedOn('close');
  for (let i = 0; i < 5; i++) {
    const got = nextMessage(ws);
    ws.send(`m${i}`);
    assert.equal((await got).data.toString(), `m${i}`);
  }
  const end = closed(ws);
  ws.send('one too many');
  assert.equal((await end).code, 1008);
  await ended;
  assert.equal(await metricValue(gate.metrics, 'wsgate_closes_total', { ...labels('close'), code: '1008' }), 1);
  assert.equal(await metricValue(gate.metrics, 'wsgate_rejections_total', { ...labels('close'), reason: 'message_rate' }), 1);
});

test('bytesPerSecond: a sender over its byte budget is closed; the budget refills with time', async () => {
  const ws = await connect(gate.url('/bytes'), opts);
  const a = nextMessage(ws);
  ws.send('x'.repeat(60));
  await a;
  clock.advance(1000);
  const b = nextMessage(ws);
  ws.send('y'.repeat(90));
  await b;
  const end = closed(ws);
  ws.send('z'.repeat(90));
  assert.equal((await end).code, 1008);
});

test('bytesPerSecond counts every fragment: a message split into small first fragments is still closed', async () => {
  const ws = await connect(gate.url('/bytes'), opts);
  const outcome = Promise.race([closed(ws).then((c) => `closed ${c.code}`), nextMessage(ws).then(() => 'echoed')]);
  // 10 bytes in the first frame, then 95 in a continuation: 105 > 100 at the continuation's header.
  ws.send('a'.repeat(10), { fin: false });
  ws.send('b'.repeat(95), { fin: false });
  ws.send('c', { fin: true });
  assert.equal(await outcome, 'closed 1008');
});

test('messagesPerSecond counts messages, not frames: one message in 8 fragments passes a budget of 5', async () => {
  const ws = await connect(gate.url('/close'), opts);
  const got = nextMessage(ws);
  for (let i = 0; i < 8; i++) ws.send(`f${i}`, { fin: i === 7 });
  assert.equal((await got).data.toString(), 'f0f1f2f3f4f5f6f7');
  ws.close();
  await closed(ws);
});

test('Throttle: the sender is paused until tokens return; nothing lost, order kept', async () => {
  const ws = await connect(gate.url('/throttle'), opts);
  const got: string[] = [];
  const n = 60;
  let arrived!: () => void;
  const all = new Promise<void>((resolve) => (arrived = resolve));
  ws.on('message', (d) => {
    got.push(d.toString());
    if (got.length === n) arrived();
  });
  for (let i = 0; i < n; i++) ws.send(`msg-${i}`);
  // Drive the clock by hand: each time the proxy schedules a resume, jump to it and run it; stop when every
  // message has come back and no resume is left.
  for (;;) {
    await Promise.race([clock.whenPending(), all]);
    const at = clock.nextAt;
    if (at === undefined) break;
    clock.advance(at - clock.now());
  }
  assert.deepEqual(got, Array.from({ length: n }, (_, i) => `msg-${i}`));
  // Once the debt is repaid the sender reads again: one more message goes through at once.
  const last = nextMessage(ws);
  ws.send('after');
  assert.equal((await last).data.toString(), 'after');
  assert.ok((await metricValue(gate.metrics, 'wsgate_rejections_total', { ...labels('throttle'), reason: 'message_throttled' })) >= 1);
  assert.ok(clock.now() >= ((n - 10) / 10) * 1000 - 100, `the budget held: ${clock.now()} ms of injected time for ${n} messages`);
  assert.equal(ws.readyState, ws.OPEN);
  ws.close();
  await closed(ws);
});

test('maxMessageBytes → 1009 to the sender', async () => {
  const ws = await connect(gate.url('/big'), opts);
  const ended = endedOn('big');
  const end = closed(ws);
  ws.send('x'.repeat(17));
  assert.equal((await end).code, 1009);
  await ended;
  assert.equal(await metricValue(gate.metrics, 'wsgate_closes_total', { ...labels('big'), code: '1009' }), 1);
});

test('slowloris: a handshake not finished in time → 408', async () => {
  const before = await metricValue(gate.metrics, 'wsgate_rejections_total', { reason: 'handshake_timeout' });
  const s = net.connect(gate.port, '127.0.0.1');
  await once(s, 'connect');
  s.write('GET /close HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n');
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => {});
  await once(s, 'close');
  assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1.1 408 /);
  assert.equal((await metricValue(gate.metrics, 'wsgate_rejections_total', { reason: 'handshake_timeout' })) - before, 1);
});

test('oversized headers → 431', async () => {
  const res = await rawExchange(gate.port, upgradeRequest('/close', { 'X-Big': 'a'.repeat(5000) }));
  assert.equal(res.status, 431);
  assert.equal(res.headers['wsgate-reason'], 'headers_too_large');
});

test('handshakes in flight beyond the cap → 503 overloaded', async () => {
  const first = net.connect(gate.port, '127.0.0.1');
  first.on('error', () => {});
  await once(first, 'connect');
  const reached = once(silent, 'connection');
  first.write(upgradeRequest('/silent'));
  await reached;
  const res = await rawExchange(gate.port, upgradeRequest('/close'));
  assert.equal(res.status, 503);
  assert.equal(res.headers['wsgate-reason'], 'overloaded');
  first.destroy();
});
