// LLM request spans through the real proxy and LLM gateway: a real `ws` client with default options speaks
// wsgate.llm.v1, provider doubles (test/support/llm-provider-double.ts) stream on loopback, the real OTLP/HTTP
// exporter sends to the receiver double, and each test compares the whole span tree of its trace. The gateway
// runs on the manual clock, moved from inside the doubles at known points, so time to first token is exact.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import { LlmGateway } from '../../src/llm/gateway.ts';
import { LLM_SUBPROTOCOL } from '../../src/llm/protocol.ts';
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

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  tracing = createTracing(testTracingConfig(receiver.url));
  clock = new ManualClock();
  a = await startProviderDouble('openai-chat', () => behaveA());
  b = await startProviderDouble('anthropic-messages', () => behaveB());
  const proxyTracing = new ProxyTracing(tracing.tracer);
  gateway = new LlmGateway({ clock, registry: new Registry(), log: silentLog, observe: new LlmTracing(tracing.tracer, proxyTracing).observe });
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
  gateway.close();
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

async function open(headers: Record<string, string> = {}): Promise<{ ws: WebSocket; until: (pred: (m: Msg) => boolean) => Promise<Msg> }> {
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
  return { ws, until };
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
  behaveB = () => ({ tokens: ['Hel', 'lo'], inputTokens: 5, gateAfter: 0, gate: async () => void (first && ((first = false), clock.advance(300))) });
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const c = await open({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
  c.ws.send(JSON.stringify({ type: 'request', id: 'r1', model: 'fast', messages: [{ role: 'user', content: PROMPT }], params: { temperature: 0.5 } }));
  await c.until((m) => m.type === 'done');
  const spans = await spansOf(4);
  assert.equal(spans[0]!.traceId, traceId);
  assert.deepEqual(
    tree(spans),
    [
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
          'gen_ai.response.model': 'm-b',
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
          'gen_ai.response.model': 'm-b',
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
  c.ws.close();
});

test('a cancelled request: the request span says so and is not an error; the stopped attempt neither', bounded, async () => {
  behaveA = () => ({ tokens: ['one', 'two'], inputTokens: 3, stallAfter: 1 });
  const c = await open();
  c.ws.send(JSON.stringify({ type: 'request', id: 'r2', model: 'm-a', messages: [{ role: 'user', content: PROMPT }] }));
  await c.until((m) => m.type === 'delta');
  c.ws.send(JSON.stringify({ type: 'cancel', id: 'r2' }));
  assert.equal((await c.until((m) => m.type === 'error')).code, 'cancelled');
  const spans = await spansOf(3);
  const [request, , call] = tree(spans) as { attributes: Record<string, AttrValue>; status: unknown; parent: string }[];
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
  c.ws.close();
});

test('every provider fails before the first token: the request span is an error with the code the client got', bounded, async () => {
  behaveA = () => ({ status: 429, retryAfter: '2' });
  behaveB = () => ({ status: 500 });
  const c = await open();
  c.ws.send(JSON.stringify({ type: 'request', id: 'r3', model: 'fast', messages: [{ role: 'user', content: PROMPT }] }));
  assert.equal((await c.until((m) => m.type === 'error')).code, 'upstream_unavailable');
  const spans = await spansOf(4);
  const t = tree(spans) as { name: string; status: { code: number }; attributes: Record<string, AttrValue> }[];
  assert.deepEqual(
    t.map((s) => [s.name, s.status.code, s.attributes['error.type'], s.attributes['http.response.status_code']]),
    [
      ['chat fast', 2, 'upstream_unavailable', undefined],
      ['GET', 0, undefined, 101],
      ['chat m-a', 2, '429', 429],
      ['chat m-b', 2, '500', 500],
    ],
  );
  c.ws.close();
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
