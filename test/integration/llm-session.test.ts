// The wsgate.llm.v1 session end to end on real sockets: a real `ws` client with default options, the session on a
// real ws server, provider doubles on real loopback HTTP servers (test/support/llm-provider-double.ts). Time-driven
// behaviour (timeouts, per-minute windows) runs on the manual clock; everything else waits on events.
import assert from 'node:assert/strict';
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

async function gate(r: LlmRoute, fetchImpl?: typeof fetch): Promise<Gate> {
  const clock = new ManualClock();
  const limits = new PrincipalLimits(r.limits, clock);
  const registry = new Registry();
  const metrics = new LlmMetrics(registry);
  const logs: string[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }) as never);
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http, handleProtocols: (p) => (p.has(LLM_SUBPROTOCOL) ? LLM_SUBPROTOCOL : false) });
  const sessions: LlmSession[] = [];
  // The principal comes from the handshake; here a header stands in for what auth resolved.
  wss.on('connection', (ws, req) => sessions.push(new LlmSession(ws, String(req.headers['x-principal'] ?? req.socket.remoteAddress), { route: r, clock, limits, metrics, log, ...(fetchImpl ? { fetch: fetchImpl } : {}) })));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: Client[] = [];
  cleanups.push(async () => {
    for (const c of clients) c.ws.terminate();
    limits.close();
    wss.close();
    http.closeAllConnections();
    http.close();
  });
  return {
    url,
    clock,
    sessions,
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
    const g = await gate(route([provider('a', 'openai-chat', a.url, ['m-a']), provider('b', 'openai-chat', bb.url, ['m-b'])]), async (...args) => {
      const r = await fetch(...args);
      headers();
      return r;
    });
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
