// The one place that answers a refused handshake or request on the wire: status, short text body and the
// reason in a wsgate-reason header (the README's status table). Also relays an upstream's non-101 answer as it is.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { WsgateError } from '../../errors.ts';

export function rejectUpgrade(socket: Duplex, err: WsgateError): void {
  if (socket.destroyed) return;
  const body = `${err.message}\n`;
  let head = `HTTP/1.1 ${err.httpStatus} ${STATUS_CODES[err.httpStatus] ?? ''}\r\n`;
  head += `wsgate-reason: ${err.reason}\r\ncontent-type: text/plain; charset=utf-8\r\n`;
  head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(err.headers)) head += `${k}: ${v}\r\n`;
  socket.end(head + '\r\n' + body);
  // A client that never reads must not keep the socket: end() flushes, destroy() follows when it is done.
  socket.once('finish', () => socket.destroy());
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy. */
export const hopByHop = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization',
]);

export const maxRelayedBody = 64 * 1024;

/** An upstream's non-101 answer reaches the client as it is: status, headers, body capped at 64 KiB. */
export function relayUpstreamResponse(socket: Duplex, res: Pick<IncomingMessage, 'statusCode' | 'statusMessage'> & { readonly rawHeaders: readonly string[] }, body: Buffer): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const k = res.rawHeaders[i];
    const lk = k.toLowerCase();
    if (hopByHop.has(lk) || lk === 'content-length') continue;
    head += `${k}: ${res.rawHeaders[i + 1]}\r\n`;
  }
  head += `wsgate-reason: upstream_status\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  socket.once('finish', () => socket.destroy());
}
