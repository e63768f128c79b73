// One connection pool per provider, through the real proxy and LLM gateway: a real `ws` client with default options
// speaks wsgate.llm.v1, and the provider doubles (test/support/llm-provider-double.ts) count the TCP connections
// they accept and how many are still open. Nothing here sleeps: requests run one after another and each test
// waits on the doubles' connection events.
// HTTP/1.1 keeps a connection open for the next request unless either side says `Connection: close` (RFC 9112
// §9.3); Node's http server (the doubles) keeps idle connections 5 s, so back-to-back requests reuse one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { afterEach, test } from 'node:test';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import { LlmGateway } from '../../src/llm/gateway.ts';
import { LLM_SUBPROTOCOL } from '../../src/llm/protocol.ts';
import { systemClock } from '../../src/util/clock.ts';
import { routeObject, silentLog, startGate, type Gate } from '../support/harness.ts';
import { startProviderDouble, type ProviderDouble } from '../support/llm-provider-double.ts';

const bounded = { timeout: 20_000 };
const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Provider {
  readonly name: string;
  readonly url: string;
  readonly model: string;
  readonly connectMs?: number;
}

interface Setup {
  readonly gate: Gate;
  readonly gateway: LlmGateway;
  /** Publishes one route serving these providers. */
  publish(providers: readonly Provider[]): void;
}

async function setup(providers: readonly Provider[]): Promise<Setup> {
  const late: { gateway?: LlmGateway } = {};
  const gate = await startGate([], { hooks: { llm: (ctx, head) => late.gateway!.handle(ctx, head) } });
  const gateway = (late.gateway = new LlmGateway({ clock: systemClock(), registry: new Registry(), log: silentLog, holder: gate.holder, closeTimeoutMs: 2000 }));
  const publish = (ps: readonly Provider[]) => {
    const built = build({
      routes: [
        routeObject('chat', {
          rules: [
            {
              llm: {
                providers: ps.map((p) => ({ name: p.name, baseUrl: p.url, format: 'openai-chat', credentials: { file: 'k' }, models: [p.model], ...(p.connectMs ? { timeouts: { connectMs: p.connectMs } } : {}) })),
                limits: { requestsPerMinute: 1000 },
              },
            },
          ],
        }),
      ],
      services: [],
      endpointSlices: [],
      secrets: [{ metadata: { namespace: 'default', name: 'file:k' }, data: { content: Buffer.from('key').toString('base64') } }],
    });
    gate.holder.publish(built.content);
  };
  publish(providers);
  cleanups.push(async () => {
    await gateway.close();
    await gate.close();
  });
  return { gate, gateway, publish };
}

async function double(): Promise<ProviderDouble> {
  const d = await startProviderDouble('openai-chat', () => ({ tokens: ['a', 'b'] }));
  cleanups.push(() => d.close());
  return d;
}

interface Client {
  readonly ws: WebSocket;
  /** Sends one request and resolves with how it ended. */
  ask(model: string): Promise<string>;
  close(): Promise<void>;
}

let nextId = 0;

async function client(gate: Gate): Promise<Client> {
  const ws = new WebSocket(gate.url('/'), LLM_SUBPROTOCOL);
  const waiters = new Map<string, (end: string) => void>();
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as { type: string; id: string; code?: string };
    if (m.type === 'done' || m.type === 'error') waiters.get(m.id)?.(m.type === 'done' ? 'done' : m.code!);
  });
  await once(ws, 'open');
  return {
    ws,
    ask: (model) =>
      new Promise((resolve) => {
        const id = `r${++nextId}`;
        waiters.set(id, resolve);
        ws.send(JSON.stringify({ type: 'request', id, model, messages: [{ role: 'user', content: 'hi' }] }));
      }),
    close: async () => {
      ws.close();
      await once(ws, 'close');
    },
  };
}

async function askTimes(c: Client, model: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await c.ask(model));
  return out;
}

test('sequential requests to one provider reuse one connection, across sockets and snapshots; two providers on one upstream have a pool each', bounded, async () => {
  const d = await double();
  const providers = [
    { name: 'one', url: d.url, model: 'm1' },
    { name: 'two', url: d.url, model: 'm2' },
  ];
  const s = await setup(providers);
  const c1 = await client(s.gate);
  const first = await askTimes(c1, 'm1', 5);
  const afterOne = d.connections.accepted;
  const c2 = await client(s.gate);
  const second = await askTimes(c2, 'm1', 3);
  // The same providers again, as a new snapshot (a reload that changed nothing for them).
  s.publish(providers);
  const third = await askTimes(await client(s.gate), 'm1', 2);
  const afterReload = d.connections.accepted;
  const other = [...(await askTimes(c1, 'm2', 3)), await c2.ask('m1'), await c1.ask('m2')];
  assert.deepEqual(
    { first, second, third, other, afterOne, afterReload, accepted: d.connections.accepted, requests: d.received.length, pools: s.gateway.pools },
    { first: Array(5).fill('done'), second: Array(3).fill('done'), third: ['done', 'done'], other: Array(5).fill('done'), afterOne: 1, afterReload: 1, accepted: 2, requests: 15, pools: 2 },
  );
});

/** Providers on two doubles, m1 and m2, each asked once through one socket. */
async function twoProviders(): Promise<{ a: ProviderDouble; b: ProviderDouble; s: Setup; c: Client }> {
  const a = await double();
  const b = await double();
  const s = await setup([
    { name: 'a', url: a.url, model: 'm1' },
    { name: 'b', url: b.url, model: 'm2' },
  ]);
  const c = await client(s.gate);
  assert.deepEqual([await c.ask('m1'), await c.ask('m2')], ['done', 'done']);
  return { a, b, s, c };
}

test('a provider removed from the table: its pool closes and its connections end; the other pools stay', bounded, async () => {
  const { a: kept, b: removed, s, c } = await twoProviders();
  await c.close();
  const before = { pools: s.gateway.pools, removedOpen: removed.connections.open };
  s.publish([{ name: 'a', url: kept.url, model: 'm1' }]);
  await removed.whenNoConnections();
  const c2 = await client(s.gate);
  assert.deepEqual(
    { before, pools: s.gateway.pools, answers: [await c2.ask('m1'), await c2.ask('m2')], keptAccepted: kept.connections.accepted, removedAccepted: removed.connections.accepted },
    { before: { pools: 2, removedOpen: 1 }, pools: 1, answers: ['done', 'unknown_model'], keptAccepted: 1, removedAccepted: 1 },
  );
});

test('a socket admitted before the provider left keeps its pool until it closes; a changed connect timeout is a new pool', bounded, async () => {
  const d = await double();
  const s = await setup([{ name: 'p', url: d.url, model: 'm1', connectMs: 4000 }]);
  const old = await client(s.gate);
  assert.equal(await old.ask('m1'), 'done');
  // The provider's connect timeout (a pool option) changes: the table's pool is a new one; the old socket still holds the old pool.
  s.publish([{ name: 'p', url: d.url, model: 'm1', connectMs: 8000 }]);
  const fresh = await client(s.gate);
  const answers = [await fresh.ask('m1'), await old.ask('m1'), await fresh.ask('m1')];
  const whileBoth = { pools: s.gateway.pools, accepted: d.connections.accepted };
  // The table drops the provider; only the sockets hold its pools now, and each ends with its socket.
  s.publish([{ name: 'q', url: d.url, model: 'm9' }]);
  const afterRemoval = s.gateway.pools;
  await old.close();
  await fresh.close();
  await d.whenNoConnections();
  assert.deepEqual({ answers, whileBoth, afterRemoval, pools: s.gateway.pools }, { answers: ['done', 'done', 'done'], whileBoth: { pools: 2, accepted: 2 }, afterRemoval: 3, pools: 1 });
});

test('closing the gateway closes the sockets left with 1001, every pool, and every provider connection', bounded, async () => {
  const { a, b, s, c } = await twoProviders();
  const open = [a.connections.open, b.connections.open];
  const closed = once(c.ws, 'close');
  await s.gateway.close();
  await Promise.all([a.whenNoConnections(), b.whenNoConnections()]);
  const [code] = (await closed) as [number];
  assert.deepEqual({ open, pools: s.gateway.pools, sessions: s.gateway.sessions, code }, { open: [1, 1], pools: 0, sessions: 0, code: 1001 });
});
