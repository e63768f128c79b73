// A WebSocketRoute rule with `llm`, end to end through the real proxy: the real builder compiles the rule (the
// provider key from a Secret), the route's JWT auth runs at the handshake as on any route, and the LLM gateway
// answers the upgrade and streams from a provider double. The principal for limits is the token's `sub`.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import { LlmGateway } from '../../src/llm/gateway.ts';
import { LLM_SUBPROTOCOL } from '../../src/llm/protocol.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { systemClock } from '../../src/util/clock.ts';
import { rawExchange, routeObject, startGate, upgradeRequest, type Gate } from '../support/harness.ts';
import { startProviderDouble, type ProviderDouble } from '../support/llm-provider-double.ts';

const hmac = '0123456789abcdef0123456789abcdef-hmac';
const providerKey = 'sk-provider-key-only-wsgate-holds';
const logLines: string[] = [];
const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }));
let double: ProviderDouble;
let gate: Gate;
let gateway: LlmGateway;

const token = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(hmac));

before(async () => {
  double = await startProviderDouble('openai-chat', () => ({ tokens: ['to', 'ken', 's'], inputTokens: 4 }));
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'kubernetes' })({
    routes: [
      routeObject('chat', {
        auth: { jwt: { secretName: 'jwt', tokenSources: [{ type: 'Header' }] } },
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/llm' } }],
            llm: {
              providers: [{ name: 'double', baseUrl: double.url, format: 'openai-chat', credentials: { secretName: 'llm-keys', key: 'openai' }, models: ['m-1'] }],
              aliases: { fast: ['m-1'] },
              limits: { tokensPerMinute: 7 },
            },
          },
        ],
      }),
    ],
    services: [],
    endpointSlices: [],
    secrets: [
      { metadata: { namespace: 'default', name: 'jwt' }, data: { key: b64(hmac) } },
      { metadata: { namespace: 'default', name: 'llm-keys' }, data: { openai: b64(`${providerKey}\n`) } },
    ],
  });
  const status = built.statuses[0]!.conditions.map((c) => `${c.type}=${c.status}`);
  assert.deepEqual(status, ['Accepted=True', 'ResolvedRefs=True', 'Programmed=True']);
  gateway = new LlmGateway({ clock: systemClock(), registry: new Registry(), log });
  gate = await startGate([], { log, hooks: { admission: createSecurity({ trustedProxies: [], log }).admission, llm: gateway.handle } });
  gate.holder.publish(built.content);
});

after(async () => {
  gateway.close();
  await gate.close();
  await double.close();
});

async function open(sub: string): Promise<{ ws: WebSocket; next: () => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(gate.url('/llm'), LLM_SUBPROTOCOL, { headers: { authorization: `Bearer ${await token(sub)}` } });
  const queue: Record<string, unknown>[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (d) => {
    queue.push(JSON.parse(String(d)) as Record<string, unknown>);
    wake?.();
  });
  await once(ws, 'open');
  assert.equal(ws.protocol, LLM_SUBPROTOCOL);
  const next = async () => {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    return queue.shift()!;
  };
  return { ws, next };
}

test('without a token the upgrade is refused with 401 like any route, and no provider is called', async () => {
  const res = await rawExchange(gate.port, upgradeRequest('/llm', { 'Sec-WebSocket-Protocol': LLM_SUBPROTOCOL }));
  assert.deepEqual({ status: res.status, reason: res.headers['wsgate-reason'] }, { status: 401, reason: 'unauthorized' });
  assert.equal(double.received.length, 0);
});

test('an authenticated socket streams a reply; the provider gets the key from the Secret; tokens/min count per sub', async () => {
  const a = await open('user-1');
  a.ws.send(JSON.stringify({ type: 'request', id: 'r1', model: 'fast', messages: [{ role: 'user', content: 'hello' }] }));
  const got = [await a.next(), await a.next(), await a.next(), await a.next()];
  assert.deepEqual(got, [
    { type: 'delta', id: 'r1', text: 'to' },
    { type: 'delta', id: 'r1', text: 'ken' },
    { type: 'delta', id: 'r1', text: 's' },
    { type: 'done', id: 'r1', finishReason: 'stop', usage: { inputTokens: 4, outputTokens: 3 } },
  ]);
  assert.equal(double.received[0]!.headers.authorization, `Bearer ${providerKey}`);
  // 7 tokens spent: the same sub on another socket is over its budget; another sub is not.
  const b = await open('user-1');
  b.ws.send(JSON.stringify({ type: 'request', id: 'r2', model: 'm-1', messages: [{ role: 'user', content: 'again' }] }));
  const refused = await b.next();
  assert.deepEqual({ ...refused, retryAfterMs: typeof refused.retryAfterMs }, { type: 'error', id: 'r2', code: 'rate_limited', message: 'limit reached: tokens_per_minute', retryAfterMs: 'number' });
  const c = await open('user-2');
  c.ws.send(JSON.stringify({ type: 'request', id: 'r3', model: 'm-1', messages: [{ role: 'user', content: 'hi' }] }));
  assert.deepEqual(await c.next(), { type: 'delta', id: 'r3', text: 'to' });
  assert.equal(logLines.join('').includes(providerKey), false);
  for (const x of [a, b, c]) x.ws.close();
});

test('drain through the gateway: the request in flight finishes, a new one gets draining, 1012, and drain() resolves', async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const slow = await startProviderDouble('openai-chat', () => ({ tokens: ['a', 'b'], gate: () => released, gateAfter: 1 }));
  const gw = new LlmGateway({ clock: systemClock(), registry: new Registry(), log });
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes: [routeObject('d', { rules: [{ llm: { providers: [{ name: 's', baseUrl: slow.url, format: 'openai-chat', credentials: { file: 'k' }, models: ['m'] }] } }] })],
    services: [],
    endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'file:k' }, data: { content: Buffer.from('key').toString('base64') } }],
  });
  const g = await startGate([], { log, hooks: { llm: gw.handle } });
  g.holder.publish(built.content);
  try {
    const ws = new WebSocket(g.url('/'), LLM_SUBPROTOCOL);
    const got: Record<string, unknown>[] = [];
    let wake: (() => void) | undefined;
    ws.on('message', (d) => (got.push(JSON.parse(String(d)) as Record<string, unknown>), wake?.()));
    const until = async (n: number) => {
      while (got.length < n) await new Promise<void>((r) => (wake = r));
    };
    await once(ws, 'open');
    ws.send(JSON.stringify({ type: 'request', id: 'a', model: 'm', messages: [{ role: 'user', content: 'x' }] }));
    await until(1);
    const drained = gw.drain();
    ws.send(JSON.stringify({ type: 'request', id: 'b', model: 'm', messages: [{ role: 'user', content: 'x' }] }));
    await until(2);
    const closed = once(ws, 'close');
    release();
    await drained;
    const [code] = (await closed) as [number];
    assert.deepEqual(
      { got: got.map((m) => `${m.type}:${m.id}:${m.code ?? m.text ?? m.finishReason}`), code },
      { got: ['delta:a:a', 'error:b:draining', 'delta:a:b', 'done:a:stop'], code: 1012 },
    );
  } finally {
    gw.close();
    await g.close();
    await slow.close();
  }
});
