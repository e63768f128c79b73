// The upstream's answer to the forwarded upgrade, parsed from raw socket bytes. Node's HTTP client (ClientRequest,
// the agent machinery, an IncomingMessage per answer) cost more CPU per handshake than the rest of the proxy
// together and left objects behind on every upgraded socket; the answer to one GET is small enough to parse here.
//
// ResponseHeadParser: status line and header fields, incrementally, capped (HEAD_CAP). BodyReader: the body of a
// non-101 answer by Content-Length, chunked or until close, capped (the proxy relays at most maxRelayedBody).

/** Largest response head accepted from an upstream (status line and fields). */
export const HEAD_CAP = 16 * 1024;

/** What the proxy needs from an upstream's answer. rawHeaders: name, value, name, value... as received; headers:
 *  lower-case names, repeated fields joined with ", " (Set-Cookie included: only rawHeaders is relayed). */
export interface UpstreamHead {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly rawHeaders: readonly string[];
  readonly headers: Readonly<Record<string, string | undefined>>;
}

export class HeadError extends Error {}

const EMPTY = Buffer.alloc(0);
const LF = 0x0a;
const CR = 0x0d;
const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;
// RFC 9110 token for names; field values: visible ASCII, obs-text, SP and HTAB (what llhttp accepts).
const fieldName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const badValue = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Feed chunks until it returns a head; `rest` is what followed the head in the last chunk (a view of it: copy it
 * before keeping it). 1xx answers other than 101 are skipped, as Node's client does. Throws HeadError on anything
 * that is not an HTTP/1.x response head within HEAD_CAP.
 */
export class ResponseHeadParser {
  #pending: Buffer | undefined;

  push(chunk: Buffer): { head: UpstreamHead; rest: Buffer } | undefined {
    let buf = chunk;
    let from = 0;
    if (this.#pending) {
      // Look again from just before the join: the blank line may straddle it.
      from = Math.max(0, this.#pending.length - 2);
      buf = Buffer.concat([this.#pending, chunk]);
      this.#pending = undefined;
    }
    for (;;) {
      const end = headEnd(buf, from);
      if (end < 0) {
        if (buf.length > HEAD_CAP) throw new HeadError(`response head larger than ${HEAD_CAP} bytes`);
        // A view would pin the socket's read buffer; the copy is bounded by HEAD_CAP (and split heads are rare).
        if (buf.length > 0) this.#pending = Buffer.from(buf);
        return undefined;
      }
      if (end > HEAD_CAP) throw new HeadError(`response head larger than ${HEAD_CAP} bytes`);
      const head = parseHead(buf.toString('latin1', 0, end));
      const rest = end === buf.length ? EMPTY : buf.subarray(end);
      if (head.statusCode >= 100 && head.statusCode < 200 && head.statusCode !== 101) {
        buf = rest;
        from = 0;
        continue;
      }
      return { head, rest };
    }
  }
}

/** Index just past the blank line ending the head (CRLF CRLF, or bare LFs as llhttp tolerates), or -1. */
function headEnd(buf: Buffer, from: number): number {
  let i = buf.indexOf(LF, from);
  while (i >= 0) {
    const n = buf[i + 1];
    if (n === LF) return i + 2;
    if (n === CR) {
      if (i + 2 >= buf.length) return -1;
      if (buf[i + 2] === LF) return i + 3;
    }
    if (n === undefined) return -1;
    i = buf.indexOf(LF, i + 1);
  }
  return -1;
}

function parseHead(text: string): UpstreamHead {
  const lines = text.split('\n');
  // The text ends with the blank line: the last two entries are the empty line and what follows its LF.
  const count = lines.length - 2;
  const first = stripCr(lines[0]);
  const m = statusLine.exec(first);
  if (!m) throw new HeadError(`not an HTTP/1.x status line: ${JSON.stringify(first.slice(0, 80))}`);
  const rawHeaders: string[] = [];
  const headers: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
  for (let i = 1; i < count; i++) {
    const line = stripCr(lines[i]);
    const colon = line.indexOf(':');
    // No colon, an empty name, whitespace before the colon, or an obs-fold continuation line.
    if (colon <= 0) throw new HeadError('malformed header line');
    const name = line.slice(0, colon);
    if (!fieldName.test(name)) throw new HeadError('malformed header name');
    const value = line.slice(colon + 1).trim();
    if (badValue.test(value)) throw new HeadError(`invalid character in header ${name}`);
    rawHeaders.push(name, value);
    const lk = name.toLowerCase();
    const prior = headers[lk];
    if (prior === undefined) headers[lk] = value;
    else if (lk === 'content-length') {
      if (prior !== value) throw new HeadError('conflicting Content-Length');
    } else headers[lk] = `${prior}, ${value}`;
  }
  return { statusCode: Number(m[2]), statusMessage: m[3] ?? '', rawHeaders, headers };
}

function stripCr(line: string): string {
  return line.length > 0 && line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line;
}

const enum Chunk {
  Size,
  Data,
  DataEnd,
  Trailers,
  Done,
}

/** Longest chunk-size line (size, extensions) or trailer line accepted. */
const LINE_CAP = 4096;

/**
 * The body of a non-101 answer, up to `cap` bytes. push() returns true when the body is complete (or capped);
 * end() is for a socket that closed: what came so far is the body. Framing per RFC 9112 §6.3 for a response
 * to GET: no body for 204/304, chunked when Transfer-Encoding ends in chunked, until close for any other
 * Transfer-Encoding, Content-Length, else until close.
 */
export class BodyReader {
  readonly #cap: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  /** Body bytes still expected (Content-Length), -1: until close. */
  #remaining: number;
  readonly #chunked: boolean;
  #state = Chunk.Size;
  #chunkLeft = 0;
  #line = '';
  #done = false;

  constructor(head: UpstreamHead, cap: number) {
    this.#cap = cap;
    const te = head.headers['transfer-encoding'];
    const cl = head.headers['content-length'];
    this.#chunked = te !== undefined && /(?:^|,)\s*chunked\s*$/i.test(te);
    if (head.statusCode === 204 || head.statusCode === 304) this.#remaining = 0;
    else if (te !== undefined) this.#remaining = -1;
    else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) throw new HeadError('invalid Content-Length');
      this.#remaining = Number(cl);
    } else this.#remaining = -1;
    if (this.#remaining === 0 && !this.#chunked) this.#done = true;
  }

  get done(): boolean {
    return this.#done;
  }

  get body(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#size);
  }

  push(chunk: Buffer): boolean {
    if (this.#done) return true;
    if (this.#chunked) this.#pushChunked(chunk);
    else if (this.#remaining < 0) this.#take(chunk);
    else {
      const part = chunk.length > this.#remaining ? chunk.subarray(0, this.#remaining) : chunk;
      this.#remaining -= part.length;
      this.#take(part);
      if (this.#remaining === 0) this.#done = true;
    }
    return this.#done;
  }

  /** The connection ended: whatever came is the body (a truncated one is relayed as far as it got). */
  end(): Buffer {
    this.#done = true;
    return this.body;
  }

  #take(part: Buffer): void {
    if (part.length === 0) return;
    const room = this.#cap - this.#size;
    // Copied: a view would keep the socket's whole read buffer.
    const kept = Buffer.from(part.length > room ? part.subarray(0, room) : part);
    this.#chunks.push(kept);
    this.#size += kept.length;
    if (this.#size >= this.#cap) this.#done = true;
  }

  #pushChunked(buf: Buffer): void {
    let i = 0;
    while (i < buf.length && !this.#done) {
      switch (this.#state) {
        case Chunk.Size:
        case Chunk.DataEnd:
        case Chunk.Trailers: {
          const nl = buf.indexOf(LF, i);
          const end = nl < 0 ? buf.length : nl;
          this.#line += buf.toString('latin1', i, end);
          if (this.#line.length > LINE_CAP) throw new HeadError('chunked body line too long');
          if (nl < 0) return;
          i = nl + 1;
          const line = stripCr(this.#line);
          this.#line = '';
          this.#onLine(line);
          break;
        }
        case Chunk.Data: {
          const n = Math.min(this.#chunkLeft, buf.length - i);
          this.#take(buf.subarray(i, i + n));
          this.#chunkLeft -= n;
          i += n;
          if (this.#chunkLeft === 0) this.#state = Chunk.DataEnd;
          break;
        }
        case Chunk.Done:
          return;
      }
    }
  }

  #onLine(line: string): void {
    if (this.#state === Chunk.DataEnd) {
      if (line !== '') throw new HeadError('chunk data not followed by CRLF');
      this.#state = Chunk.Size;
    } else if (this.#state === Chunk.Size) {
      const m = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/.exec(line);
      if (!m) throw new HeadError('malformed chunk size');
      this.#chunkLeft = parseInt(m[1], 16);
      this.#state = this.#chunkLeft === 0 ? Chunk.Trailers : Chunk.Data;
    } else if (line === '') {
      this.#state = Chunk.Done;
      this.#done = true;
    }
  }
}
