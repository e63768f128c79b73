// Fuzzing the handshake path on a live proxy: generated and mutated request byte streams (header pools with
// credentials, forwarding headers, smuggling signs, duplicate Host; then bits flipped, bytes inserted, lines
// duplicated or cut, oversized values), written in random chunks over real sockets to a proxy with every
// security check enabled.
//
// The documented outcome, checked on every input: the connection ends (no hang, bounded per input) and what
// came back is nothing at all, or a status of src/errors.ts (or 101) whose non-101 answers carry
// wsgate-reason; after a 101 the proxy answers our close frame and closes. The process must not crash: an
// uncaught exception fails the run. Deterministic inputs for a given seed.
import { prng } from './prng.ts';
import { once } from 'node:events';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { createBuilder } from '../../src/dag/build.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { MessageLimits } from '../../src/policy/message-limits.ts';
import { routeObject, silentLog, startGate } from '../support/harness.ts';

export interface HandshakeFuzzResult {
  readonly iterations: number;
  readonly byStatus: Readonly<Record<string, number>>;
  readonly failures: readonly string[];
}

const documented = new Set([101, 400, 401, 403, 404, 408, 426, 429, 431, 502, 503, 504]);


const apiKey = 'fuzz-api-key';

export function generate(rnd: () => number): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const method = rnd() < 0.9 ? 'GET' : pick(['POST', 'PUT', 'get', 'GET GET', '', 'CONNECT', 'PRI']);
  const path = pick(['/open', '/key', '/jwt', '/origin', '/ip', '/rate', '/nowhere', '/', '/open?x=1&access_token=a.b.c', '*', 'http://example.com/open', '/open%00', '//..//']);
  const version = rnd() < 0.9 ? 'HTTP/1.1' : pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'HTTP/9', '']);
  const headers: [string, string][] = [];
  if (rnd() < 0.95) headers.push(['Host', rnd() < 0.9 ? 'example.com' : pick(['', 'example.com:99999', 'a b', '[::1]', 'EXAMPLE.COM.', 'x'.repeat(300)])]);
  if (rnd() < 0.9) headers.push(['Upgrade', pick(['websocket', 'WebSocket', 'h2c', 'websocket, foo', ''])]);
  if (rnd() < 0.9) headers.push(['Connection', pick(['Upgrade', 'keep-alive, Upgrade', 'close', 'upgrade, x-api-key'])]);
  if (rnd() < 0.9) headers.push(['Sec-WebSocket-Key', rnd() < 0.85 ? 'dGhlIHNhbXBsZSBub25jZQ==' : pick(['', 'short', 'dGhlIHNhbXBsZSBub25jZQ', '!!!!!!!!!!!!!!!!!!!!!!==', 'a'.repeat(24)])]);
  if (rnd() < 0.9) headers.push(['Sec-WebSocket-Version', rnd() < 0.9 ? '13' : pick(['8', '', '13, 8', '-1'])]);
  const extras: (() => [string, string])[] = [
    () => ['Content-Length', pick(['0', '5', '-1', '1e3', ''])],
    () => ['Transfer-Encoding', pick(['chunked', 'identity', 'chunked, gzip'])],
    () => ['Host', 'evil.example'],
    () => ['Origin', pick(['https://a.example.com', 'https://evil.com', 'null', '', 'https://*.example.com'])],
    () => ['X-Forwarded-For', pick(['10.1.2.3', '6.6.6.6, 10.0.0.1', 'garbage', '::1', '1.2.3.4:80, [::1]:443'])],
    () => ['Authorization', pick(['Bearer a.b.c', 'Bearer', 'Basic Zm9vOmJhcg==', `Bearer ${'x'.repeat(2000)}`])],
    () => ['X-Api-Key', pick([apiKey, 'wrong', ''])],
    () => ['Sec-WebSocket-Protocol', pick(['access_token, a.b.c', 'chat', 'access_token', ', ,', 'chat, access_token, x.y.z'])],
    () => ['Cookie', pick(['access_token=a.b.c', 'a=1; b', '=;=;'])],
    () => ['Sec-WebSocket-Extensions', pick(['permessage-deflate', 'permessage-deflate; client_max_window_bits', 'x; y=', ''])],
    () => ['X-Big', 'a'.repeat(Math.floor(rnd() * 20000))],
  ];
  const n = Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) headers.push(pick(extras)());
  let text = `${method} ${path} ${version}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  if (rnd() < 0.1) text += pick(['hello', '\x81\x85\x00\x00\x00\x00hello', 'GET / HTTP/1.1\r\n\r\n']);
  let buf = Buffer.from(text, 'latin1');
  const mutations = rnd() < 0.5 ? 0 : 1 + Math.floor(rnd() * 4);
  for (let m = 0; m < mutations && buf.length > 0; m++) {
    const at = Math.floor(rnd() * buf.length);
    const kind = Math.floor(rnd() * 6);
    if (kind === 0) buf[at] = buf[at]! ^ (1 << Math.floor(rnd() * 8));
    else if (kind === 1) buf = Buffer.concat([buf.subarray(0, at), Buffer.from(pick(['\r\n', '\n', '\0', '\r', ':', ' ', '\xff', '\r\n\r\n']), 'latin1'), buf.subarray(at)]);
    else if (kind === 2) buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + Math.floor(rnd() * 8))]);
    else if (kind === 3) buf = buf.subarray(0, at);
    else if (kind === 4) {
      const end = Math.min(buf.length, at + Math.floor(rnd() * 40));
      buf = Buffer.concat([buf.subarray(0, end), buf.subarray(at, end), buf.subarray(end)]);
    } else buf[at] = Math.floor(rnd() * 256);
  }
  return buf;
}

/** Runs `iterations` inputs against a fresh proxy; resolves with counts and any failure descriptions. */
export async function fuzzHandshakes(iterations: number, seed = 1, concurrency = 32, perInputMs = 5000): Promise<HandshakeFuzzResult> {
  const upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(upstream, 'listening');
  upstream.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (d, b) => ws.send(d as Buffer, { binary: b }));
  });
  const addr = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const r = (name: string, extra: Record<string, unknown>) =>
    routeObject(name, { hostnames: ['example.com'], rules: [{ matches: [{ path: { value: `/${name}` } }], backendRefs: [{ endpoints: [addr] }] }], ...extra });
  const routes = [
    r('open', { rateLimit: { messagesPerSecond: 100, onExceed: 'Throttle' } }),
    r('key', { auth: { apiKey: { secretName: 'keys', header: 'X-Api-Key', queryParam: 'k' } } }),
    r('jwt', { auth: { jwt: { secretName: 'jwt', tokenSources: [{ type: 'Header' }, { type: 'Subprotocol' }, { type: 'Query' }, { type: 'Cookie' }] } } }),
    r('origin', { allowedOrigins: ['https://*.example.com'], allowMissingOrigin: false }),
    r('ip', { clientIPs: { allow: ['10.0.0.0/8'], deny: ['6.6.6.6'] } }),
    r('rate', { rateLimit: { connectionsPerMinutePerIP: 5 }, limits: { maxConnectionsPerIP: 2 } }),
  ];
  const security = createSecurity({ trustedProxies: ['127.0.0.1/32'], log: silentLog });
  const limits = new MessageLimits();
  const gate = await startGate([], { hooks: { admission: security.admission, established: limits.established }, handshakeTimeoutMs: 300, maxHeaderBytes: 8192, closeTimeoutMs: 500 });
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  gate.holder.publish(createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes, services: [], endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'keys' }, data: { a: b64(apiKey) } }, { metadata: { namespace: 'default', name: 'jwt' }, data: { key: b64('0123456789abcdef0123456789abcdef') } }],
  }).content);

  const failures: string[] = [];
  const byStatus: Record<string, number> = {};
  const crash = (err: unknown) => failures.push(`uncaught: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', crash);
  const rnd = prng(seed);
  let next = 0;
  const one = async (input: Buffer, chunkSeed: number): Promise<void> => {
    const cr = prng(chunkSeed);
    const sock = net.connect(gate.port, '127.0.0.1');
    sock.on('error', () => {});
    const chunks: Buffer[] = [];
    let sentClose = false;
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      if (sentClose) return;
      const head = Buffer.concat(chunks).toString('latin1');
      if (head.startsWith('HTTP/1.1 101')) {
        // After a 101, ask for a clean close the way a client would.
        sentClose = true;
        sock.write(Buffer.from([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]));
      } else if (head.includes('\r\n\r\n')) {
        // An answered plain request may be kept alive for the next one: we have none.
        sentClose = true;
        sock.end();
      }
    });
    const done = new Promise<void>((res) => sock.once('close', () => res()));
    const connected = await new Promise<boolean>((res) => {
      sock.once('connect', () => res(true));
      sock.once('close', () => res(false));
    });
    if (!connected) {
      byStatus.connectFailed = (byStatus.connectFailed ?? 0) + 1;
      return;
    }
    for (let i = 0; i < input.length; ) {
      const n = 1 + Math.floor(cr() * Math.max(1, input.length / 2));
      sock.write(input.subarray(i, i + n));
      i += n;
    }
    // Half-close unless a 101 may come: an incomplete request then ends at once instead of at the deadline.
    if (cr() < 0.5) sock.end();
    let timer: NodeJS.Timeout | undefined;
    const hung = await Promise.race([done.then(() => false), new Promise<boolean>((res) => (timer = setTimeout(() => res(true), perInputMs)))]);
    clearTimeout(timer);
    const text = Buffer.concat(chunks).toString('latin1');
    if (hung) {
      sock.destroy();
      failures.push(`hang: ${JSON.stringify(input.toString('latin1').slice(0, 300))} got ${JSON.stringify(text.slice(0, 100))}`);
      return;
    }
    if (text.length === 0) {
      byStatus.closed = (byStatus.closed ?? 0) + 1;
      return;
    }
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
    const status = m ? Number(m[1]) : NaN;
    byStatus[String(status)] = (byStatus[String(status)] ?? 0) + 1;
    if (!documented.has(status)) failures.push(`status ${status}: ${JSON.stringify(input.toString('latin1').slice(0, 300))} → ${JSON.stringify(text.slice(0, 200))}`);
    else if (status !== 101 && !/\r\nwsgate-reason: [a-z_]+\r\n/i.test(text.split('\r\n\r\n')[0] + '\r\n')) {
      failures.push(`no wsgate-reason on ${status}: ${JSON.stringify(input.toString("latin1").slice(0, 300))} → ${JSON.stringify(text.slice(0, 200))}`);
    }
  };
  const worker = async () => {
    while (next < iterations && failures.length < 20) {
      next++;
      const input = generate(rnd);
      await one(input, Math.floor(rnd() * 2 ** 31));
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    process.off('uncaughtException', crash);
    await gate.close();
    upstream.close();
  }
  return { iterations: next, byStatus, failures };
}
