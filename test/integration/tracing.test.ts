// Tracing through a real proxy: the real OTLP/HTTP exporter sends to a receiver on a loopback port (the test
// double decodes what arrives), and each test compares whole span trees — names, kinds, parents, attributes,
// status, events. Spans are exported by an explicit flush (the batch delay is set far beyond any test), so no
// test waits on the exporter's timer.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, afterEach, before, test } from 'node:test';
import type { WebSocket} from 'ws';
import { WebSocketServer } from 'ws';
import type { TracingConfig } from '../../src/config/tracing.ts';
import { MessageLimits } from '../../src/policy/message-limits.ts';
import type { RelayEnd } from '../../src/proxy/relay/relay.ts';
import { createTracing, type Tracing } from '../../src/telemetry/tracing/provider.ts';
import { ProxyTracing } from '../../src/telemetry/tracing/proxy-tracing.ts';
import { closed, connect, nextMessage, rawExchange, refusingPort, staticRoute, startGate, upgradeRequest, type Gate } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { testTracingConfig, OtlpReceiver, type AttrValue, type ReceivedSpan } from '../support/otlp-receiver.ts';

const bounded = { timeout: 20_000 };

/** A backend that records the traceparent of every upgrade it accepts, and can close or die on demand. */
interface Backend {
  readonly wss: WebSocketServer;
  readonly port: number;
  readonly traceparents: string[];
  readonly sockets: WebSocket[];
}

async function startBackend(): Promise<Backend> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const b: Backend = { wss, port: (wss.address() as AddressInfo).port, traceparents: [], sockets: [] };
  wss.on('connection', (ws, req) => {
    b.traceparents.push(String(req.headers.traceparent));
    b.sockets.push(ws);
    ws.on('error', () => {});
    ws.on('message', (d, isBinary) => ws.send(d as Buffer, { binary: isBinary }));
  });
  return b;
}

function config(receiver: OtlpReceiver, over: Partial<TracingConfig> = {}): TracingConfig {
  return testTracingConfig(receiver.url, over);
}

/** The spans of one trace as a comparable tree: parents by name (or "remote" for the client's span), ids gone,
 *  and the values that differ on every run (ephemeral ports, request ids) replaced by what they are. */
function tree(spans: readonly ReceivedSpan[], volatile: Readonly<Record<number, Record<string, AttrValue>>> = masked): unknown[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  return spans
    .map((s) => ({
      name: s.name,
      kind: s.kind,
      parent: s.parentSpanId === '' ? '' : (byId.get(s.parentSpanId)?.name ?? 'remote'),
      status: s.status,
      attributes: Object.fromEntries(Object.entries(s.attributes).map(([k, v]) => [k, k in (volatile[s.kind] ?? {}) ? volatile[s.kind][k] : v]).sort(([a], [b]) => String(a).localeCompare(String(b)))),
      events: s.events,
    }))
    .sort((a, b) => a.kind - b.kind || a.name.localeCompare(b.name));
}

/** By span kind: the server span's peer is the client's ephemeral port; request ids are random UUIDs. */
const masked: Record<number, Record<string, AttrValue>> = {
  1: { 'wsgate.request_id': '<uuid>' },
  2: { 'network.peer.port': '<client port>', 'wsgate.request_id': '<uuid>' },
};

let receiver: OtlpReceiver;
let backend: Backend;
let tracing: Tracing;
let gate: Gate;
/** A loopback port nothing listens on. */
let dead: number;
/** Accepts TCP connections and never answers: an upstream handshake that never completes. */
let mute: net.Server;
/** Answers every upgrade 403. */
let refuser: http.Server;
/** What the relay reported for each connection that ended: the connection span must carry the same. */
const ends: RelayEnd[] = [];

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  backend = await startBackend();
  tracing = createTracing(config(receiver));
  dead = refusingPort;
  // Reads (and drops) what it gets, so it sees the proxy hang up.
  mute = net.createServer((s) => s.on('error', () => {}).resume()).listen(0, '127.0.0.1');
  await once(mute, 'listening');
  refuser = http.createServer((_req, res) => res.writeHead(403, { 'content-type': 'text/plain' }).end('no\n'));
  refuser.on('upgrade', (_req, socket: net.Socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n'));
  refuser.listen(0, '127.0.0.1');
  await once(refuser, 'listening');
  gate = await startGate(routes(), {
    tracing: new ProxyTracing(tracing.tracer),
    // The rate limit's buckets run on a clock that never moves: a second message is always over a burst of one.
    hooks: { established: new MessageLimits({ clock: new ManualClock() }).established, ended: (_conn, end) => ends.push(end) },
  });
});

after(async () => {
  await gate.close();
  await tracing.shutdown();
  backend.wss.close();
  mute.close();
  refuser.close();
  await receiver.stop();
});

afterEach(() => {
  receiver.clear();
  backend.traceparents.length = 0;
  backend.sockets.length = 0;
  ends.length = 0;
});

/** Ends every span so far and delivers it to the receiver. */
async function flush(): Promise<void> {
  await tracing.forceFlush();
}

test('a handshake without traceparent: a new trace, the upstream span is what the backend received, the connection span ends with counts and code', bounded, async () => {
  const ws = await connect(gate.url('/chat'));
  ws.send('hello');
  await nextMessage(ws);
  ws.send(Buffer.alloc(10));
  await nextMessage(ws);
  const done = closed(ws);
  ws.close(1000, 'bye');
  await done;
  await untilEnded();
  await flush();
  assert.equal(receiver.unsupported, 0);
  const spans = receiver.spans;
  assert.equal(new Set(spans.map((s) => s.traceId)).size, 1, 'one trace');
  const upstream = spans.find((s) => s.kind === 3)!;
  // The traceparent the backend received is the upstream span's context, sampled.
  assert.deepEqual(backend.traceparents, [`00-${upstream.traceId}-${upstream.spanId}-01`]);
  assert.deepEqual(tree(spans, masked), [
    {
      name: 'WebSocket default/chat',
      kind: 1,
      parent: 'GET',
      status: { code: 0, message: '' },
      attributes: {
        'client.address': '127.0.0.1',
        // Wire bytes as the relay counted them (permessage-deflate is on, as ws clients negotiate by default).
        'wsgate.bytes.from_client': ends[0].stats.bytesFromClient,
        'wsgate.bytes.from_upstream': ends[0].stats.bytesFromUpstream,
        'wsgate.close.code': 1000,
        'wsgate.close.initiator': 'client',
        'wsgate.close.reason': 'bye',
        'wsgate.endpoint': `127.0.0.1:${backend.port}`,
        'wsgate.messages.from_client': 2,
        'wsgate.messages.from_upstream': 2,
        'wsgate.request_id': '<uuid>',
        'wsgate.route': 'default/chat',
      },
      events: [],
    },
    {
      name: 'GET',
      kind: 2,
      parent: '',
      status: { code: 0, message: '' },
      attributes: {
        'client.address': '127.0.0.1',
        'http.request.method': 'GET',
        'http.response.status_code': 101,
        'network.peer.address': '127.0.0.1',
        'network.peer.port': '<client port>',
        'network.protocol.name': 'http',
        'network.protocol.version': '1.1',
        'server.address': '127.0.0.1',
        'server.port': gate.port,
        'url.path': '/chat',
        'url.scheme': 'http',
        'wsgate.affinity': 'None',
        'wsgate.backend': 'static:default/chat/0/0',
        'wsgate.endpoint': `127.0.0.1:${backend.port}`,
        'wsgate.outcome': 'upgraded',
        'wsgate.request_id': '<uuid>',
        'wsgate.route': 'default/chat',
        'wsgate.route.rule': 0,
      },
      events: [],
    },
    {
      name: 'GET',
      kind: 3,
      parent: 'GET',
      status: { code: 0, message: '' },
      attributes: {
        'http.request.method': 'GET',
        'http.response.status_code': 101,
        'network.peer.address': '127.0.0.1',
        'network.peer.port': backend.port,
        'server.address': '127.0.0.1',
        'server.port': backend.port,
        'url.full': `http://127.0.0.1:${backend.port}/chat`,
        'wsgate.backend': 'static:default/chat/0/0',
        'wsgate.endpoint': `127.0.0.1:${backend.port}`,
        'wsgate.upstream.attempt': 1,
      },
      events: [],
    },
  ]);
  assert.equal(spans[0].resource['service.name'], 'wsgate-test');
  // Times in order: the attempt inside the handshake, the connection from the 101 on. The SDK anchors each span
  // on Date.now() (whole milliseconds) plus the performance clock, so two spans' times agree to within 1 ms.
  const ms = 1_000_000n;
  const server = spans.find((s) => s.kind === 2)!;
  const conn = spans.find((s) => s.kind === 1)!;
  assert.ok(server.startNs <= upstream.startNs + ms && upstream.endNs <= server.endNs + ms, 'the attempt inside the handshake');
  assert.ok(server.endNs <= conn.startNs + ms && conn.startNs <= conn.endNs, 'the connection after the handshake');
});

/** chat: the default route; the others by Host. */
function routes(drainTo = backend.port): ReturnType<typeof staticRoute>[] {
  return [
    staticRoute('chat', [`127.0.0.1:${backend.port}`]),
    staticRoute('dead', [`127.0.0.1:${dead}`], { hostnames: ['dead.test'] }),
    staticRoute('small', [`127.0.0.1:${backend.port}`], { hostnames: ['small.test'], limits: { maxMessageBytes: 16 } }),
    staticRoute('drain', [`127.0.0.1:${drainTo}`], { hostnames: ['drain.test'], drain: { windowSeconds: 0 } }),
    staticRoute('rate', [`127.0.0.1:${backend.port}`], { hostnames: ['rate.test'], rateLimit: { messagesPerSecond: 1, burst: 1 } }),
    staticRoute('mute', [`127.0.0.1:${(mute.address() as AddressInfo).port}`], { hostnames: ['mute.test'] }),
    staticRoute('refuser', [`127.0.0.1:${(refuser.address() as AddressInfo).port}`], { hostnames: ['refuser.test'] }),
  ];
}

/** Opens a connection, says one thing, and returns it with the connection span to come. */
async function opened(host?: string): Promise<WebSocket> {
  const ws = await connect(gate.url('/chat'), host ? { headers: { host } } : {});
  ws.send('x');
  await nextMessage(ws);
  return ws;
}

/** The one connection span (kind internal) after every connection ended and the spans were flushed. */
async function connectionSpan(): Promise<ReceivedSpan> {
  await untilEnded();
  await flush();
  const spans = receiver.spans.filter((s) => s.kind === 1);
  assert.equal(spans.length, 1);
  return spans[0];
}

/** The attributes of a span that say how its connection ended. */
function ending(s: ReceivedSpan): Record<string, unknown> {
  return {
    status: s.status,
    code: s.attributes['wsgate.close.code'],
    reason: s.attributes['wsgate.close.reason'],
    initiator: s.attributes['wsgate.close.initiator'],
    drainCause: s.attributes['wsgate.drain.cause'],
    events: s.events,
  };
}

test('a client traceparent: the handshake is its child, in its trace, and the backend gets the upstream span as parent', bounded, async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const ws = await connect(gate.url('/chat'), { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  ws.close();
  await untilEnded();
  await flush();
  const spans = receiver.spans;
  assert.deepEqual(new Set(spans.map((s) => s.traceId)), new Set([traceId]));
  const server = spans.find((s) => s.kind === 2)!;
  const upstream = spans.find((s) => s.kind === 3)!;
  assert.equal(server.parentSpanId, '00f067aa0ba902b7');
  assert.equal(upstream.parentSpanId, server.spanId);
  assert.deepEqual(backend.traceparents, [`00-${traceId}-${upstream.spanId}-01`]);
  assert.deepEqual(
    tree(spans).map((s) => (s as { name: string; parent: string }).parent),
    ['GET', 'remote', 'GET'],
  );
});

test('a refused handshake: a bad request (4xx, not an error for a server span) and an endpoint that refuses (502, an error)', bounded, async () => {
  const bad = await rawExchange(gate.port, upgradeRequest('/chat', { Host: 'dead.test', 'Sec-WebSocket-Version': '8' }));
  assert.ok(bad.status >= 400 && bad.status < 500, `a client error, got ${bad.status}`);
  await flush();
  // Refused before routing: no route, no upstream attempt; a client's error leaves the status unset.
  assert.deepEqual(tree(receiver.spans), [
    {
      name: 'GET',
      kind: 2,
      parent: '',
      status: { code: 0, message: '' },
      attributes: {
        'error.type': bad.headers['wsgate-reason'],
        'http.request.method': 'GET',
        'http.response.status_code': bad.status,
        'network.peer.address': '127.0.0.1',
        'network.peer.port': '<client port>',
        'network.protocol.name': 'http',
        'network.protocol.version': '1.1',
        'server.address': 'dead.test',
        'url.path': '/chat',
        'url.scheme': 'http',
        'wsgate.outcome': bad.headers['wsgate-reason'],
      },
      events: [],
    },
  ]);
  receiver.clear();
  const refused = await rawExchange(gate.port, upgradeRequest('/chat', { Host: 'dead.test' }));
  assert.equal(refused.status, 502);
  await flush();
  assert.deepEqual(tree(receiver.spans), [
    {
      name: 'GET',
      kind: 2,
      parent: '',
      status: { code: 2, message: refusedMessage(refused.body) },
      attributes: {
        'client.address': '127.0.0.1',
        'error.type': refused.headers['wsgate-reason'],
        'http.request.method': 'GET',
        'http.response.status_code': 502,
        'network.peer.address': '127.0.0.1',
        'network.peer.port': '<client port>',
        'network.protocol.name': 'http',
        'network.protocol.version': '1.1',
        'server.address': 'dead.test',
        'url.path': '/chat',
        'url.scheme': 'http',
        'wsgate.affinity': 'None',
        'wsgate.outcome': refused.headers['wsgate-reason'],
        'wsgate.request_id': '<uuid>',
        'wsgate.route': 'default/dead',
        'wsgate.route.rule': 0,
      },
      events: [],
    },
    {
      name: 'GET',
      kind: 3,
      parent: 'GET',
      status: { code: 2, message: refusedMessage(refused.body) },
      attributes: {
        'error.type': refused.headers['wsgate-reason'],
        'http.request.method': 'GET',
        'network.peer.address': '127.0.0.1',
        'network.peer.port': dead,
        'server.address': '127.0.0.1',
        'server.port': dead,
        'url.full': `http://127.0.0.1:${dead}/chat`,
        'wsgate.backend': 'static:default/dead/0/0',
        'wsgate.endpoint': `127.0.0.1:${dead}`,
        'wsgate.upstream.attempt': 1,
      },
      events: [],
    },
  ]);
});

test('the upstream answers without upgrading (403 relayed), and a client that leaves mid-handshake', bounded, async () => {
  const answered = await rawExchange(gate.port, upgradeRequest('/chat', { Host: 'refuser.test' }));
  assert.equal(answered.status, 403);
  await flush();
  const outcome = (spans: readonly ReceivedSpan[]) =>
    spans.map((s) => [s.kind, s.status.code, s.attributes['http.response.status_code'], s.attributes['error.type'], s.attributes['wsgate.outcome']]).sort();
  // A 4xx from the upstream: an error for the client span, not for the server span (the client's request).
  assert.deepEqual(outcome(receiver.spans), [
    [2, 0, 403, '403', 'upstream_response'],
    [3, 2, 403, '403', undefined],
  ]);
  receiver.clear();
  const sock = net.connect(gate.port, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  const accepted = once(mute, 'connection') as Promise<[net.Socket]>;
  sock.write(upgradeRequest('/chat', { Host: 'mute.test' }));
  const [upstream] = await accepted;
  // The proxy abandons the attempt when its client's socket closes (the handshake span ends first, on the same
  // event). A reset, not a FIN: a half-closed client may still be waiting for its answer.
  const abandoned = once(upstream, 'close');
  sock.resetAndDestroy();
  await abandoned;
  await flush();
  assert.deepEqual(outcome(receiver.spans), [
    [2, 0, undefined, undefined, 'client_gone'],
    [3, 0, undefined, undefined, undefined],
  ]);
});

function refusedMessage(body: string): string {
  return body.trim();
}

test('connection span endings: client close, upstream close, upstream death (1014), drain, limits exceeded', bounded, async (t) => {
  await t.test('client close', async () => {
    const ws = await opened();
    ws.close(4001, 'leaving');
    assert.deepEqual(ending(await connectionSpan()), { status: { code: 0, message: '' }, code: 4001, reason: 'leaving', initiator: 'client', drainCause: undefined, events: [] });
  });
  receiver.clear();
  await t.test('upstream close', async () => {
    const ws = await opened();
    backend.sockets[backend.sockets.length - 1].close(4002, 'done');
    await closed(ws);
    assert.deepEqual(ending(await connectionSpan()), { status: { code: 0, message: '' }, code: 4002, reason: 'done', initiator: 'upstream', drainCause: undefined, events: [] });
  });
  receiver.clear();
  await t.test('upstream death', async () => {
    const ws = await opened();
    const gone = closed(ws);
    backend.sockets[backend.sockets.length - 1].terminate();
    assert.equal((await gone).code, 1014);
    const span = ending(await connectionSpan());
    assert.deepEqual(span, { status: { code: 2, message: span.reason }, code: 1014, reason: span.reason, initiator: 'upstream', drainCause: undefined, events: [] });
  });
  receiver.clear();
  await t.test('drain (the endpoint left the route)', async () => {
    const ws = await opened('drain.test');
    const gone = closed(ws);
    const other = await startBackend();
    gate.publish(routes(other.port));
    assert.equal((await gone).code, 1012);
    assert.deepEqual(ending(await connectionSpan()), {
      status: { code: 0, message: '' },
      code: 1012,
      reason: 'backend restarting',
      initiator: 'proxy',
      drainCause: 'endpoint leaving',
      events: [{ name: 'drain started', attributes: { 'wsgate.drain.cause': 'endpoint leaving' } }],
    });
    gate.publish(routes());
    other.wss.close();
  });
  receiver.clear();
  await t.test('limit exceeded (a message over maxMessageBytes)', async () => {
    const ws = await opened('small.test');
    const gone = closed(ws);
    ws.send('x'.repeat(64));
    assert.equal((await gone).code, 1009);
    const span = ending(await connectionSpan());
    assert.deepEqual(span, {
      status: { code: 0, message: '' },
      code: 1009,
      reason: span.reason,
      initiator: 'proxy',
      drainCause: undefined,
      events: [{ name: 'limit exceeded', attributes: { 'wsgate.close.code': 1009, 'wsgate.close.reason': span.reason } }],
    });
    assert.match(String(span.reason), /^client: /);
  });
  receiver.clear();
  await t.test('limit exceeded (over the message rate)', async () => {
    const ws = await opened('rate.test');
    const gone = closed(ws);
    ws.send('one too many');
    assert.equal((await gone).code, 1008);
    const span = ending(await connectionSpan());
    assert.deepEqual(span, {
      status: { code: 0, message: '' },
      code: 1008,
      reason: span.reason,
      initiator: 'proxy',
      drainCause: undefined,
      events: [{ name: 'limit exceeded', attributes: { 'wsgate.close.code': 1008, 'wsgate.close.reason': span.reason } }],
    });
  });
});

/** Waits for the proxy to finish every connection (its span ends then). */
async function untilEnded(): Promise<void> {
  if (gate.connections.size > 0) await gate.connections.whenEmpty();
}
