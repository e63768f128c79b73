// A WebSocketRoute rule with `llm`, end to end through the real proxy: the real builder compiles the rule (the
// provider key from a Secret), the route's JWT auth runs at the handshake as on any route, and the LLM gateway
// answers the upgrade and streams from a provider double. The principal for limits is the one the admission
// found: the JWT's principal claim (`sub` unless the route names another) or `apikey:` and the key's id.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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
const clientKeyA = 'client-key-a-0123456789';
const clientKeyB = 'client-key-b-0123456789';
const logLines: string[] = [];
const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logLines.push(String(c)), cb()) }));
let double: ProviderDouble;
let gate: Gate;
let gateway: LlmGateway;

const token = (sub: string, claims: Record<string, unknown> = {}) => new SignJWT({ sub, ...claims }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(hmac));

before(async () => {
  double = await startProviderDouble('openai-chat', () => ({ tokens: ['to', 'ken', 's'], inputTokens: 4 }));
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  // One request costs 7 tokens (4 in, 3 out): a principal's first request spends its whole minute.
  const llmRule = {
    providers: [{ name: 'double', baseUrl: double.url, format: 'openai-chat', credentials: { secretName: 'llm-keys', key: 'openai' }, models: ['m-1'] }],
    aliases: { fast: ['m-1'] },
    limits: { tokensPerMinute: 7 },
  };
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'kubernetes' })({
    routes: [
      routeObject('chat', {
        auth: { jwt: { secretName: 'jwt', tokenSources: [{ type: 'Header' }] } },
        rules: [
          {
            matches: [{ path: { type: 'PathPrefix', value: '/llm' } }],
            llm: llmRule,
          },
        ],
      }),
      routeObject('keyed', { auth: { apiKey: { secretName: 'client-keys', header: 'X-Api-Key' } }, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/key' } }], llm: llmRule }] }),
      routeObject('tenant', { auth: { jwt: { secretName: 'jwt', tokenSources: [{ type: 'Header' }], principalClaim: 'tenant' } }, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/tenant' } }], llm: llmRule }] }),
    ],
    services: [],
    endpointSlices: [],
    secrets: [
      { metadata: { namespace: 'default', name: 'jwt' }, data: { key: b64(hmac) } },
      { metadata: { namespace: 'default', name: 'llm-keys' }, data: { openai: b64(`${providerKey}\n`) } },
      { metadata: { namespace: 'default', name: 'client-keys' }, data: { a: b64(clientKeyA), b: b64(clientKeyB) } },
    ],
  });
  for (const st of built.statuses) assert.deepEqual(st.conditions.map((c) => `${c.type}=${c.status}`), ['Accepted=True', 'ResolvedRefs=True', 'Programmed=True']);
  gateway = new LlmGateway({ clock: systemClock(), registry: new Registry(), log, closeTimeoutMs: 2000 });
  gate = await startGate([], { log, hooks: { admission: createSecurity({ trustedProxies: [], log }).admission, llm: gateway.handle } });
  gate.holder.publish(built.content);
});

after(async () => {
  await gateway.close();
  await gate.close();
  await double.close();
});

type Client = { ws: WebSocket; next: () => Promise<Record<string, unknown>> };

async function open(sub: string): Promise<Client> {
  return connect('/llm', { authorization: `Bearer ${await token(sub)}` });
}

async function connect(path: string, headers: Record<string, string>): Promise<Client> {
  const ws = new WebSocket(gate.url(path), LLM_SUBPROTOCOL, { headers });
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

/** Sends one request and returns the first answer: a delta when admitted, the refusal otherwise. */
async function first(c: Client, id: string): Promise<Record<string, unknown>> {
  c.ws.send(JSON.stringify({ type: 'request', id, model: 'm-1', messages: [{ role: 'user', content: 'hi' }] }));
  const m = await c.next();
  return m.type === 'error' ? { ...m, retryAfterMs: typeof m.retryAfterMs } : m;
}

/** Reads to the request's done (or error). */
async function rest(c: Client, id: string): Promise<void> {
  for (;;) {
    const m = await c.next();
    if (m.id === id && (m.type === 'done' || m.type === 'error')) return;
  }
}

const overBudget = (id: string) => ({ type: 'error', id, code: 'rate_limited', message: 'limit reached: tokens_per_minute', retryAfterMs: 'number' });

test('API keys: two sockets with one key share its token budget; another key has its own; the log names apikey:<id>', async () => {
  logLines.length = 0;
  const a1 = await connect('/key', { 'x-api-key': clientKeyA });
  assert.deepEqual(await first(a1, 'k1'), { type: 'delta', id: 'k1', text: 'to' });
  await rest(a1, 'k1');
  const a2 = await connect('/key', { 'x-api-key': clientKeyA });
  assert.deepEqual(await first(a2, 'k2'), overBudget('k2'));
  const b = await connect('/key', { 'x-api-key': clientKeyB });
  assert.deepEqual(await first(b, 'k3'), { type: 'delta', id: 'k3', text: 'to' });
  await rest(b, 'k3');
  // The id is the first 16 hex digits of the key's sha256 (src/policy/api-key.ts); the key itself is in no log.
  const idOf = (k: string) => `apikey:${createHash('sha256').update(k).digest('hex').slice(0, 16)}`;
  const principals = logLines.map((l) => (JSON.parse(l) as { llm?: { principal: string } }).llm?.principal).filter((p) => p !== undefined);
  assert.deepEqual(principals, [idOf(clientKeyA), idOf(clientKeyB)]);
  assert.equal(logLines.join('').includes(clientKeyA) || logLines.join('').includes(clientKeyB), false);
  for (const x of [a1, a2, b]) x.ws.close();
});

test('a route whose principalClaim is `tenant`: two users of one tenant share its budget, another tenant does not', async () => {
  const bearer = async (sub: string, tenant: string) => ({ authorization: `Bearer ${await token(sub, { tenant })}` });
  const alice = await connect('/tenant', await bearer('alice', 'acme'));
  assert.deepEqual(await first(alice, 't1'), { type: 'delta', id: 't1', text: 'to' });
  await rest(alice, 't1');
  const bob = await connect('/tenant', await bearer('bob', 'acme'));
  assert.deepEqual(await first(bob, 't2'), overBudget('t2'));
  const carol = await connect('/tenant', await bearer('alice', 'initech'));
  assert.deepEqual(await first(carol, 't3'), { type: 'delta', id: 't3', text: 'to' });
  await rest(carol, 't3');
  for (const x of [alice, bob, carol]) x.ws.close();
});

test('drain through the gateway: the request in flight finishes, a new one gets draining, 1012, and drain() resolves', async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const slow = await startProviderDouble('openai-chat', () => ({ tokens: ['a', 'b'], gate: () => released, gateAfter: 1 }));
  const gw = new LlmGateway({ clock: systemClock(), registry: new Registry(), log, closeTimeoutMs: 2000 });
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
    await gw.close();
    await g.close();
    await slow.close();
  }
});
