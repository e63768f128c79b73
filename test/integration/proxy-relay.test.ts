// Through wsgate with real ws peers: echo of every length encoding, fragmentation with control frames between
// fragments, ping/pong, close codes both ways, subprotocols and permessage-deflate end to end.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { assertEchoes, assertFragmentsWithPings, closed, connect, type Echo, type Gate, metricValue, nextMessage, startEcho, startGate, staticRoute } from '../support/harness.ts';

let echo: Echo;
let gate: Gate;

before(async () => {
  echo = await startEcho({ perMessageDeflate: true, handleProtocols: (ps) => (ps.has('chat.v2') ? 'chat.v2' : false) });
  echo.wss.on('connection', (ws, req) => {
    if (req.url === '/close-me') ws.close(4001, 'bye from upstream');
    if (req.url === '/ping-me') ws.ping(Buffer.from('srv'));
    if (req.url === '/headers') ws.send(JSON.stringify(req.headers));
  });
  gate = await startGate([staticRoute('echo', [echo.address], { limits: { maxMessageBytes: 16 * 1024 * 1024 } })]);
});

after(async () => {
  await gate.close();
  await echo.close();
});

for (const size of [0, 125, 126, 65535, 65536, 64 * 1024 + 1, 10 * 1024 * 1024]) {
  test(`echo ${size} bytes, binary and text`, async () => {
    const ws = await connect(gate.url('/'), { perMessageDeflate: false });
    await assertEchoes(ws, size);
    ws.close(1000);
    assert.equal((await closed(ws)).code, 1000);
  });
}

test('fragmented message with pings between fragments arrives whole; pongs come back', async () => {
  const ws = await connect(gate.url('/'), { perMessageDeflate: false });
  await assertFragmentsWithPings(ws);
  ws.close();
  await closed(ws);
});

test('pings from the upstream reach the client and its pong reaches the upstream', async () => {
  const serverPong = new Promise<string>((resolve) => {
    echo.wss.once('connection', (s) => s.once('pong', (d: Buffer) => resolve(d.toString())));
  });
  const ws = new WebSocket(gate.url('/ping-me'), { perMessageDeflate: false });
  const [payload] = (await once(ws, 'ping')) as [Buffer];
  assert.equal(payload.toString(), 'srv');
  assert.equal(await serverPong, 'srv');
  ws.close();
  await closed(ws);
});

test('close code and reason pass through in both directions', async () => {
  const fromUpstream = new WebSocket(gate.url('/close-me'));
  assert.deepEqual(await closed(fromUpstream), { code: 4001, reason: 'bye from upstream' });

  const serverSaw = new Promise<{ code: number; reason: string }>((resolve) =>
    echo.wss.once('connection', (s) => s.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))),
  );
  const ws = await connect(gate.url('/'));
  ws.close(4002, 'bye from client');
  assert.deepEqual(await serverSaw, { code: 4002, reason: 'bye from client' });
  assert.equal((await closed(ws)).code, 4002);
});

test('subprotocol chosen by the upstream and permessage-deflate negotiated end to end', async () => {
  const ws = await connect(gate.url('/'), { perMessageDeflate: true }, ['chat.v1', 'chat.v2']);
  assert.equal(ws.protocol, 'chat.v2');
  assert.match(ws.extensions, /permessage-deflate/);
  const big = 'compressible '.repeat(10000);
  ws.send(big);
  assert.equal((await nextMessage(ws)).data.toString(), big);
  ws.close();
  await closed(ws);
});

test('forwarded headers: X-Forwarded-*, request id kept, traceparent started, hop-by-hop stripped', async () => {
  const ws = await connect(gate.url('/headers'), { headers: { 'X-Request-Id': 'req-123', 'Keep-Alive': 'timeout=5', Host: 'chat.example.com' } });
  const h = JSON.parse((await nextMessage(ws)).data.toString()) as Record<string, string>;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'chat.example.com');
  assert.equal(h['x-request-id'], 'req-123');
  assert.match(h.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(h['keep-alive'], undefined);
  assert.equal(h.upgrade, 'websocket');
  ws.close();
  await closed(ws);
});

test('metrics count connections, messages and closes; gauges return to zero', async () => {
  const before = await metricValue(gate.metrics, 'wsgate_messages_total', { route: 'echo', direction: 'client_to_upstream' });
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect(gate.url('/'))));
  assert.equal(await metricValue(gate.metrics, 'wsgate_connections_active', { route: 'echo' }), 20);
  await Promise.all(clients.map(async (ws) => { ws.send('x'); await nextMessage(ws); ws.close(1000); await closed(ws); }));
  await gate.connections.whenEmpty();
  assert.equal(await metricValue(gate.metrics, 'wsgate_connections_active', { route: 'echo' }), 0);
  assert.equal((await metricValue(gate.metrics, 'wsgate_messages_total', { route: 'echo', direction: 'client_to_upstream' })) - before, 20);
  assert.ok((await metricValue(gate.metrics, 'wsgate_closes_total', { route: 'echo', code: '1000', initiator: 'client' })) >= 20);
  const text = await gate.metrics.registry.metrics();
  assert.match(text, /wsgate_handshake_duration_seconds_count\{namespace="default",route="echo"\} \d+/);
  assert.equal(await new Promise<number>((r) => gate.proxy.server.getConnections((_e, n) => r(n))), 0);
});
