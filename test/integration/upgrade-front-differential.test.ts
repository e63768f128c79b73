// The upgrade front's parser against Node's own (llhttp), on generated heads: whatever the fast path takes,
// Node's HTTP server must take as an upgrade too, with the same method, target, version and fields. The fast
// path may refuse more than Node does (those requests go to Node anyway); it must never accept something Node
// would refuse or read differently, or the two paths would disagree about a request (a smuggling risk).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { headEnd, parseUpgradeHead, plausiblePartialHead } from '../../src/proxy/handshake/head.ts';
import { prng } from '../fuzz/prng.ts';

interface Seen {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly version: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: readonly string[];
}

let server: http.Server;
let port = 0;
const waiting: ((s: Seen | string) => void)[] = [];

before(async () => {
  server = http.createServer();
  // Each probe connection sends one head; the answer (an upgrade seen, or Node's refusal) settles its promise.
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    waiting.shift()?.({ method: req.method, url: req.url, version: req.httpVersion, headers: { ...req.headers }, rawHeaders: req.rawHeaders });
    socket.destroy();
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    waiting.shift()?.('a plain request, not an upgrade');
    res.end();
  });
  server.on('clientError', (err: Error, socket: Socket) => {
    waiting.shift()?.(`refused: ${err.message}`);
    socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function nodeSees(bytes: Buffer): Promise<Seen | string> {
  const seen = new Promise<Seen | string>((resolve) => waiting.push(resolve));
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  c.end(bytes);
  const out = await seen;
  c.destroy();
  return out;
}

const tokenChars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const visible = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join('');

function head(rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const str = (chars: string, min: number, max: number) =>
    Array.from({ length: min + Math.floor(rnd() * (max - min + 1)) }, () => chars[Math.floor(rnd() * chars.length)]).join('');
  const ows = () => pick(['', '', ' ', '\t', '  ', ' \t']);
  const value = () => (rnd() < 0.2 ? '' : `${str(visible, 1, 1)}${rnd() < 0.5 ? str(`${visible} \t`, 0, 30) : ''}${str(visible, 0, 1)}`);
  const fields: [string, string][] = [
    [pick(['Host', 'host', 'HOST']), pick(['example.com', 'a.example.com:8080', '[::1]:80'])],
    [pick(['Upgrade', 'upgrade']), pick(['websocket', 'WebSocket', 'h2c, websocket'])],
    [pick(['Connection', 'connection']), pick(['Upgrade', 'keep-alive, Upgrade', 'upgrade'])],
    ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
    ['Sec-WebSocket-Version', '13'],
  ];
  // Distinct names: a repeated field is left to Node on purpose.
  const names = new Set<string>();
  for (let n = Math.floor(rnd() * 6); n > 0; n--) names.add(`X-${str(tokenChars, 1, 12)}`.toLowerCase());
  for (const name of names) fields.push([name, value()]);
  for (let i = fields.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [fields[i], fields[j]] = [fields[j]!, fields[i]!];
  }
  const target = `/${str(`${visible}`.replace(/[#]/g, ''), 0, 24)}`;
  // A tab on the Connection line is the one well-formed case the fast path leaves to Node (see upgrade-head.ts).
  const pad = (k: string) => (k.toLowerCase() === 'connection' ? ows().replaceAll('\t', ' ') : ows());
  return `GET ${target} HTTP/1.1\r\n${fields.map(([k, v]) => `${k}:${pad(k)}${v}${pad(k)}\r\n`).join('')}\r\n`;
}

/** A few bytes changed, put in or taken out, where parsers are known to disagree. */
function mutate(text: string, rnd: () => number): string {
  const odd = ['\r', '\n', '\0', ' ', '\t', ':', ',', '\x7f', '\x80', '\xff', '\r\n', '\r\n ', '"', 'Content-Length: 0\r\n', 'Transfer-Encoding: chunked\r\n', 'Host: evil\r\n'];
  let s = text;
  for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) {
    const at = Math.floor(rnd() * (s.length - 4));
    const r = rnd();
    if (r < 0.5) s = s.slice(0, at) + odd[Math.floor(rnd() * odd.length)] + s.slice(at);
    else if (r < 0.8) s = s.slice(0, at) + s.slice(at + 1);
    else s = s.slice(0, at) + odd[Math.floor(rnd() * odd.length)] + s.slice(at + 1);
  }
  return s;
}

function fastPath(text: string) {
  const buf = Buffer.from(text, 'latin1');
  const end = headEnd(buf);
  return end < 0 ? undefined : parseUpgradeHead(buf, end, {} as Socket);
}

test('every head the fast path takes, Node takes as the same upgrade; well-formed heads are all taken', async () => {
  const rnd = prng(20261130);
  let taken = 0;
  let mutatedTaken = 0;
  let mutatedLeft = 0;
  for (let i = 0; i < 600; i++) {
    const plain = head(rnd);
    const text = i % 2 === 0 ? plain : mutate(plain, rnd);
    const fast = fastPath(text);
    if (i % 2 === 0) {
      assert.ok(fast, `a well-formed upgrade was left to Node: ${JSON.stringify(text)}`);
      // A client sending it a byte at a time is kept waiting for the rest, never handed over half-way.
      for (let cut = 1; cut < text.length - 1; cut += 7) assert.ok(plausiblePartialHead(Buffer.from(text.slice(0, cut), 'latin1')), `cut ${cut} of ${JSON.stringify(text)}`);
    } else if (fast) mutatedTaken++;
    else mutatedLeft++;
    if (!fast) continue;
    taken++;
    const node = await nodeSees(Buffer.from(text, 'latin1'));
    assert.notEqual(typeof node, 'string', `fast path took what Node ${String(node)}: ${JSON.stringify(text)}`);
    const seen = node as Seen;
    assert.deepEqual(
      { method: fast.method, url: fast.url, version: `${fast.httpVersionMajor}.${fast.httpVersionMinor}`, headers: { ...fast.headers }, rawHeaders: fast.rawHeaders },
      seen,
      JSON.stringify(text),
    );
  }
  process.stdout.write(`# ${taken} heads compared with Node's parser; mutated: ${mutatedTaken} taken, ${mutatedLeft} left to Node\n`);
  assert.ok(mutatedLeft > 100, 'most mutations leave the plain shape');
});
