// The request header block sent upstream: the client's headers minus hop-by-hop ones, rewritten by the matched
// rule's requestHeaders, the upgrade pair set explicitly, X-Forwarded-For/Proto/Host, Forwarded (RFC 7239),
// X-Real-IP, and the correlation ids (X-Request-Id, W3C traceparent) kept from the client when valid or started
// here. The schema keeps a rewrite off every header written here; the admission checks' drops win over it (a
// credential the route keeps from the backend stays out even when the rewrite names it).
import { randomFillSync, randomUUID } from 'node:crypto';
import type { RequestHeaderRewrite } from '../../model/route.ts';
import { unmap } from '../../util/cidr.ts';
import type { HandshakeContext } from '../hooks.ts';
import type { UpgradeRequest } from './head.ts';
import { hopByHop } from './refusal.ts';

export interface Correlation {
  readonly requestId: string;
  readonly traceparent: string;
}

const traceparentPattern = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;
const requestIdPattern = /^[\x21-\x7e]{1,200}$/;

/** ids: where new trace ids come from (the proxy keeps one pool; without it each id is its own draw). */
export function correlation(req: UpgradeRequest, ids?: TraceIds): Correlation {
  const rid = req.headers['x-request-id'];
  const tp = req.headers.traceparent;
  return {
    requestId: typeof rid === 'string' && requestIdPattern.test(rid) ? rid : randomUUID(),
    traceparent: typeof tp === 'string' && traceparentPattern.test(tp) ? tp : (ids ?? new TraceIds(TRACE_BYTES)).traceparent(),
  };
}

const TRACE_BYTES = 24;
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** New W3C traceparents from a pool of random bytes refilled in one call: randomBytes() per handshake cost
 *  about 10 µs each (as randomUUID() avoids with its own pool). Each id is encoded into one flat string: a
 *  template literal would leave a tree of string parts, and the id lives as long as its connection. */
export class TraceIds {
  readonly #pool: Buffer;
  readonly #text = Buffer.from('00-00000000000000000000000000000000-0000000000000000-01', 'latin1');
  #offset: number;

  constructor(poolBytes = TRACE_BYTES * 256) {
    this.#pool = Buffer.allocUnsafe(Math.max(TRACE_BYTES, poolBytes - (poolBytes % TRACE_BYTES)));
    this.#offset = this.#pool.length;
  }

  traceparent(): string {
    if (this.#offset + TRACE_BYTES > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const pool = this.#pool;
    const text = this.#text;
    const o = this.#offset;
    this.#offset += TRACE_BYTES;
    // trace-id at 3..34, parent-id at 36..51.
    for (let i = 0; i < TRACE_BYTES; i++) {
      const at = i < 16 ? 3 + 2 * i : 4 + 2 * i;
      text[at] = HEX[pool[o + i] >> 4];
      text[at + 1] = HEX[pool[o + i] & 15];
    }
    return text.toString('latin1');
  }
}

export interface ForwardOptions {
  readonly clientIp: string;
  readonly secure: boolean;
  readonly correlation: Correlation;
  /** Lower-case header names to leave out (e.g. credentials the route does not forward). */
  readonly drop?: ReadonlySet<string>;
  /** Replacements and additions, in rawHeaders form. */
  readonly extra?: readonly string[];
  /** Keep the client's X-Forwarded-For chain (it came through a trusted proxy). */
  readonly trustForwarded: boolean;
  readonly upgrade: boolean;
  /** The matched rule's requestHeaders; absent: none. */
  readonly rewrite?: RequestHeaderRewrite;
}

// X-Real-IP is set here from the resolved client address, never taken from a client: backends read it as the
// client's address, and a client could claim any.
const replaced = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'x-request-id', 'traceparent']);

/** The request's headers for the upstream, with what the admission checks decided (drops, extras, client). */
export function contextHeaders(ctx: HandshakeContext, upgrade: boolean): string[] {
  return forwardHeaders(ctx.req, {
    clientIp: ctx.clientIp,
    secure: ctx.secure,
    correlation: ctx.correlation,
    drop: ctx.forward.drop,
    extra: ctx.forward.extra,
    trustForwarded: ctx.trustForwarded ?? false,
    upgrade,
    ...(ctx.match.rule.requestHeaders ? { rewrite: ctx.match.rule.requestHeaders } : {}),
  });
}

export function forwardHeaders(req: UpgradeRequest, o: ForwardOptions): string[] {
  const out: string[] = [];
  // Headers named in Connection are hop-by-hop for this request too.
  const listed = new Set((req.headers.connection ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
  let priorXff: string | undefined;
  let priorForwarded: string | undefined;
  const rw = o.rewrite;
  /** Where in `out` the value of the client's last header of each appended name is. */
  let appendAt: Map<string, number> | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lk = raw[i].toLowerCase();
    if (lk === 'x-forwarded-for') {
      priorXff = priorXff ? `${priorXff}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    if (lk === 'forwarded') {
      priorForwarded = priorForwarded ? `${priorForwarded}, ${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    if (hopByHop.has(lk) || listed.has(lk) || replaced.has(lk) || o.drop?.has(lk)) continue;
    if (rw) {
      if (rw.drop.includes(lk)) continue;
      if (rw.append.some((h) => h.lower === lk)) (appendAt ??= new Map()).set(lk, out.length + 1);
    }
    out.push(raw[i], raw[i + 1]);
  }
  if (rw) rewritten(out, rw, appendAt, o.drop);
  if (o.upgrade) out.push('Connection', 'Upgrade', 'Upgrade', 'websocket');
  out.push('X-Forwarded-For', o.trustForwarded && priorXff ? `${priorXff}, ${o.clientIp}` : o.clientIp);
  out.push('X-Forwarded-Proto', o.secure ? 'https' : 'http');
  if (req.headers.host) out.push('X-Forwarded-Host', req.headers.host);
  // RFC 7239 §4: each proxy appends its element to a chain it received; a chain from an untrusted client is
  // replaced, as X-Forwarded-For is. "for" is the node that sent this request to wsgate (§5.2): the socket peer.
  const element = forwardedElement(socketAddress(req.socket?.remoteAddress) || o.clientIp, req.headers.host, o.secure);
  out.push('Forwarded', o.trustForwarded && priorForwarded ? `${priorForwarded}, ${element}` : element);
  out.push('X-Real-IP', o.clientIp);
  out.push('X-Request-Id', o.correlation.requestId, 'traceparent', o.correlation.traceparent);
  if (o.extra) out.push(...o.extra);
  return out;
}

function rewritten(out: string[], rw: RequestHeaderRewrite, appendAt: ReadonlyMap<string, number> | undefined, drop: ReadonlySet<string> | undefined): void {
  for (const h of rw.put) if (!drop?.has(h.lower)) out.push(h.name, h.value);
  for (const h of rw.append) {
    if (drop?.has(h.lower)) continue;
    const at = appendAt?.get(h.lower);
    // The Gateway API's add: "my-header: foo" plus "bar,baz" is "my-header: foo,bar,baz".
    if (at === undefined) out.push(h.name, h.value);
    else out[at] = out[at] === '' ? h.value : `${out[at]},${h.value}`;
  }
}

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** One RFC 7239 forwarded-element: IPv6 nodes bracketed and quoted (§6), a host with a port quoted (§4). */
export function forwardedElement(peer: string, host: string | undefined, secure: boolean): string {
  const node = peer.includes(':') ? `"[${peer}]"` : peer || 'unknown';
  const h = host === undefined ? '' : token.test(host) ? `;host=${host}` : `;host="${host.replace(/["\\]/g, '\\$&')}"`;
  return `for=${node}${h};proto=${secure ? 'https' : 'http'}`;
}

/** The 101 sent back: the upstream's headers (minus hop-by-hop), the upgrade pair and any extras. */
export function switchingProtocols(res: { readonly rawHeaders: readonly string[] }, extra: readonly string[]): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (hopByHop.has(raw[i].toLowerCase())) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  return head + '\r\n';
}

/** The socket's address without the IPv4-mapped prefix. */
export function socketAddress(addr: string | undefined): string {
  return addr ? unmap(addr) : '';
}
