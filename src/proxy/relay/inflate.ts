// The size of compressed messages as the application will see them. With permessage-deflate a frame's wire length
// says nothing about its message: a 1 KB frame can inflate to 1 MB, a 300 KB one to 300 MB. So the payload of each
// compressed message from one side is inflated here too, alongside the relay, counted and thrown away; the wire
// bytes themselves are forwarded untouched, and only after the inflater has taken them within the limits.
//
// node:zlib's streaming inflater, not a hand-written one, and asynchronous: its synchronous calls (inflateRawSync,
// the legacy _processChunk) close the zlib context after every call, and permessage-deflate with context takeover
// needs the window to survive from one message to the next. The scanner waits for each chunk it hands over (the
// relay stops reading that socket meanwhile), so at most one socket read's worth of payload is in the inflater and
// nothing queues up behind it: memory per direction is one zlib context, made at the first compressed message.
// zlib's inflate state is about 7 KB plus a window of 2^windowBits bytes (32 KB at the usual 15 bits); Node adds a
// 16 KB output buffer. Without context takeover the context is released at every message end.
import zlib, { type InflateRaw } from 'node:zlib';
import { CloseCode } from '../../errors.ts';
import type { InflateParams } from './deflate-params.ts';

/** RFC 7692 §7.2.2: the sender removed these four bytes from the end of every compressed message. */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Inflated bytes seen: 0 to go on, or the close code that stops the message (1009 limit, 1008 rate). */
export type OnInflated = (bytes: number) => number;
/** A feed is done: 0 when all its bytes were inflated within the limits, else the close code and why. */
export type OnFed = (code: number, reason: string) => void;

export class MessageInflater {
  /** Every byte inflated on this side so far (a bomb stops at the limit plus one zlib output chunk). */
  total = 0;
  /** The payload handed to feed(), to be forwarded once it is through. */
  held: Buffer | undefined = undefined;
  /** What came after the held payload in its socket read, scanned once the feed is through. */
  rest: Buffer | undefined = undefined;
  /** The masking key of the frame being fed (client frames), copied from its header. */
  readonly key = Buffer.alloc(4);
  masked = false;

  readonly #windowBits: number;
  readonly #noContextTakeover: boolean;
  readonly #onInflated: OnInflated;
  readonly #onFed: OnFed;
  #z: InflateRaw | undefined = undefined;
  /** The deflate stream ended (a block with BFINAL): zlib ignores anything after it, so the next message needs a
   *  new context, as every zlib-based endpoint does. */
  #ended = false;
  #pending = false;
  #last = false;

  constructor(p: InflateParams, onInflated: OnInflated, onFed: OnFed) {
    // zlib 1.2.9 and later deflate with a 9-bit window when asked for 8 (raw streams), and a larger inflate
    // window than the sender's is always valid.
    this.#windowBits = Math.max(9, p.windowBits);
    this.#noContextTakeover = p.noContextTakeover;
    this.#onInflated = onInflated;
    this.#onFed = onFed;
  }

  /** A feed is in flight. */
  get busy(): boolean {
    return this.#pending;
  }

  /**
   * Inflate payload bytes of a compressed message: `at` is their offset in their frame (to unmask), `last` marks
   * the message's end. onFed is called once, asynchronously, unless dispose() comes first.
   */
  feed(payload: Buffer, at: number, last: boolean): void {
    this.held = payload;
    this.#pending = true;
    this.#last = last;
    const z = (this.#z ??= this.#open());
    const n = payload.length;
    // One write per feed: each is a thread-pool round trip (measured: two writes per message cost 42 µs of CPU
    // against 26 µs for one), so a message's end is copied together with the tail.
    if (!this.masked && !last) {
      z.write(payload, this.#written);
      return;
    }
    const data = Buffer.allocUnsafe(last ? n + 4 : n);
    if (this.masked) {
      // The inflater's copy is unmasked; the forwarded bytes stay as they came.
      const k = this.key;
      for (let i = 0; i < n; i++) data[i] = payload[i] ^ k[(at + i) & 3];
    } else payload.copy(data, 0);
    if (last) TAIL.copy(data, n);
    z.write(data, this.#written);
  }

  /** Release the zlib context (the connection ended); a feed in flight is forgotten. */
  dispose(): void {
    this.#pending = false;
    this.held = undefined;
    this.rest = undefined;
    this.#release();
  }

  #open(): InflateRaw {
    this.#ended = false;
    const z = zlib.createInflateRaw({ windowBits: this.#windowBits });
    z.on('data', (chunk: Buffer) => {
      if (!this.#pending || z !== this.#z) return;
      this.total += chunk.length;
      const code = this.#onInflated(chunk.length);
      // Closing the stream here stops zlib before its next output chunk (it checks at every chunk).
      if (code !== 0) this.#fail(code, code === CloseCode.MessageTooBig ? 'inflated message too big' : 'message rate exceeded');
    });
    z.on('end', () => {
      if (z === this.#z) this.#ended = true;
    });
    z.on('error', (err: NodeJS.ErrnoException) => {
      if (z !== this.#z) return;
      this.#z = undefined;
      if (this.#pending) this.#fail(CloseCode.InvalidPayload, `invalid compressed data (${err.code ?? 'zlib error'})`);
    });
    return z;
  }

  readonly #written = (err?: Error | null): void => {
    // Errors come as 'error' events; a stream closed by #fail or dispose() has been dealt with.
    if (err || !this.#pending) return;
    this.#pending = false;
    if (this.#last && (this.#noContextTakeover || this.#ended)) this.#release();
    this.#onFed(0, '');
  };

  #fail(code: number, reason: string): void {
    this.#pending = false;
    this.#release();
    this.#onFed(code, reason);
  }

  #release(): void {
    const z = this.#z;
    this.#z = undefined;
    z?.close();
  }
}
