// The fast path's parser of a client's opening handshake: only the plain, well-formed shape every WebSocket client
// sends (GET, origin-form target, HTTP/1.1, CRLF lines, visible ASCII, no repeated field, no body framing).
// Anything else is not an error here: it is handed, byte for byte, to Node's HTTP server, which answers it as it
// always did (400, 431, 426, the HTTP fallback...). Keeping the accepted shape this narrow is what lets the fast
// path skip llhttp and IncomingMessage without changing what any request gets back.
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { hasToken } from './checks.ts';

/** The parts of a request the handshake reads (the same names as IncomingMessage's). */
export interface UpgradeRequest {
  // Optional as in IncomingMessage, so that one is an UpgradeRequest too.
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** Lower-case names; each field appears once on the fast path. */
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly socket: Socket;
}

/** More fields than any browser or client library sends; a request with more goes to Node's parser. */
const MAX_FIELDS = 64;
const requestLine = /^GET (\/[!-~]*) HTTP\/1\.1$/;
const fieldName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Anything but visible ASCII, SP, HTAB and the CRLFs between lines (obs-text, NUL, other controls).
const unusual = /[^\t\r\n\x20-\x7e]/;
// A CR or LF that is not part of a CRLF pair.
const bareCrLf = /\r(?!\n)|(?<!\r)\n/;
// One whole field line: name, colon, OWS, a value of visible ASCII with SP/HTAB inside, OWS. A CR or LF left in
// a line split at CRLF, obs-text or any other control character fails it, as a space before the colon does.
const fieldLine = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*((?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?)[\t ]*$/;
// Fields Node treats specially (arrays, framing) or whose duplicates it resolves: Node's parser decides those.
const nodeDecides = new Set(['content-length', 'transfer-encoding', 'set-cookie']);

/** Index of the CRLF CRLF ending the head, or -1. */
export function headEnd(buf: Buffer): number {
  return buf.indexOf('\r\n\r\n', 0, 'latin1');
}

/**
 * Whether an incomplete head may still become one the fast path takes. Anything else goes to Node's parser at
 * once, which refuses garbage as soon as it sees it (400) instead of at the deadline.
 */
export function plausiblePartialHead(buf: Buffer): boolean {
  const text = buf.toString('latin1');
  // A CR at the very end may be the first half of a CRLF still to come.
  const whole = text.endsWith('\r') ? text.slice(0, -1) : text;
  if (unusual.test(text) || bareCrLf.test(whole)) return false;
  const lines = whole.split('\r\n');
  if (lines.length - 1 > MAX_FIELDS + 1) return false;
  // Complete lines must be what parseUpgradeHead takes; the last one, still arriving, a beginning of it. A line
  // whose CR has come is complete for Node's parser (the LF is all it still expects).
  const last = lines.length - 1;
  const lastDone = whole !== text;
  if (!(last === 0 && !lastDone ? requestLineStart(lines[0]) : requestLine.test(lines[0]))) return false;
  for (let i = 1; i <= last; i++) {
    const done = i < last || lastDone;
    // The blank line ending the head.
    if (i === last && lines[i] === '') continue;
    const colon = lines[i].indexOf(':');
    if (done && colon <= 0) return false;
    const name = colon < 0 ? lines[i] : lines[i].slice(0, colon);
    if (!fieldName.test(name)) return false;
    // Node refuses a bad Content-Length or Transfer-Encoding as the value arrives: it reads these from the start.
    if (colon > 0 && nodeDecides.has(name.toLowerCase())) return false;
  }
  return true;
}

function requestLineStart(line: string): boolean {
  if (line.length <= 5) return 'GET /'.startsWith(line);
  const m = /^GET \/[!-~]*(?: (.*))?$/.exec(line);
  return m !== null && (m[1] === undefined || 'HTTP/1.1'.startsWith(m[1]));
}

/** The request in buf[0, end) when it is a plain WebSocket upgrade, else undefined (Node's parser decides). */
export function parseUpgradeHead(buf: Buffer, end: number, socket: Socket): UpgradeRequest | undefined {
  // One pass per line: the request line's and field lines' patterns admit no stray CR, LF or control.
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  if (lines.length - 1 > MAX_FIELDS) return undefined;
  const m = requestLine.exec(lines[0]);
  if (!m) return undefined;
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const rawHeaders: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const f = fieldLine.exec(lines[i]);
    if (!f) return undefined;
    const name = f[1];
    const value = f[2];
    const lk = name.toLowerCase();
    if (headers[lk] !== undefined || nodeDecides.has(lk)) return undefined;
    // llhttp does not see the upgrade token when a tab follows it, even as trailing whitespace ("Upgrade\t"): Node
    // takes such a request as a plain one. Leaving a tabbed Connection line to Node keeps both paths' answers equal.
    if (lk === 'connection' && lines[i].includes('\t')) return undefined;
    headers[lk] = value;
    rawHeaders.push(name, value);
  }
  // A request that is not an upgrade is Node's: the HTTP fallback, 426, 404...
  if (!hasToken(headers.upgrade, 'websocket') || !hasToken(headers.connection, 'upgrade')) return undefined;

  return { method: 'GET', url: m[1], httpVersionMajor: 1, httpVersionMinor: 1, headers, rawHeaders, socket };
}
