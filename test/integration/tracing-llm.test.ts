// LLM request spans through the real proxy and LLM gateway: a real `ws` client with default options speaks
// wsgate.llm.v1, provider doubles (test/support/llm-provider-double.ts) stream on loopback, the real OTLP/HTTP
// exporter sends to the receiver double, and each test compares the whole span tree of its trace. The gateway
// runs on the manual clock, moved from inside the doubles at known points, so time to first token is exact.
// Each test closes its socket and waits for the socket's span (made at the close) before it reads the trace.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import { LlmGateway } from '../../src/llm/gateway.ts';
import { LLM_SUBPROTOCOL } from '../../src/llm/protocol.ts';
import type { LlmSessionObserver } from '../../src/llm/observer.ts';
import { LlmTracing } from '../../src/telemetry/tracing/llm-tracing.ts';
import { createTracing, type Tracing } from '../../src/telemetry/tracing/provider.ts';
import { ProxyTracing } from '../../src/telemetry/tracing/proxy-tracing.ts';
import { routeObject, silentLog, startGate, type Gate } from '../support/harness.ts';
import { startProviderDouble, type Behaviour, type ProviderDouble } from '../support/llm-provider-double.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { testTracingConfig, OtlpReceiver, type AttrValue, type ReceivedSpan } from '../support/otlp-receiver.ts';

const bounded = { timeout: 20_000 };
const PROMPT = 'a prompt that must never reach a span';

let receiver: OtlpReceiver;
let tracing: Tracing;
let gate: Gate;
let gateway: LlmGateway;
let clock: ManualClock;
/** openai-chat, serves m-a; anthropic-messages, serves m-b. Each test sets what they do. */
let a: ProviderDouble;
let b: ProviderDouble;
let behaveA: () => Behaviour;
let behaveB: () => Behaviour;
/** Called after the tracer has made a traced socket's span. */
let socketSpanMade: (() => void) | undefined;

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  tracing = createTracing(testTracingConfig(receiver.url));
  clock = new ManualClock();
  a = await startProviderDouble('openai-chat', () => behaveA());
  b = await startProviderDouble('anthropic-messages', () => behaveB());
  const proxyTracing = new ProxyTracing(tracing.tracer);
  const llmTracing = new LlmTracing(tracing.tracer, proxyTracing);
  const observe = (ctx: Parameters<LlmTracing['observe']>[0]): LlmSessionObserver | undefined => {
    const o = llmTracing.observe(ctx);
    return o && { ...o, closed: (e) => (o.closed(e), socketSpanMade?.()) };
  };
  gateway = new LlmGateway({ clock, registry: new Registry(), log: silentLog, closeTimeoutMs: 2000, observe });
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes: [
      routeObject('chat', {
        rules: [
          {
            llm: {
              providers: [
                { name: 'primary', baseUrl: a.url, format: 'openai-chat', credentials: { file: 'k' }, models: ['m-a'] },
                { name: 'backup', baseUrl: b.url, format: 'anthropic-messages', credentials: { file: 'k' }, models: ['m-b'] },
              ],
              aliases: { fast: ['m-a', 'm-b'] },
            },
          },
        ],
      }),
    ],
    services: [],
    endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'file:k' }, data: { content: Buffer.from('key').toString('base64') } }],
  });
  gate = await startGate([], { tracing: proxyTracing, hooks: { llm: gateway.handle } });
  gate.holder.publish(built.content);
});

after(async () => {
  await gateway.close();
  await gate.close();
  await tracing.shutdown();
  await a.close();
  await b.close();
  await receiver.stop();
});

beforeEach(() => receiver.clear());

interface Msg {
  type: string;
  id?: string;
  code?: string;
  text?: string;
}

interface Socket {
  ws: WebSocket;
  until: (pred: (m: Msg) => boolean) => Promise<Msg>;
  /** Closes with 1000 and resolves once wsgate has made the socket's span. */
  close: () => Promise<void>;
}

async function open(headers: Record<string, string> = {}): Promise<Socket> {
  const ws = new WebSocket(gate.url('/'), LLM_SUBPROTOCOL, { headers });
  const got: Msg[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (d) => {
    got.push(JSON.parse(String(d)) as Msg);
    wake?.();
  });
  await once(ws, 'open');
  const until = async (pred: (m: Msg) => boolean): Promise<Msg> => {
    for (;;) {
      const m = got.find(pred);
      if (m) return m;
      await new Promise<void>((r) => (wake = r));
    }
  };
  const close = async (): Promise<void> => {
    const made = new Promise<void>((r) => (socketSpanMade = r));
    ws.close(1000, 'bye');
    await made;
  };
  return { ws, until, close };
}

/** The trace's spans once `n` of them have arrived, flushed explicitly. */
async function spansOf(n: number): Promise<ReceivedSpan[]> {
  await tracing.forceFlush();
  await receiver.received(n);
  assert.equal(new Set(receiver.spans.map((s) => s.traceId)).size, 1, 'one trace');
  return receiver.spans;
}

/** Values that differ on every run: ephemeral ports, the request id. */
const volatile = new Set(['network.peer.port', 'server.port', 'wsgate.request_id']);

function tree(spans: readonly ReceivedSpan[]): unknown[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  return spans
    .map((s) => ({
      name: s.name,
      kind: s.kind,
      parent: s.parentSpanId === '' ? '' : (byId.get(s.parentSpanId)?.name ?? 'remote'),
      status: s.status,
      attributes: Object.fromEntries(
        Object.entries(s.attributes)
          .map(([k, v]): [string, AttrValue] => [k, volatile.has(k) ? '<varies>' : v])
          .sort(([x], [y]) => x.localeCompare(y)),
      ),
      events: s.events,
    }))
    .sort((x, y) => x.kind - y.kind || String(x.attributes['wsgate.llm.attempt'] ?? '').localeCompare(String(y.attributes['wsgate.llm.attempt'] ?? '')) || x.name.localeCompare(y.name));
}

const handshake = (parent: string) => ({
  name: 'GET',
  kind: 2,
  parent,
  status: { code: 0, message: '' },
  attributes: {
    'http.request.method': 'GET',
    'http.response.status_code': 101,
    'network.peer.address': '127.0.0.1',
    'network.peer.port': '<varies>',
    'network.protocol.name': 'http',
    'network.protocol.version': '1.1',
    'server.address': '127.0.0.1',
    'server.port': '<varies>',
    'url.path': '/',
    'url.scheme': 'http',
    'client.address': '127.0.0.1',
    'wsgate.affinity': 'None',
    'wsgate.outcome': 'llm',
    'wsgate.request_id': '<varies>',
    'wsgate.route': 'default/chat',
    'wsgate.route.rule': 0,
  },
  events: [],
});

/** The socket's span: from the 101 to the close, made at the close, a child of the handshake. */
const socket = (over: Record<string, AttrValue>) => ({
  name: 'WebSocket default/chat',
  kind: 1,
  parent: 'GET',
  status: { code: 0, message: '' },
  attributes: {
    'client.address': '127.0.0.1',
    'wsgate.close.code': 1000,
    'wsgate.close.initiator': 'client',
    'wsgate.close.reason': 'bye',
    'wsgate.route': 'default/chat',
    ...over,
  },
  events: [],
});

const attempt = (n: number, model: string, provider: string, genAiProvider: string, over: Record<string, AttrValue>, status = { code: 0, message: '' }) => ({
  name: `chat ${model}`,
  kind: 3,
  parent: 'chat fast',
  status,
  attributes: {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': genAiProvider,
    'gen_ai.request.model': model,
    'server.address': '127.0.0.1',
    'server.port': '<varies>',
    'wsgate.llm.attempt': n,
    'wsgate.llm.provider': provider,
    ...over,
  },
  events: [],
});

function sorted<T extends { attributes: Record<string, AttrValue> }>(x: T): T {
  return { ...x, attributes: Object.fromEntries(Object.entries(x.attributes).sort(([p], [q]) => p.localeCompare(q))) };
}

test('a request that falls back: the request span under the handshake, a client span per attempt, usage and TTFT', bounded, async () => {
  // The clock moves 100 ms while the primary is asked (it answers 503) and 300 ms more before the backup's
  // first token: 0.4 s to first token for the request, 0.3 s for the attempt that produced it.
  behaveA = () => (clock.advance(100), { status: 503 });
  let first = true;
  // The backup reports a dated version of the model asked for, as real providers do: that is the response model.
  behaveB = () => ({ tokens: ['Hel', 'lo'], inputTokens: 5, responseModel: 'm-b-20241022', gateAfter: 0, gate: async () => void (first && ((first = false), clock.advance(300))) });
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const c = await open({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
  c.ws.send(JSON.stringify({ type: 'request', id: 'r1', model: 'fast', messages: [{ role: 'user', content: PROMPT }], params: { temperature: 0.5 } }));
  await c.until((m) => m.type === 'done');
  await c.close();
  const spans = await spansOf(5);
  assert.equal(spans[0]!.traceId, traceId);
  assert.deepEqual(
    tree(spans),
    [
      sorted(socket({ 'wsgate.llm.requests': 1, 'wsgate.llm.refused': 0 })),
      sorted({
        name: 'chat fast',
        kind: 2,
        parent: 'GET',
        status: { code: 0, message: '' },
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'anthropic',
          'gen_ai.request.max_tokens': 1024,
          'gen_ai.request.model': 'fast',
          'gen_ai.request.temperature': 0.5,
          'gen_ai.response.finish_reasons': ['end_turn'],
          'gen_ai.response.model': 'm-b-20241022',
          'gen_ai.response.time_to_first_chunk': 0.4,
          'gen_ai.usage.input_tokens': 5,
          'gen_ai.usage.output_tokens': 2,
          'wsgate.llm.attempts': 2,
          'wsgate.llm.outcome': 'ok',
          'wsgate.llm.provider': 'backup',
          'wsgate.llm.request_id': 'r1',
          'wsgate.route': 'default/chat',
        },
        events: [],
      }),
      sorted(handshake('remote')),
      sorted(
        attempt(1, 'm-a', 'primary', 'openai', { 'error.type': '503', 'http.response.status_code': 503, 'gen_ai.usage.input_tokens': 0, 'gen_ai.usage.output_tokens': 0, 'wsgate.llm.outcome': 'failed' }, { code: 2, message: 'status 503' }),
      ),
      sorted(
        attempt(2, 'm-b', 'backup', 'anthropic', {
          'gen_ai.response.finish_reasons': ['end_turn'],
          'gen_ai.response.model': 'm-b-20241022',
          'gen_ai.response.time_to_first_chunk': 0.3,
          'gen_ai.usage.input_tokens': 5,
          'gen_ai.usage.output_tokens': 2,
          'wsgate.llm.outcome': 'ok',
        }),
      ),
    ],
  );
  const text = JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  assert.equal(text.includes(PROMPT), false, 'no prompt text in any span');
  assert.equal(text.includes('Hel'), false, 'no completion text in any span');
});

test('a cancelled request: the request span says so and is not an error; the stopped attempt neither', bounded, async () => {
  behaveA = () => ({ tokens: ['one', 'two'], inputTokens: 3, stallAfter: 1 });
  const c = await open();
  c.ws.send(JSON.stringify({ type: 'request', id: 'r2', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.type === 'delta');
  c.ws.send(JSON.stringify({ type: 'cancel', id: 'r2' }));
  assert.equal((await c.until((m) => m.type === 'error')).code, 'cancelled');
  await c.close();
  const spans = await spansOf(4);
  const [, request, , call] = tree(spans) as { attributes: Record<string, AttrValue>; status: unknown; parent: string }[];
  assert.deepEqual(
    [
      { parent: request!.parent, status: request!.status, outcome: request!.attributes['wsgate.llm.outcome'], ttft: request!.attributes['gen_ai.response.time_to_first_chunk'], error: request!.attributes['error.type'] },
      { parent: call!.parent, status: call!.status, outcome: call!.attributes['wsgate.llm.outcome'], error: call!.attributes['error.type'] },
    ],
    [
      { parent: 'GET', status: { code: 0, message: '' }, outcome: 'cancelled', ttft: 0, error: undefined },
      { parent: 'chat m-a', status: { code: 0, message: '' }, outcome: 'aborted', error: undefined },
    ],
  );
});

test('every provider fails before the first token: the request span is an error with the code the client got', bounded, async () => {
  behaveA = () => ({ status: 429, retryAfter: '2' });
  behaveB = () => ({ status: 500 });
  const c = await open();
  c.ws.send(JSON.stringify({ type: 'request', id: 'r3', model: 'fast', messages: [{ role: 'user', content: PROMPT }] }));
  assert.equal((await c.until((m) => m.type === 'error')).code, 'upstream_unavailable');
  await c.close();
  const spans = await spansOf(5);
  const t = tree(spans) as { name: string; status: { code: number }; attributes: Record<string, AttrValue> }[];
  assert.deepEqual(
    t.map((s) => [s.name, s.status.code, s.attributes['error.type'], s.attributes['http.response.status_code']]),
    [
      ['WebSocket default/chat', 0, undefined, undefined],
      ['chat fast', 2, 'upstream_unavailable', undefined],
      ['GET', 0, undefined, 101],
      ['chat m-a', 2, '429', 429],
      ['chat m-b', 2, '500', 500],
    ],
  );
});

test('an unsampled socket: no request spans, and the session serves as without tracing', bounded, async () => {
  behaveA = () => ({ tokens: ['x'] });
  const c = await open({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
  c.ws.send(JSON.stringify({ type: 'request', id: 'r4', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.type === 'done');
  await tracing.forceFlush();
  assert.deepEqual(receiver.spans, []);
  c.ws.close();
});

/** A message refused before it started: one server span under the handshake with the code the client got. */
const refusal = (name: string, code: string, over: Record<string, AttrValue>, status = { code: 0, message: '' }) => ({
  name,
  kind: 2,
  parent: 'GET',
  status,
  attributes: { 'error.type': code, 'gen_ai.operation.name': 'chat', 'wsgate.llm.outcome': code, 'wsgate.route': 'default/chat', ...over },
  events: [],
});

test('requests refused before they start get a span each with the error; the socket span counts them', bounded, async () => {
  behaveA = () => ({ tokens: ['one', 'two'], stallAfter: 1 });
  const c = await open();
  c.ws.send(JSON.stringify({ type: 'request', id: 'live', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.type === 'delta');
  c.ws.send('{not json');
  c.ws.send(JSON.stringify({ type: 'request', id: 'nobody', model: 'm-zzz', messages: [{ role: 'user', content: PROMPT }] }));
  c.ws.send(JSON.stringify({ type: 'request', id: 'live', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.code === 'duplicate_id');
  c.ws.send(JSON.stringify({ type: 'cancel', id: 'live' }));
  await c.until((m) => m.code === 'cancelled');
  await c.close();
  const spans = (tree(await spansOf(7)) as { name: string; kind: number; attributes: Record<string, AttrValue> }[]).filter((s) => s.kind !== 3 && s.name !== 'GET');
  assert.deepEqual(spans.map((s) => (s.attributes['wsgate.llm.outcome'] === 'cancelled' ? 'the cancelled request' : s)), [
    sorted(socket({ 'wsgate.llm.requests': 1, 'wsgate.llm.refused': 3 })),
    sorted(refusal('chat', 'bad_request', {})),
    sorted(refusal('chat m-a', 'duplicate_id', { 'gen_ai.request.model': 'm-a', 'wsgate.llm.request_id': 'live' })),
    'the cancelled request',
    sorted(refusal('chat m-zzz', 'unknown_model', { 'gen_ai.request.model': 'm-zzz', 'wsgate.llm.request_id': 'nobody' })),
  ]);
});

// Last: the gateway stays draining.
test('draining: a new request is refused with an error span, and the socket span says wsgate closed it draining', bounded, async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  behaveA = () => ({ tokens: ['one', 'two'], gateAfter: 1, gate: () => released });
  const c = await open();
  c.ws.send(JSON.stringify({ type: 'request', id: 'r1', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.type === 'delta');
  const drained = gateway.drain();
  c.ws.send(JSON.stringify({ type: 'request', id: 'r2', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.code === 'draining');
  const made = new Promise<void>((r) => (socketSpanMade = r));
  release();
  await drained;
  await made;
  const spans = (tree(await spansOf(5)) as { name: string; kind: number; attributes: Record<string, AttrValue> }[]).filter((s) => s.kind === 1 || s.attributes['error.type'] === 'draining');
  assert.deepEqual(spans, [
    sorted(socket({ 'wsgate.llm.requests': 1, 'wsgate.llm.refused': 1, 'wsgate.close.code': 1012, 'wsgate.close.reason': 'draining', 'wsgate.close.initiator': 'proxy', 'wsgate.drain.cause': 'proxy shutdown' })),
    // Refusing because wsgate is going away is wsgate's side, an error as a 503 would be.
    sorted(refusal('chat m-a', 'draining', { 'gen_ai.request.model': 'm-a', 'wsgate.llm.request_id': 'r2' }, { code: 2, message: '' })),
  ]);
});
