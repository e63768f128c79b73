// The wsgate.llm.v1 session end to end on real sockets: a real `ws` client with default options, the session on a
// real ws server, provider doubles on real loopback HTTP servers (test/support/llm-provider-double.ts). Time-driven
// behaviour (timeouts, per-minute windows) runs on the manual clock; everything else waits on events.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { WebSocket, WebSocketServer } from 'ws';
import { PrincipalLimits } from '../../src/llm/limits.ts';
import { LlmMetrics } from '../../src/llm/metrics.ts';
import { LLM_SUBPROTOCOL } from '../../src/llm/protocol.ts';
import { ProviderPools, type ProviderHttp } from '../../src/llm/provider-pools.ts';
import type { LlmProvider, LlmRoute } from '../../src/llm/route.ts';
import { LlmSession } from '../../src/llm/session.ts';
import { createLogger } from '../../src/telemetry/logger.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { startProviderDouble, type Behaviour, type DoubleFormat, type ProviderDouble } from '../support/llm-provider-double.ts';

const SECRET = 'sk-live-never-leaves-wsgate';
const TIMEOUTS = { connectMs: 1_000_000, firstTokenMs: 5_000, idleMs: 2_000, totalMs: 10_000_000 };

function provider(name: string, format: DoubleFormat, url: string, models: string[]): LlmProvider {
  return { name, baseUrl: url, format, apiKey: `${SECRET}-${name}`, models, timeouts: TIMEOUTS };
}

function route(providers: LlmProvider[], over: Partial<LlmRoute> = {}): LlmRoute {
  return {
    namespace: 'ns',
    name: 'chat',
    providers,
    aliases: { fast: ['m-a', 'm-b'] },
    limits: { concurrentPerConnection: 4, concurrentPerPrincipal: 8, requestsPerMinute: 100, tokensPerMinute: 100_000 },
    params: { maxTokens: 256, temperature: { min: 0, max: 2 } },
    maxMessageBytes: 64 * 1024,
    coalesceMs: 0,
    highWaterBytes: 64 * 1024,
    logContent: false,
    conversation: { enabled: false, maxTurns: 32, maxBytes: 65536 },
    ...over,
  };
}

interface Msg {
  type: string;
  id?: string;
  text?: string;
  code?: string;
  retryAfterMs?: number;
  finishReason?: string;
  usage?: unknown;
}

class Client {
  readonly ws: WebSocket;
  readonly got: Msg[] = [];
  readonly raw: string[] = [];
  #waiters: (() => void)[] = [];
  constructor(url: string, principal: string) {
    // Default ws options (permessage-deflate offered); only a header naming the principal is added.
    this.ws = new WebSocket(url, LLM_SUBPROTOCOL, { headers: { 'x-principal': principal } });
    this.ws.on('message', (d) => {
      this.raw.push(String(d));
      this.got.push(JSON.parse(String(d)) as Msg);
      for (const w of this.#waiters.splice(0)) w();
    });
  }
  async open(): Promise<this> {
    await once(this.ws, 'open');
    return this;
  }
  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }
  request(id: string, model = 'fast', extra: Record<string, unknown> = {}): void {
    this.send({ type: 'request', id, model, messages: [{ role: 'user', content: 'hi' }], ...extra });
  }
  /** Resolves with the first message matching pred, received or yet to come. */
  async until(pred: (m: Msg) => boolean): Promise<Msg> {
    for (;;) {
      const m = this.got.find(pred);
      if (m) return m;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
  end(id: string): Promise<Msg> {
    return this.until((m) => m.id === id && (m.type === 'done' || m.type === 'error'));
  }
  texts(id: string): string[] {
    return this.got.filter((m) => m.id === id && m.type === 'delta').map((m) => m.text!);
  }
}

interface Gate {
  url: string;
  clock: ManualClock;
  sessions: LlmSession[];
  serverSockets: WebSocket[];
  logs: string[];
  registry: Registry;
  client(principal?: string): Promise<Client>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function double(format: DoubleFormat, behave: (body: Record<string, unknown>) => Behaviour): Promise<ProviderDouble> {
  const d = await startProviderDouble(format, behave);
  cleanups.push(() => d.close());
  return d;
}

async function gate(r: LlmRoute, wrap: (http: ProviderHttp) => ProviderHttp = (h) => h): Promise<Gate> {
  const clock = new ManualClock();
  const limits = new PrincipalLimits(r.limits, clock);
  const pools = new ProviderPools();
  const lease = pools.lease(r);
  const registry = new Registry();
  const metrics = new LlmMetrics(registry);
  const logs: string[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }) as never);
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http, handleProtocols: (p) => (p.has(LLM_SUBPROTOCOL) ? LLM_SUBPROTOCOL : false) });
  const sessions: LlmSession[] = [];
  const serverSockets: WebSocket[] = [];
  // The principal comes from the handshake; here a header stands in for what auth resolved.
  wss.on('connection', (ws, req) => serverSockets.push(ws) && sessions.push(new LlmSession(ws, String(req.headers['x-principal'] ?? req.socket.remoteAddress), { route: r, clock, limits, metrics, log, http: wrap(lease) })));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: Client[] = [];
  cleanups.push(async () => {
    for (const c of clients) c.ws.terminate();
    limits.close();
    lease.release();
    await pools.close();
    wss.close();
    http.closeAllConnections();
    http.close();
  });
  return {
    url,
    clock,
    sessions,
    serverSockets,
    logs,
    registry,
    async client(principal = 'alice') {
      const c = new Client(url, principal);
      clients.push(c);
      return c.open();
    },
  };
}

const flushIo = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('llm session: streaming and concurrency', () => {
  it('streams deltas and a done with usage; two requests in flight on one socket, tagged by id', async () => {
    const a = await double('openai-chat', (b) => ({ tokens: b.max_tokens === 5 ? ['x', 'y'] : ['Hel', 'lo'], inputTokens: 3 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('r1', 'fast', { params: { maxTokens: 5 } });
    c.request('r2', 'm-a', { params: { temperature: 0.5 } });
    const [d1, d2] = await Promise.all([c.end('r1'), c.end('r2')]);
    assert.deepEqual(
      { d1, d2, t1: c.texts('r1'), t2: c.texts('r2') },
      {
        d1: { type: 'done', id: 'r1', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 2 } },
        d2: { type: 'done', id: 'r2', finishReason: 'stop', usage: { inputTokens: 3, outputTokens: 2 } },
        t1: ['x', 'y'],
        t2: ['Hel', 'lo'],
      },
    );
    assert.deepEqual(a.received.map((r) => r.body.temperature).sort(), [0.5, undefined]);
  });

  it('anthropic-messages streams through the same protocol', async () => {
    const a = await double('anthropic-messages', () => ({ tokens: ['Hi', '!'], inputTokens: 4 }));
    const g = await gate(route([provider('a', 'anthropic-messages', a.url, ['m-a'])]));
    const c = await g.client();
    c.send({ type: 'request', id: 'q', model: 'm-a', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }] });
    assert.deepEqual(await c.end('q'), { type: 'done', id: 'q', finishReason: 'end_turn', usage: { inputTokens: 4, outputTokens: 2 } });
    assert.deepEqual(c.texts('q'), ['Hi', '!']);
    assert.deepEqual({ system: a.received[0]!.body.system, messages: a.received[0]!.body.messages }, { system: 'be brief', messages: [{ role: 'user', content: 'hi' }] });
  });

  it('a duplicate id in flight is an error for that message only', async () => {
    const a = await double('openai-chat', () => ({ stallAfter: 1 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('same');
    await c.until((m) => m.type === 'delta');
    c.request('same');
    assert.deepEqual(await c.until((m) => m.type === 'error'), { type: 'error', id: 'same', code: 'duplicate_id', message: 'request same is already in flight' });
  });
});

describe('llm session: fallback', () => {
  for (const [what, b] of [['429', { status: 429, retryAfter: '2' }], ['503', { status: 503 }]] as const) {
    it(`falls back to the next provider on ${what} before the first token`, async () => {
      const a = await double('openai-chat', () => b);
      const bb = await double('anthropic-messages', () => ({ tokens: ['ok'] }));
      const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a']), provider('b', 'anthropic-messages', bb.url, ['m-b'])]));
      const c = await g.client();
      c.request('f');
      assert.deepEqual(await c.end('f'), { type: 'done', id: 'f', finishReason: 'end_turn', usage: { inputTokens: 7, outputTokens: 1 } });
      assert.deepEqual({ a: a.received.length, b: bb.received.length, bModel: bb.received[0]!.body.model, texts: c.texts('f') }, { a: 1, b: 1, bModel: 'm-b', texts: ['ok'] });
    });
  }

  it('falls back on a connect error (nothing listening)', async () => {
    const bb = await double('openai-chat', () => ({ tokens: ['ok'] }));
    const dead = await startProviderDouble('openai-chat', () => ({}));
    const deadUrl = dead.url;
    await dead.close();
    const g = await gate(route([provider('a', 'openai-chat', deadUrl, ['m-a']), provider('b', 'openai-chat', bb.url, ['m-b'])]));
    const c = await g.client();
    c.request('f');
    assert.equal((await c.end('f')).type, 'done');
    assert.deepEqual(c.texts('f'), ['ok']);
  });

  it('when every provider refuses, the error carries the smallest Retry-After as retryAfterMs', async () => {
    const a = await double('openai-chat', () => ({ status: 429, retryAfter: '5' }));
    const bb = await double('openai-chat', () => ({ status: 429, retryAfter: '2' }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a']), provider('b', 'openai-chat', bb.url, ['m-b'])]));
    const c = await g.client();
    c.request('f');
    assert.deepEqual(await c.end('f'), { type: 'error', id: 'f', code: 'upstream_unavailable', message: 'no provider could serve the request', retryAfterMs: 2000 });
  });

  it('no fallback once a token has streamed: the error is upstream_error and the next provider is never called', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['one', 'two', 'three'], errorAfter: 1 }));
    const bb = await double('openai-chat', () => ({ tokens: ['never'] }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a']), provider('b', 'openai-chat', bb.url, ['m-b'])]));
    const c = await g.client();
    c.request('n');
    assert.deepEqual(await c.end('n'), { type: 'error', id: 'n', code: 'upstream_error', message: 'the provider failed mid-stream' });
    assert.deepEqual({ texts: c.texts('n'), b: bb.received.length }, { texts: ['one'], b: 0 });
  });

  it('an unknown model is an error naming it', async () => {
    const a = await double('openai-chat', () => ({}));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('u', 'gpt-nope');
    assert.deepEqual(await c.end('u'), { type: 'error', id: 'u', code: 'unknown_model', message: 'no provider serves model "gpt-nope"' });
  });
});

describe('llm session: cancel, disconnect, timeouts', () => {
  it('cancel mid-stream aborts the upstream request and answers cancelled', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['a', 'b'], stallAfter: 1 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('c1');
    await c.until((m) => m.type === 'delta');
    const aborted = a.nextAbort();
    c.send({ type: 'cancel', id: 'c1' });
    await aborted;
    assert.deepEqual(await c.end('c1'), { type: 'error', id: 'c1', code: 'cancelled', message: 'cancelled by the client' });
    assert.equal(a.aborted, 1);
  });

  it('the client going away aborts every upstream request of its connection', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['a', 'b'], stallAfter: 1 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('x1');
    c.request('x2');
    await c.until((m) => m.id === 'x1' && m.type === 'delta');
    await c.until((m) => m.id === 'x2' && m.type === 'delta');
    const both = new Promise<void>((resolve) => {
      void a.nextAbort().then(() => (a.aborted === 2 ? resolve() : void a.nextAbort().then(() => resolve())));
    });
    c.ws.terminate();
    await both;
    assert.equal(a.aborted, 2);
  });

  it('a provider silent before its first token times out (first-token timeout) and the next provider is tried', async () => {
    const a = await double('openai-chat', () => ({ stallAfter: 0 }));
    const bb = await double('openai-chat', () => ({ tokens: ['late'] }));
    let headers!: () => void;
    const gotHeaders = new Promise<void>((resolve) => (headers = resolve));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a']), provider('b', 'openai-chat', bb.url, ['m-b'])]), (http) => ({
      fetch: async (...args) => {
        const r = await http.fetch(...args);
        headers();
        return r;
      },
    }));
    const c = await g.client();
    c.request('t');
    await gotHeaders;
    await flushIo(); // the attempt arms its first-token timer in the continuation of the same fetch
    g.clock.advance(TIMEOUTS.firstTokenMs);
    assert.equal((await c.end('t')).type, 'done');
    assert.deepEqual({ texts: c.texts('t'), aAborted: a.aborted }, { texts: ['late'], aAborted: 1 });
  });

  it('a provider that stalls after a token times out on idle: error timeout, no fallback', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['a', 'b'], stallAfter: 1 }));
    const bb = await double('openai-chat', () => ({ tokens: ['never'] }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a']), provider('b', 'openai-chat', bb.url, ['m-b'])]));
    const c = await g.client();
    c.request('i');
    await c.until((m) => m.type === 'delta');
    g.clock.advance(TIMEOUTS.idleMs);
    assert.deepEqual(await c.end('i'), { type: 'error', id: 'i', code: 'timeout', message: 'provider idle timeout' });
    assert.equal(bb.received.length, 0);
  });
});

describe('llm session: limits answer with retryAfterMs and keep the socket open', () => {
  it('requests per minute: the third request in the window is refused until the window slides', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['k'] }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], { limits: { concurrentPerConnection: 4, concurrentPerPrincipal: 8, requestsPerMinute: 2, tokensPerMinute: 100_000 } }));
    const c = await g.client();
    c.request('1');
    await c.end('1');
    g.clock.advance(10_000);
    c.request('2');
    await c.end('2');
    c.request('3');
    assert.deepEqual(await c.end('3'), { type: 'error', id: '3', code: 'rate_limited', message: 'limit reached: requests_per_minute', retryAfterMs: 50_000 });
    g.clock.advance(50_000);
    c.request('4');
    assert.equal((await c.end('4')).type, 'done');
  });

  it('tokens per minute, from reported usage, are shared by two connections of one principal and not by another principal', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['a', 'b', 'c'], inputTokens: 7 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], { limits: { concurrentPerConnection: 4, concurrentPerPrincipal: 8, requestsPerMinute: 100, tokensPerMinute: 10 } }));
    const c1 = await g.client('alice');
    const c2 = await g.client('alice');
    const other = await g.client('bob');
    c1.request('spend');
    assert.deepEqual((await c1.end('spend')).usage, { inputTokens: 7, outputTokens: 3 });
    g.clock.advance(1_000);
    c2.request('over');
    assert.deepEqual(await c2.end('over'), { type: 'error', id: 'over', code: 'rate_limited', message: 'limit reached: tokens_per_minute', retryAfterMs: 59_000 });
    other.request('bob1');
    assert.equal((await other.end('bob1')).type, 'done');
    g.clock.advance(59_000);
    c2.request('later');
    assert.equal((await c2.end('later')).type, 'done');
    assert.equal(c2.ws.readyState, WebSocket.OPEN);
  });

  it('concurrency per connection and per principal', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['a', 'b'], stallAfter: 1 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], { limits: { concurrentPerConnection: 1, concurrentPerPrincipal: 2, requestsPerMinute: 100, tokensPerMinute: 100_000 } }));
    const c1 = await g.client('carol');
    const c2 = await g.client('carol');
    const c3 = await g.client('carol');
    c1.request('a1');
    await c1.until((m) => m.type === 'delta');
    c1.request('a2');
    assert.deepEqual(await c1.end('a2'), { type: 'error', id: 'a2', code: 'rate_limited', message: 'too many requests in flight on this connection', retryAfterMs: 1000 });
    c2.request('b1');
    await c2.until((m) => m.type === 'delta');
    c3.request('c1');
    assert.deepEqual(await c3.end('c1'), { type: 'error', id: 'c1', code: 'rate_limited', message: 'limit reached: concurrent_per_principal', retryAfterMs: 1000 });
  });
});

describe('llm session: malformed input', () => {
  it('bad JSON, an unknown type, a parameter not allowed, out of range, too large: an error each, and the socket keeps working', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['fine'] }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], { maxMessageBytes: 512 }));
    const c = await g.client();
    const inputs = [
      '{not json',
      JSON.stringify({ type: 'subscribe', id: 's' }),
      JSON.stringify({ type: 'request', id: 'p', model: 'm-a', messages: [{ role: 'user', content: 'x' }], params: { top_k: 3 } }),
      JSON.stringify({ type: 'request', id: 'q', model: 'm-a', messages: [{ role: 'user', content: 'x' }], params: { maxTokens: 100_000 } }),
      JSON.stringify({ type: 'request', id: 'r', model: 'm-a', messages: [{ role: 'tool', content: 'x' }] }),
      JSON.stringify({ type: 'request', id: 'big', model: 'm-a', messages: [{ role: 'user', content: 'x'.repeat(600) }] }),
      JSON.stringify({ type: 'request', model: 'm-a', messages: [] }),
    ];
    for (const i of inputs) c.send(i);
    c.request('ok', 'm-a');
    await c.end('ok');
    assert.deepEqual(c.got.filter((m) => m.type === 'error'), [
      { type: 'error', code: 'bad_request', message: 'message is not JSON' },
      { type: 'error', id: 's', code: 'bad_request', message: 'unknown message type "subscribe"' },
      { type: 'error', id: 'p', code: 'bad_request', message: 'parameter "top_k" is not allowed' },
      { type: 'error', id: 'q', code: 'bad_request', message: 'maxTokens must be an integer from 1 to 256' },
      { type: 'error', id: 'r', code: 'bad_request', message: 'each message needs role (system, user or assistant) and string content' },
      { type: 'error', code: 'message_too_large', message: `message of ${Buffer.byteLength(inputs[5]!)} bytes exceeds 512` },
      { type: 'error', code: 'bad_request', message: 'id must be a string of 1 to 128 characters' },
    ]);
    assert.deepEqual(c.texts('ok'), ['fine']);
    assert.equal(a.received.length, 1);
  });

  it('a binary frame closes with 1003 (RFC 6455 §7.4.1: a type of data it cannot accept)', async () => {
    const a = await double('openai-chat', () => ({}));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.ws.send(Buffer.from([1, 2, 3]));
    const [code] = (await once(c.ws, 'close')) as [number];
    assert.equal(code, 1003);
  });
});

describe('llm session: drain, credentials, observability', () => {
  it('drain: the in-flight request finishes, a new one gets draining, then 1012', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const a = await double('openai-chat', () => ({ tokens: ['a', 'b'], gate: () => released, gateAfter: 1 }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('inflight');
    await c.until((m) => m.type === 'delta');
    g.sessions[0]!.drain();
    c.request('new');
    assert.deepEqual(await c.end('new'), { type: 'error', id: 'new', code: 'draining', message: 'the gateway is draining; reconnect' });
    const closed = once(c.ws, 'close');
    release();
    assert.equal((await c.end('inflight')).type, 'done');
    const [code] = (await closed) as [number];
    assert.deepEqual({ code, texts: c.texts('inflight') }, { code: 1012, texts: ['a', 'b'] });
  });

  it('credentials reach the provider, never the client nor the log; one log line per request with usage and timings, no text', async () => {
    const a = await double('openai-chat', () => ({ tokens: ['secret answer'], inputTokens: 2 }));
    const bad = await double('anthropic-messages', () => ({ status: 500 }));
    const g = await gate(route([provider('bad', 'anthropic-messages', bad.url, ['m-a']), provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.send({ type: 'request', id: 'cred', model: 'm-a', messages: [{ role: 'user', content: 'private prompt' }] });
    await c.end('cred');
    c.request('bad-json-next', 'nope');
    await c.end('bad-json-next');
    assert.deepEqual({ bad: bad.received[0]!.headers['x-api-key'], a: a.received[0]!.headers.authorization }, { bad: `${SECRET}-bad`, a: `Bearer ${SECRET}-a` });
    const everything = [...c.raw, ...g.logs].join('\n');
    assert.equal(everything.includes(SECRET), false);
    assert.equal(everything.includes('private prompt') || g.logs.join('').includes('secret answer'), false);
    const lines = g.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'llm request');
    assert.equal(lines.length, 1);
    const { llm, usage, durationMs } = lines[0] as { llm: unknown; usage: unknown; durationMs: number };
    assert.deepEqual({ llm, usage, durationMs: typeof durationMs }, { llm: { route: 'ns/chat', id: 'cred', principal: 'alice', provider: 'a', model: 'm-a', requested: 'm-a', outcome: 'ok', attempts: 2 }, usage: { inputTokens: 2, outputTokens: 1 }, durationMs: 'number' });
  });

  it('metrics: requests by outcome, tokens by kind, upstream errors by provider and status, cancellations', async () => {
    const a = await double('openai-chat', (b) => (b.max_tokens === 9 ? { tokens: ['a', 'b'], stallAfter: 1 } : { tokens: ['a', 'b'], inputTokens: 5 }));
    const bad = await double('openai-chat', () => ({ status: 503 }));
    const g = await gate(route([provider('bad', 'openai-chat', bad.url, ['m-a']), provider('a', 'openai-chat', a.url, ['m-a'])]));
    const c = await g.client();
    c.request('ok', 'm-a');
    await c.end('ok');
    c.request('cx', 'm-a', { params: { maxTokens: 9 } });
    await c.until((m) => m.id === 'cx' && m.type === 'delta');
    c.send({ type: 'cancel', id: 'cx' });
    await c.end('cx');
    const text = await g.registry.metrics();
    const pick = (name: string) => text.split('\n').filter((l) => l.startsWith(name + '{')).sort();
    assert.deepEqual(
      {
        requests: pick('wsgate_llm_requests_total'),
        tokens: pick('wsgate_llm_tokens_total'),
        errors: pick('wsgate_llm_upstream_errors_total'),
        cancels: pick('wsgate_llm_cancellations_total'),
      },
      {
        requests: ['wsgate_llm_requests_total{namespace="ns",route="chat",provider="a",model="m-a",outcome="cancelled"} 1', 'wsgate_llm_requests_total{namespace="ns",route="chat",provider="a",model="m-a",outcome="ok"} 1'],
        tokens: ['wsgate_llm_tokens_total{namespace="ns",route="chat",provider="a",model="m-a",kind="input"} 5', 'wsgate_llm_tokens_total{namespace="ns",route="chat",provider="a",model="m-a",kind="output"} 2'],
        errors: ['wsgate_llm_upstream_errors_total{namespace="ns",route="chat",provider="bad",status="503"} 2'],
        cancels: ['wsgate_llm_cancellations_total{namespace="ns",route="chat"} 1'],
      },
    );
  });
});

describe('llm session: backpressure', () => {
  it('a client that stops reading stops wsgate reading the provider: the socket queue stays at the high-water mark', async (t) => {
    const TOKENS = 4000;
    // Incompressible text: the client negotiates permessage-deflate (ws default), which would shrink repeated text.
    const tokens = Array.from({ length: TOKENS }, () => randomBytes(1536).toString('base64'));
    const a = await double('openai-chat', () => ({ tokens }));
    const highWaterBytes = 64 * 1024;
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], { highWaterBytes }));
    const c = await g.client();
    // Every send of the session is observed: the largest queue it ever left behind is the memory bound.
    const server = g.serverSockets[0]!;
    const send = server.send.bind(server) as (...args: unknown[]) => void;
    let maxQueued = 0;
    let reachedMark!: () => void;
    const marked = new Promise<void>((resolve) => (reachedMark = resolve));
    server.send = ((...args: unknown[]) => {
      send(...args);
      maxQueued = Math.max(maxQueued, server.bufferedAmount);
      if (server.bufferedAmount > highWaterBytes) reachedMark();
    }) as typeof server.send;
    c.ws.pause();
    c.request('slow', 'm-a');
    await marked;
    const writtenAtMark = a.written;
    c.ws.resume();
    await c.end('slow');
    const texts = c.texts('slow');
    const oneDelta = Buffer.byteLength(JSON.stringify({ type: 'delta', id: 'slow', text: tokens[0] }));
    t.diagnostic(`client paused: wsgate's queue peaked at ${maxQueued} bytes (mark ${highWaterBytes}); the provider had written ${writtenAtMark} of ${TOKENS} tokens`);
    assert.ok(maxQueued <= highWaterBytes + oneDelta, `wsgate queued ${maxQueued} bytes for a client that read nothing`);
    assert.deepEqual({ n: texts.length, inOrder: texts.every((x, i) => x === tokens[i]) }, { n: TOKENS, inOrder: true });
  });
  it('a client that goes away while wsgate is holding its stream still aborts the upstream request', async () => {
    const tokens = Array.from({ length: 4000 }, () => randomBytes(1536).toString('base64'));
    // The double never ends this stream by itself, so only an abort from wsgate can end it.
    const a = await double('openai-chat', () => ({ tokens, stallAfter: tokens.length - 1 }));
    const highWaterBytes = 64 * 1024;
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], { highWaterBytes }));
    const c = await g.client();
    const server = g.serverSockets[0]!;
    const send = server.send.bind(server) as (...args: unknown[]) => void;
    let reachedMark!: () => void;
    const marked = new Promise<void>((resolve) => (reachedMark = resolve));
    server.send = ((...args: unknown[]) => {
      send(...args);
      if (server.bufferedAmount > highWaterBytes) reachedMark();
    }) as typeof server.send;
    c.ws.pause();
    c.request('held', 'm-a');
    await marked;
    const aborted = a.nextAbort();
    c.ws.terminate();
    await aborted;
    assert.equal(a.aborted, 1);
  });
});

describe('llm session: conversation state (`continues`)', () => {
  const conv = (maxTurns: number, maxBytes: number) => ({ conversation: { enabled: true, maxTurns, maxBytes } });
  const user = (content: string) => ({ role: 'user', content });
  const assistant = (content: string) => ({ role: 'assistant', content });
  /** The reply to a request is `re:` and its last message's content, so every turn is told apart upstream. */
  const echo = (b: Record<string, unknown>): Behaviour => {
    const msgs = b.messages as { content: string }[];
    return { tokens: ['re:', msgs.at(-1)!.content.slice(0, 8)] };
  };
  async function ask(c: Client, id: string, content: string, continues?: string): Promise<Msg> {
    c.send({ type: 'request', id, model: 'm-a', messages: [user(content)], ...(continues !== undefined ? { continues } : {}) });
    return c.end(id);
  }

  it('a continued request sends the whole context upstream; the chain moves to the newest id', async () => {
    const a = await double('openai-chat', echo);
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], conv(32, 65536)));
    const c = await g.client();
    c.send({ type: 'request', id: 'c1', model: 'm-a', messages: [{ role: 'system', content: 'be brief' }, user('one')] });
    assert.equal((await c.end('c1')).type, 'done');
    assert.equal((await ask(c, 'c2', 'two', 'c1')).type, 'done');
    assert.equal((await ask(c, 'c3', 'three', 'c2')).type, 'done');
    assert.deepEqual(
      a.received.map((r) => r.body.messages),
      [
        [{ role: 'system', content: 'be brief' }, user('one')],
        [{ role: 'system', content: 'be brief' }, user('one'), assistant('re:one'), user('two')],
        [{ role: 'system', content: 'be brief' }, user('one'), assistant('re:one'), user('two'), assistant('re:two'), user('three')],
      ],
    );
    // c1's turns now live under c3: the chain is kept once, under its latest request.
    assert.deepEqual(await ask(c, 'c4', 'again', 'c1'), { type: 'error', id: 'c4', code: 'unknown_conversation', message: 'no conversation kept for "c1": send the whole conversation' });
    assert.equal(a.received.length, 3);
  });

  it('maxTurns evicts the oldest turns', async () => {
    const a = await double('openai-chat', echo);
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], conv(4, 65536)));
    const c = await g.client();
    await ask(c, 't1', 'u1');
    await ask(c, 't2', 'u2', 't1');
    await ask(c, 't3', 'u3', 't2');
    await ask(c, 't4', 'u4', 't3');
    assert.deepEqual(
      a.received.map((r) => r.body.messages),
      [
        [user('u1')],
        [user('u1'), assistant('re:u1'), user('u2')],
        [user('u1'), assistant('re:u1'), user('u2'), assistant('re:u2'), user('u3')],
        // Six turns were kept to four: u1 and its reply went first.
        [user('u2'), assistant('re:u2'), user('u3'), assistant('re:u3'), user('u4')],
      ],
    );
  });

  it('maxBytes evicts the oldest turns, and never leaves a reply without its question first', async () => {
    const a = await double('openai-chat', echo);
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], conv(32, 1024)));
    const c = await g.client();
    const big1 = 'A'.repeat(600);
    const big2 = 'B'.repeat(600);
    await ask(c, 'b1', big1);
    await ask(c, 'b2', big2, 'b1');
    await ask(c, 'b3', 'small', 'b2');
    assert.deepEqual(a.received.map((r) => r.body.messages), [
      [user(big1)],
      [user(big1), assistant('re:AAAAAAAA'), user(big2)],
      // 600 + 11 + 600 + 11 bytes is over 1024: big1 goes, then its reply, which would otherwise open the chain.
      [user(big2), assistant('re:BBBBBBBB'), user('small')],
    ]);
  });

  it('an unknown `continues`, one still in flight, or one on a route without state is an error; nothing goes upstream', async () => {
    const a = await double('openai-chat', (b) => ((b.messages as { content: string }[]).at(-1)!.content === 'hold' ? { stallAfter: 1 } : { tokens: ['ok'] }));
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])], conv(32, 65536)));
    const c = await g.client();
    assert.deepEqual(await ask(c, 'x1', 'hi', 'never-seen'), { type: 'error', id: 'x1', code: 'unknown_conversation', message: 'no conversation kept for "never-seen": send the whole conversation' });
    c.send({ type: 'request', id: 'slow', model: 'm-a', messages: [user('hold')] });
    await c.until((m) => m.id === 'slow' && m.type === 'delta');
    assert.deepEqual(await ask(c, 'x2', 'hi', 'slow'), { type: 'error', id: 'x2', code: 'unknown_conversation', message: 'no conversation kept for "slow": send the whole conversation' });
    c.send({ type: 'request', id: 'x3', model: 'm-a', messages: [user('hi')], continues: 7 });
    assert.deepEqual(await c.end('x3'), { type: 'error', id: 'x3', code: 'bad_request', message: 'continues must be a string of 1 to 128 characters' });
    assert.equal(a.received.length, 1);

    const off = await gate(route([provider('a', 'openai-chat', a.url, ['m-a'])]));
    const d = await off.client();
    assert.equal((await ask(d, 'y1', 'hi')).type, 'done');
    assert.deepEqual(await ask(d, 'y2', 'more', 'y1'), { type: 'error', id: 'y2', code: 'unknown_conversation', message: 'conversation state is off on this route: send the whole conversation' });
    assert.equal(a.received.length, 2);
  });
});
