// Opens the upstream side of a connection: TCP (or TLS) connect under a connect deadline, then the forwarded
// handshake under a handshake deadline. Node's HTTP client parses the answer; a 101 is checked against the
// client's key before the sockets are handed to the relay.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Errors, type WsgateError } from '../errors.ts';
import type { Endpoint } from '../model/snapshot.ts';
import { hasToken } from './handshake-check.ts';
import { maxRelayedBody } from './reject.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface UpstreamTls {
  readonly servername?: string;
  readonly ca?: string;
  readonly rejectUnauthorized: boolean;
}

export interface UpstreamRequest {
  readonly endpoint: Endpoint;
  readonly path: string;
  /** Headers to send in rawHeaders form (name, value, name, value...), already filtered and extended. */
  readonly headers: readonly string[];
  readonly key: string;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly tls?: UpstreamTls;
}

export type UpstreamResult =
  | { readonly kind: 'upgraded'; readonly res: IncomingMessage; readonly socket: Socket; readonly head: Buffer; readonly connectMs: number }
  | { readonly kind: 'response'; readonly res: IncomingMessage; readonly body: Buffer }
  /** connected=false: nothing reached the upstream, another endpoint may be tried. */
  | { readonly kind: 'failed'; readonly error: WsgateError; readonly connected: boolean };

export interface UpstreamAttempt {
  readonly result: Promise<UpstreamResult>;
  /** The client went away: give up and release the upstream socket. */
  abort(): void;
}

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

export function openUpstream(r: UpstreamRequest): UpstreamAttempt {
  let settle!: (v: UpstreamResult) => void;
  const result = new Promise<UpstreamResult>((resolve) => (settle = resolve));
  const started = performance.now();
  let connected = false;
  let done = false;
  const finish = (v: UpstreamResult) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    settle(v);
  };
  const fail = (error: WsgateError) => {
    finish({ kind: 'failed', error, connected });
    req.destroy();
  };
  const options = {
    host: r.endpoint.host,
    port: r.endpoint.port,
    method: 'GET',
    path: r.path,
    headers: r.headers,
    agent: false as const,
    setHost: false,
    ...(r.tls ? { servername: r.tls.servername ?? r.endpoint.host, ca: r.tls.ca, rejectUnauthorized: r.tls.rejectUnauthorized } : {}),
  };
  const req = (r.tls ? https : http).request(options);
  let timer = setTimeout(() => fail(Errors.upstreamTimeout(`connect to ${r.endpoint.address} timed out`)), r.connectTimeoutMs);
  req.on('socket', (socket: Socket) => {
    socket.setNoDelay(true);
    socket.once(r.tls ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => fail(Errors.upstreamTimeout(`${r.endpoint.address} did not answer the handshake in time`)), r.handshakeTimeoutMs);
    });
  });
  req.on('error', (err: NodeJS.ErrnoException) => {
    const e = connected
      ? Errors.upstreamBadHandshake(`${r.endpoint.address}: ${err.code ?? err.message}`, { cause: err })
      : Errors.upstreamRefused(`${r.endpoint.address}: ${err.code ?? err.message}`, { cause: err });
    finish({ kind: 'failed', error: e, connected });
  });
  req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
    if (done) return socket.destroy();
    const accept = res.headers['sec-websocket-accept'];
    if (!hasToken(res.headers.upgrade, 'websocket') || accept !== acceptKey(r.key)) {
      socket.destroy();
      return finish({ kind: 'failed', error: Errors.upstreamBadHandshake(`${r.endpoint.address} sent an invalid 101`), connected: true });
    }
    finish({ kind: 'upgraded', res, socket, head, connectMs: performance.now() - started });
  });
  req.on('response', (res: IncomingMessage) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const end = () => {
      finish({ kind: 'response', res, body: Buffer.concat(chunks) });
      req.destroy();
    };
    res.on('data', (c: Buffer) => {
      if (size >= maxRelayedBody) return;
      chunks.push(c.subarray(0, maxRelayedBody - size));
      size += Math.min(c.length, maxRelayedBody - size);
      if (size >= maxRelayedBody) end();
    });
    res.on('end', end);
    res.on('error', end);
  });
  req.end();
  return { result, abort: () => fail(Errors.upstreamRefused('client went away')) };
}
