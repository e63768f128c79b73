// Opens the upstream side of a connection: TCP (or TLS) connect under a connect deadline, then the forwarded
// handshake under a handshake deadline. The request head goes out in one write and the answer is parsed from the
// socket's bytes (upstream-handshake.ts) rather than through Node's HTTP client, whose per-request machinery cost
// more CPU than the rest of the handshake and whose objects stayed reachable from every upgraded socket. A 101 is
// checked against the client's key before the socket is handed to the relay.
import { hash } from 'node:crypto';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { Errors, type WsgateError } from '../../errors.ts';
import type { Endpoint } from '../../model/snapshot.ts';
import type { Clock } from '../../util/clock.ts';
import { hasToken } from '../handshake/checks.ts';
import { maxRelayedBody } from '../handshake/refusal.ts';
import { BodyReader, HeadError, ResponseHeadParser, type UpstreamHead } from './handshake.ts';

export type { UpstreamHead } from './handshake.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const EMPTY = Buffer.alloc(0);
// What Node's ClientRequest refuses to send (it would throw ERR_INVALID_CHAR / ERR_UNESCAPED_CHARACTERS).
const badHeaderValue = /[^\t\x20-\x7e\x80-\xff]/;
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badPath = /[^\u0021-\u00ff]/;

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
  /** The process's clock, for the connect and handshake timeouts. */
  readonly clock: Clock;
}

export type UpstreamResult =
  /** head: bytes the upstream sent after its 101 (its first frames), owned by the receiver. */
  | { readonly kind: 'upgraded'; readonly res: UpstreamHead; readonly socket: Socket; readonly head: Buffer; readonly connectMs: number }
  | { readonly kind: 'response'; readonly res: UpstreamHead; readonly body: Buffer }
  /** connected=false: nothing reached the upstream, another endpoint may be tried. local: the connect failed for
   *  want of this process's own resources (localExhaustion), which says nothing about the endpoint. */
  | { readonly kind: 'failed'; readonly error: WsgateError; readonly connected: boolean; readonly local?: string };

// Connect errors that mean this process (or its host) ran out of something — descriptors, ephemeral ports, socket
// buffers — not that the endpoint refused: errno(3) EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS.
const localErrors = new Set(['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']);

/** The errno code of a connect error that is wsgate's own overload, or undefined. */
export function localExhaustion(err: NodeJS.ErrnoException): string | undefined {
  return err.code !== undefined && localErrors.has(err.code) ? err.code : undefined;
}

export interface UpstreamAttempt {
  readonly result: Promise<UpstreamResult>;
  /** The client went away: give up and release the upstream socket. */
  abort(): void;
}

// One-shot hash(): createHash() builds a Hash object (a stream) per call, about three times the cost.
export function acceptKey(key: string): string {
  return hash('sha1', key + GUID, 'base64');
}

/** The request head, as Node's ClientRequest would write it for these headers (no Host added: the client's is
 *  among them). Throws a TypeError for what Node would refuse. */
export function requestHead(path: string, headers: readonly string[]): string {
  if (badPath.test(path)) throw new TypeError('request path contains unescaped characters');
  let head = `GET ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    const value = headers[i + 1];
    if (!headerName.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (badHeaderValue.test(value)) throw new TypeError(`invalid character in header ${name}`);
    head += `${name}: ${value}\r\n`;
  }
  return head + '\r\n';
}

// The upgraded socket keeps this one shared listener between the hand-over and the relay's own, so an error in
// that gap is never unhandled; it holds nothing per connection.
function ignoreError(): void {}

export function openUpstream(r: UpstreamRequest): UpstreamAttempt {
  const head = requestHead(r.path, r.headers);
  let settle!: (v: UpstreamResult) => void;
  const result = new Promise<UpstreamResult>((resolve) => (settle = resolve));
  // A measurement for wsgate_upstream_connect_duration_seconds, not a deadline: its buckets start at 0.1 ms,
  // finer than the clock's whole milliseconds, and nothing is decided on it.
  const started = performance.now();
  const address = r.endpoint.address;
  let connected = false;
  let done = false;
  let parser: ResponseHeadParser | undefined = new ResponseHeadParser();
  let response: UpstreamHead | undefined;
  let body: BodyReader | undefined;

  const socket: Socket = r.tls
    ? tls.connect({ host: r.endpoint.host, port: r.endpoint.port, ...upstreamTlsOptions(r.tls, r.endpoint) })
    : // noDelay as an option: set once the connection is up; setNoDelay() here would set it twice (now and then).
      net.connect({ host: r.endpoint.host, port: r.endpoint.port, noDelay: true });
  if (r.tls) socket.setNoDelay(true);

  const detach = () => {
    r.clock.clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off(r.tls ? 'secureConnect' : 'connect', onConnect);
    socket.off('error', onError);
  };
  const finish = (v: UpstreamResult) => {
    if (done) return;
    done = true;
    detach();
    parser = undefined;
    body = undefined;
    if (v.kind !== 'upgraded') socket.destroy();
    settle(v);
  };
  const fail = (error: WsgateError) => finish({ kind: 'failed', error, connected });
  const onConnect = () => {
    connected = true;
    r.clock.clearTimeout(timer);
    timer = r.clock.setTimeout(() => fail(Errors.upstreamTimeout(`${address} did not answer the handshake in time`)), r.handshakeTimeoutMs);
  };
  const onError = (err: NodeJS.ErrnoException) => {
    const detail = `${address}: ${err.code ?? err.message}`;
    const local = localExhaustion(err);
    if (local && !connected) return finish({ kind: 'failed', error: Errors.overloaded(`no local resources to connect upstream: ${local}`, { cause: err }), connected, local });
    fail(connected ? Errors.upstreamBadHandshake(detail, { cause: err }) : Errors.upstreamRefused(detail, { cause: err }));
  };
  const onEnd = () => {
    if (done) return;
    if (body && response) return finish({ kind: 'response', res: response, body: body.end() });
    fail(connected ? Errors.upstreamBadHandshake(`${address}: closed before answering the handshake`) : Errors.upstreamRefused(`${address}: closed before connecting`));
  };
  const onData = (chunk: Buffer) => {
    if (done) return;
    try {
      if (body && response) {
        if (body.push(chunk)) finish({ kind: 'response', res: response, body: body.body });
        return;
      }
      const got = parser?.push(chunk);
      if (!got) return;
      response = got.head;
      if (response.statusCode === 101) return upgraded(response, got.rest);
      body = new BodyReader(response, maxRelayedBody);
      if (body.done || body.push(got.rest)) finish({ kind: 'response', res: response, body: body.body });
    } catch (err) {
      if (!(err instanceof HeadError)) throw err;
      // A head that parsed is relayed with the body that came before the framing broke, as Node's client did.
      if (body && response) return finish({ kind: 'response', res: response, body: body.end() });
      fail(Errors.upstreamBadHandshake(`${address}: ${err.message}`, { cause: err }));
    }
  };
  const upgraded = (res: UpstreamHead, rest: Buffer) => {
    if (!hasToken(res.headers.upgrade, 'websocket') || res.headers['sec-websocket-accept'] !== acceptKey(r.key)) {
      return fail(Errors.upstreamBadHandshake(`${address} sent an invalid 101`));
    }
    // The relay listens (and resumes) in the same turn of the event loop; until then the socket buffers.
    socket.pause();
    socket.on('error', ignoreError);
    // Copied: `rest` is a view of the socket's read buffer, which the relay would otherwise keep alive.
    const leftover = rest.length === 0 ? EMPTY : Buffer.from(rest);
    finish({ kind: 'upgraded', res, socket, head: leftover, connectMs: performance.now() - started });
  };

  let timer = r.clock.setTimeout(() => fail(Errors.upstreamTimeout(`connect to ${address} timed out`)), r.connectTimeoutMs);
  socket.on(r.tls ? 'secureConnect' : 'connect', onConnect);
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
  // Queued until the connection (and TLS) is up, then sent in one segment.
  socket.write(head, 'latin1');
  return { result, abort: () => fail(Errors.upstreamRefused('client went away')) };
}

/** The TLS client options for an upstream endpoint: the route's CA bundle, name and verification, for the
 *  upgrade (above) and the HTTP fallback alike. */
export function upstreamTlsOptions(t: UpstreamTls, endpoint: Pick<Endpoint, 'host'>): Pick<tls.ConnectionOptions, 'servername' | 'ca' | 'rejectUnauthorized'> {
  const name = t.servername ?? endpoint.host;
  return {
    // SNI may not carry an IP address (RFC 6066); the certificate is then checked against the host.
    ...(sni(name) ? { servername: name } : {}),
    ...(t.ca !== undefined ? { ca: t.ca } : {}),
    rejectUnauthorized: t.rejectUnauthorized,
  };
}

function sni(name: string): boolean {
  return name !== '' && net.isIP(name) === 0;
}
