import assert from 'node:assert/strict';
// Test harness: real sockets on 127.0.0.1 port 0 — ws echo backends, a wsgate proxy fed by the real builder,
// raw HTTP exchanges — and helpers that wait on events, never on the clock (test/support/wait.ts holds the one
// bounded wait, for what only an outside observer can see).
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { WebSocket, WebSocketServer, type ServerOptions } from 'ws';
import { createBuilder } from '../../src/dag/build.ts';
import { Health } from '../../src/health/health.ts';
import type { RouteObject } from '../../src/dag/input.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { ConnectionRegistry } from '../../src/proxy/connections.ts';
import { ProxyServer, type ProxyOptions } from '../../src/proxy/proxy-server.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';

export const silentLog = pino({ level: 'silent' });

export interface Echo {
  readonly wss: WebSocketServer;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/** A ws echo server; it greets nobody so echo tests see only their own messages. */
export async function startEcho(opts: ServerOptions = {}): Promise<Echo> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...opts });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    ws.on('error', () => {});
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    wss,
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

export interface NamedBackend {
  readonly name: string;
  readonly wss: WebSocketServer;
  readonly port: number;
}

/** An echo backend that first greets each connection (default "hello from NAME"), so a client knows where it
 *  landed — the stand-in for a pod in rollout and affinity tests. */
export async function startNamedBackend(name: string, greeting = `hello from ${name}`): Promise<NamedBackend> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.send(greeting);
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  return { name, wss, port: (wss.address() as AddressInfo).port };
}

/** Opens a WebSocket to a startNamedBackend pod (usually through the proxy) and waits for its greeting: the
 *  name of the backend it landed on. Rejects on a non-101 answer or a close before the greeting. */
export async function connectGreeted(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<{ ws: WebSocket; backend: string }> {
  const ws = new WebSocket(url, opts);
  ws.on('error', () => {});
  const greeting = await new Promise<string>((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve(d.toString()));
    ws.once('close', (code: number) => reject(new Error(`closed with ${code} before the greeting`)));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
  return { ws, backend: greeting.replace('hello from ', '') };
}

/** One binary and one text message of `size` bytes through an echo, each checked byte for byte. */
export async function assertEchoes(ws: WebSocket, size: number): Promise<void> {
  const bin = Buffer.alloc(size, 7);
  for (let i = 0; i < size; i += 997) bin[i] = i & 0xff;
  ws.send(bin);
  const got = await nextMessage(ws);
  assert.equal(got.isBinary, true);
  assert.ok(got.data.equals(bin));
  const text = 'é'.repeat(Math.floor(size / 2));
  ws.send(text);
  const t = await nextMessage(ws);
  assert.equal(t.isBinary, false);
  assert.equal(t.data.toString(), text);
}

/** A text message in three fragments with a ping after each of the first two: it must arrive whole, and both
 *  pings must be answered in order (control frames may sit between fragments, RFC 6455 §5.4). */
export async function assertFragmentsWithPings(ws: WebSocket): Promise<void> {
  const pongs: string[] = [];
  ws.on('pong', (d: Buffer) => pongs.push(d.toString()));
  ws.send('part1-', { fin: false });
  ws.ping('p1');
  ws.send('part2-', { fin: false });
  ws.ping('p2');
  ws.send('part3', { fin: true });
  const got = await nextMessage(ws);
  assert.equal(got.data.toString(), 'part1-part2-part3');
  while (pongs.length < 2) await once(ws, 'pong');
  assert.deepEqual(pongs, ['p1', 'p2']);
}

export function routeObject(name: string, spec: unknown, extra: { namespace?: string; age?: number } = {}): RouteObject {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { name, namespace: extra.namespace ?? 'default', generation: 1, creationTimestamp: new Date((extra.age ?? 0) * 1000).toISOString() },
    spec,
  };
}

export function staticRoute(name: string, addresses: readonly string[], spec: Record<string, unknown> = {}): RouteObject {
  return routeObject(name, { rules: [{ backendRefs: [{ endpoints: addresses }] }], ...spec });
}

export interface Gate {
  readonly proxy: ProxyServer;
  /** The proxy's state, as the data plane builds it and hands it to the proxy, health and affinity. */
  readonly balancer: BalancerState;
  readonly connections: ConnectionRegistry;
  readonly holder: SnapshotHolder;
  readonly metrics: Metrics;
  readonly port: number;
  url(path?: string): string;
  publish(routes: readonly RouteObject[]): void;
  close(): Promise<void>;
}

const builder = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' });

/** A holder with the routes published by the real builder (each must be accepted); publish() swaps in new ones. */
export function holderWith(routes: readonly RouteObject[]): { holder: SnapshotHolder; publish(rs: readonly RouteObject[]): void } {
  const holder = new SnapshotHolder();
  const publish = (rs: readonly RouteObject[]) => {
    const r = builder({ routes: rs, services: [], endpointSlices: [], secrets: [] });
    for (const s of r.statuses) {
      const acc = s.conditions.find((c) => c.type === 'Accepted');
      if (acc?.status !== 'True') throw new Error(`test route ${s.key} not accepted: ${acc?.message}`);
    }
    holder.publish(r.content);
  };
  publish(routes);
  return { holder, publish };
}

export async function startGate(routes: readonly RouteObject[], opts: Partial<ProxyOptions> = {}): Promise<Gate> {
  const { holder, publish } = holderWith(routes);
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: false });
  const balancer = opts.balancer ?? new BalancerState();
  const connections = opts.connections ?? new ConnectionRegistry();
  const proxy = new ProxyServer({
    holder,
    log: silentLog,
    metrics,
    balancer,
    connections,
    handshakeTimeoutMs: 5000,
    maxHeaderBytes: 16384,
    maxHandshakesInFlight: 10000,
    closeTimeoutMs: 2000,
    ...opts,
  });
  proxy.server.listen(0, '127.0.0.1');
  await once(proxy.server, 'listening');
  const port = (proxy.server.address() as AddressInfo).port;
  return { proxy, balancer, connections, holder, metrics, port, url: (p = '/') => `ws://127.0.0.1:${port}${p}`, publish, close: () => proxy.close() };
}

export async function connect(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, opts);
  ws.on('error', () => {});
  await once(ws, 'open');
  return ws;
}

/** One message echoed through wsgate on `port` at `path` by a real ws client, then a clean close. */
export async function echoThrough(port: number, path: string, headers: Record<string, string> = {}): Promise<void> {
  const ws = await connect(`ws://127.0.0.1:${port}${path}`, { headers });
  const reply = nextMessage(ws);
  ws.send(`hello ${path}`);
  assert.equal((await reply).data.toString(), `hello ${path}`);
  const done = closed(ws);
  ws.close(1000);
  assert.equal((await done).code, 1000);
}

export function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly raw: string;
}

/** Sends bytes as they are and reads the whole answer until the server closes. */
export async function rawExchange(port: number, request: string | Buffer): Promise<RawResponse> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  sock.write(request);
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  await Promise.race([once(sock, 'end'), once(sock, 'close')]);
  sock.destroy();
  return parseResponse(Buffer.concat(chunks).toString('latin1'));
}

export function parseResponse(raw: string): RawResponse {
  const [head, ...rest] = raw.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n'), raw };
}

export function upgradeRequest(path: string, headers: Record<string, string | undefined> = {}): string {
  const base: Record<string, string | undefined> = {
    Host: 'example.com',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(base).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** The value of a metric sample with exactly these labels (0 when absent). */
export async function metricValue(m: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  const v = data.values.find((x) => Object.entries(labels).every(([k, val]) => String((x.labels as Record<string, unknown>)[k]) === val));
  return v?.value ?? 0;
}

/** Resolves when every connection a ws server holds now has closed on its side (ws drops a client from
 *  wss.clients on that same close event). */
export async function released(wss: WebSocketServer): Promise<void> {
  await Promise.all([...wss.clients].map((c) => (c.readyState === WebSocket.CLOSED ? undefined : once(c, 'close'))));
}

/** A gate whose admission, attempts and results go through a started Health, as the data plane wires them. */
export async function startGateWithHealth(routes: readonly RouteObject[]): Promise<{ gate: Gate; health: Health }> {
  // The hooks run only once a client connects, after health below exists.
  const gate = await startGate(routes, {
    hooks: {
      admission: [(ctx) => health.admission(ctx)],
      upstreamAttempt: (ctx, pick) => health.hooks().upstreamAttempt(ctx, pick),
      upstreamResult: (e, ok, info) => health.hooks().upstreamResult(e, ok, info),
    },
  });
  const health = new Health({ holder: gate.holder, log: silentLog, metrics: gate.metrics, connections: (k) => gate.balancer.active.get(k) ?? 0 });
  health.start();
  gate.metrics.onScrape(() => health.collect());
  return { gate, health };
}

/**
 * An endpoint port that refuses every connection for the whole run: TCP port 1 (tcpmux) is privileged and
 * nothing listens on it. A port taken from the kernel and closed again can be handed to another test's listener
 * meanwhile (under the full suite one such port answered 403).
 */
export const refusingPort = 1;
