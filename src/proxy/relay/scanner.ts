// The frame scanner (docs/architecture.md §4): one per direction. It reads RFC 6455 §5.2 headers only and hands byte runs
// to its output as they are; payloads are never copied, unmasked or reassembled. The common case — a chunk
// that holds whole frames, or the middle of a long payload — ends in exactly one write of the chunk itself.
// Bytes are held back only for three reasons: a header cut by a chunk boundary (kept in a per-direction
// scratch buffer until it can be validated), a control frame the relay must read (a close, or a pong that
// may answer the proxy's own ping), and frames that must not pass (after a close was sent, after a limit).
// With permessage-deflate, the payload of a compressed message also waits (as a view, not a copy) while the
// inflater (inflate.ts) counts what it inflates to: scanning stops until it is through, then the same bytes go on.
//
// The state lives in FrameScannerBase, whose output is its own abstract methods: the relay's per-socket object
// extends it, so an idle connection holds one object per socket instead of a scanner, its output and the links
// between them. FrameScanner is the same scanner writing to a separate ScanOutput (tests, fuzzing).
import { CloseCode } from '../../errors.ts';
import type { InflateParams } from './deflate-params.ts';
import { headerLength, MaxControlPayload, MaxHeaderBytes, Op } from './frame.ts';
import { MessageInflater } from './inflate.ts';

/** What a message check (rate limits) decides at a data frame's header. */
export const Verdict = { Allow: 0, Throttle: 1, Close: 2 } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];
/**
 * Called at the header of every data frame (a message's first frame and each continuation), before any of its
 * payload is forwarded, with the frame's payload length; `first` is true for a message's first frame only, so
 * a check counts messages and bytes apart. Without a check the scanner pays one undefined test per data frame.
 * A compressed message being inflated counts 0 bytes at its headers and its inflated bytes as they come (with
 * `first` false); a ping or pong counts its whole frame, header included (`first` false).
 */
export type MessageCheck = (bytes: number, first: boolean) => Verdict;

/** Test and debug observer: every accepted header, at its offset in the stream. */
export type FrameObserver = (offset: number, headerLen: number, payloadLen: number, opcode: number, fin: boolean) => void;

export interface ScanOutput {
  /** Bytes to pass on, in stream order; the pushed chunk itself whenever it passes whole. */
  write(bytes: Buffer): void;
  /**
   * A complete held control frame (a close, or an 8-byte pong while holdPongs is set). `frame` is scratch
   * memory valid only during the call: copy it to forward it. maskAt is the key offset, or -1.
   */
  control(frame: Buffer, opcode: number, headerLen: number, payloadLen: number, maskAt: number): void;
  /**
   * The source broke the protocol (1002: the scanner is dead from here on) or a limit (1009, 1008: the frame
   * is skipped and scanning goes on, so the source's answering close can still be seen).
   */
  reject(code: number, reason: string): void;
  /** A frame boundary was reached while wantBoundary was set. */
  boundary(): void;
  /** The message check answered Throttle. */
  throttle(): void;
}

export interface ScannerOptions {
  /** Frames from this source must be masked (client → upstream) or must not be (upstream → client). */
  readonly masked: boolean;
  /** permessage-deflate was negotiated: RSV1 is allowed on the first frame of a data message. */
  readonly deflate: boolean;
  /** Largest message (sum of its fragments); 0 or Infinity: no limit. */
  readonly maxMessageBytes: number;
  /**
   * With deflate: how the source compresses. Compressed messages are then inflated alongside (their bytes still
   * forwarded as they came), and maxMessageBytes and the message check apply to the inflated size. Without it,
   * RSV1 is allowed and a compressed message is measured on the wire.
   */
  readonly inflate?: InflateParams;
}

const EMPTY = Buffer.alloc(0);

const HEADER = 0;
const FORWARD = 1;
const HOLD = 2;
const SKIP = 3;

// Decisions of #header (FAIL is reported through the output).
const A_FORWARD = 0;
const A_HOLD = 1;
const A_SKIP = 2;
const A_FAIL = 3;
const A_TOO_BIG = 4;
const A_POLICY = 5;

// Flag bits of FrameScannerBase.flags: one small integer rather than a field per boolean (8 bytes each, in two
// objects per connection). Bits from SUBCLASS_FLAGS up are the subclass's.
const F_FORWARDING = 1 << 0;
const F_HOLD_PONGS = 1 << 1;
const F_WANT_BOUNDARY = 1 << 2;
const F_DEAD = 1 << 3;
const F_EXPECT_MASK = 1 << 4;
const F_DEFLATE = 1 << 5;
const F_FRAGMENTED = 1 << 6;
/** frameSeen() is called for every accepted header (FrameScanner with an onFrame observer). */
const F_OBSERVED = 1 << 7;
/** The current message is compressed and inflated alongside (RSV1 on its first frame, inflate options given). */
const F_COMPRESSED = 1 << 8;
/** Payload is in the inflater: scanning waits until it is through (#fed). */
const F_SUSPENDED = 1 << 9;
/** The stream to the destination stopped inside a frame: a compressed message broke a limit mid-payload. */
const F_TORN = 1 << 10;
export const SUBCLASS_FLAGS = 1 << 11;

export abstract class FrameScannerBase implements ScanOutput {
  /** Flag bits (F_*); the subclass's own from SUBCLASS_FLAGS up. */
  protected flags: number;
  /** Data messages started and forwarded. */
  messages = 0;
  /** Ping frames from the source forwarded (health: limits.pingsAreActivity). */
  pings = 0;
  onMessage: MessageCheck | undefined = undefined;

  readonly #max: number;
  #mode = HEADER;
  /** Payload bytes left in the current frame (FORWARD, HOLD, SKIP). */
  #remaining = 0;
  /** Header bytes gathered (HEADER), or frame bytes held (HOLD), in #buf. */
  #have = 0;
  /** Allocated at the first header cut by a chunk boundary or held frame: most connections never need it. */
  #buf: Buffer | undefined = undefined;
  #messageBytes = 0;
  #offset = 0;
  // Header fields of the frame being decided or held.
  #op = 0;
  #len = 0;
  #hl = 0;
  #maskAt = -1;
  #why = '';
  readonly #inflate: InflateParams | undefined;
  /** Made at the first compressed message: most connections never compress. */
  #inflater: MessageInflater | undefined = undefined;

  constructor(o: ScannerOptions, flags = 0) {
    this.flags = flags | F_FORWARDING | (o.masked ? F_EXPECT_MASK : 0) | (o.deflate ? F_DEFLATE : 0);
    this.#max = o.maxMessageBytes > 0 && Number.isFinite(o.maxMessageBytes) ? o.maxMessageBytes : 0;
    this.#inflate = o.deflate ? o.inflate : undefined;
  }

  // ScanOutput, implemented by the subclass.
  abstract write(bytes: Buffer): void;
  abstract control(frame: Buffer, opcode: number, headerLen: number, payloadLen: number, maskAt: number): void;
  abstract reject(code: number, reason: string): void;
  abstract boundary(): void;
  abstract throttle(): void;

  /** Scanning stops (true) while the inflater has payload, and goes on (false): the source need not be read. */
  protected inflating(_on: boolean): void {}

  /** Every accepted header, while the F_OBSERVED flag is set. */
  protected frameSeen(offset: number, headerLen: number, payloadLen: number, opcode: number, fin: boolean): void;
  protected frameSeen(): void {}

  /** @internal Set flag bits (this class's F_*, a subclass's from SUBCLASS_FLAGS up). */
  set(bits: number): void {
    this.flags |= bits;
  }

  /** @internal */
  clear(bits: number): void {
    this.flags &= ~bits;
  }

  /** @internal Whether any of the bits is set. */
  has(bits: number): boolean {
    return (this.flags & bits) !== 0;
  }

  protected put(bits: number, on: boolean): void {
    this.flags = on ? this.flags | bits : this.flags & ~bits;
  }

  /** False once the destination must get nothing more (a close was sent to it, or it is gone). */
  get forwarding(): boolean {
    return this.has(F_FORWARDING);
  }
  set forwarding(v: boolean) {
    this.put(F_FORWARDING, v);
  }

  /** Hold 8-byte pongs so the relay can swallow the answers to its own pings. */
  get holdPongs(): boolean {
    return this.has(F_HOLD_PONGS);
  }
  set holdPongs(v: boolean) {
    this.put(F_HOLD_PONGS, v);
  }

  /** Call boundary() at the next frame boundary (a proxy frame is waiting to be injected). */
  get wantBoundary(): boolean {
    return this.has(F_WANT_BOUNDARY);
  }
  set wantBoundary(v: boolean) {
    this.put(F_WANT_BOUNDARY, v);
  }

  /** Input is ignored (after a close frame from the source, or a protocol error). */
  get dead(): boolean {
    return this.has(F_DEAD);
  }
  set dead(v: boolean) {
    this.put(F_DEAD, v);
  }

  /** Nothing of a frame has been passed on without the rest: a proxy frame may go to the destination now. */
  get atBoundary(): boolean {
    return this.#mode !== FORWARD && (this.flags & F_SUSPENDED) === 0;
  }

  /** The stream to the destination stopped inside a frame (a limit broken mid-payload): nothing may follow. */
  get torn(): boolean {
    return this.has(F_TORN);
  }

  /** Scanning waits for the inflater. */
  get suspended(): boolean {
    return this.has(F_SUSPENDED);
  }

  /** Bytes the source's compressed messages inflated to so far. */
  get inflatedBytes(): number {
    return this.#inflater?.total ?? 0;
  }

  /** Release the inflater's zlib context (the connection is over). */
  disposeInflater(): void {
    this.#inflater?.dispose();
  }

  /** Offset of the next input byte in the source's stream: every byte pushed so far, ignored ones too. */
  get offset(): number {
    return this.#offset;
  }

  push(chunk: Buffer): void {
    // Counted even when ignored: the relay reports it as the bytes read from the source.
    this.#offset += chunk.length;
    if (this.dead) return;
    if ((this.flags & F_SUSPENDED) !== 0) {
      // Only when the source was read while the inflater had payload (the relay stops reading it meanwhile).
      const inf = this.#inflater!;
      inf.rest = inf.rest ? Buffer.concat([inf.rest, chunk]) : chunk;
      return;
    }
    this.#scan(chunk);
  }

  /** Scan bytes that end at #offset. */
  #scan(chunk: Buffer): void {
    const n = chunk.length;
    const base = this.#offset - n;
    // The middle of a long payload.
    if (this.#mode === FORWARD && this.#remaining > n && (this.flags & F_COMPRESSED) === 0) {
      this.#remaining -= n;
      this.write(chunk);
      return;
    }
    let pos = 0;
    /** Start of the bytes in [run, pos) still to be passed on. */
    let run = 0;
    while (pos < n) {
      const mode = this.#mode;
      if (mode === FORWARD) {
        const r = this.#remaining;
        if ((this.flags & F_COMPRESSED) !== 0) {
          if (pos > run) this.write(chunk.subarray(run, pos));
          const take = r < n - pos ? r : n - pos;
          this.#remaining = r - take;
          if (take === r) this.#mode = HEADER;
          const last = take === r && (this.flags & F_FRAGMENTED) === 0;
          this.#feed(chunk.subarray(pos, pos + take), this.#len - r, last, pos + take < n ? chunk.subarray(pos + take) : undefined);
          return;
        }
        if (r > n - pos) {
          this.#remaining = r - (n - pos);
          pos = n;
          break;
        }
        pos += r;
        this.#remaining = 0;
        this.#mode = HEADER;
        if (this.wantBoundary) {
          if (pos > run) this.write(chunk.subarray(run, pos));
          run = pos;
          this.boundary();
          if (this.dead) return;
        }
        continue;
      }
      if (mode === SKIP || mode === HOLD) {
        const take = Math.min(this.#remaining, n - pos);
        if (mode === HOLD) chunk.copy(this.#buf!, this.#have, pos, pos + take);
        this.#have += take;
        pos += take;
        run = pos;
        this.#remaining -= take;
        if (this.#remaining === 0 && (this.#frameDone(), this.dead)) return;
        continue;
      }

      // HEADER: all in this chunk (the usual case), or gathered across chunks in #buf.
      const start = pos;
      const prev = this.#have;
      let hb: Buffer;
      let ho: number;
      let hl: number;
      if (prev === 0 && n - pos >= 2 && n - pos >= (hl = headerLength(chunk[pos + 1]))) {
        hb = chunk;
        ho = pos;
        pos += hl;
      } else {
        const buf = (this.#buf ??= Buffer.allocUnsafe(MaxHeaderBytes + MaxControlPayload));
        let have = prev;
        if (have < 2) {
          const take = Math.min(2 - have, n - pos);
          chunk.copy(buf, have, pos, pos + take);
          have += take;
          pos += take;
        }
        hl = have >= 2 ? headerLength(buf[1]) : MaxHeaderBytes + 1;
        if (have >= 2 && have < hl) {
          const take = Math.min(hl - have, n - pos);
          chunk.copy(buf, have, pos, pos + take);
          have += take;
          pos += take;
        }
        this.#have = have;
        if (have < hl) {
          // Not validated yet, so not passed on: the destination stays at a frame boundary.
          if (start > run) this.write(chunk.subarray(run, start));
          return;
        }
        hb = buf;
        ho = 0;
      }

      const action = this.#header(hb, ho, hl);
      if ((this.flags & F_OBSERVED) !== 0 && action !== A_FAIL) this.frameSeen(base + start - prev, hl, this.#len, this.#op, (hb[ho] & 0x80) !== 0);
      if (action === A_FORWARD) {
        this.#have = 0;
        // The start of this header came with earlier chunks and was held back until now.
        if (prev > 0) this.write(Buffer.from(this.#buf!.subarray(0, prev)));
        if (this.#len > 0) {
          this.#mode = FORWARD;
          this.#remaining = this.#len;
        } else if ((this.flags & (F_COMPRESSED | F_FRAGMENTED)) === F_COMPRESSED) {
          // A compressed message ending in an empty frame: its tail still goes to the inflater.
          if (pos > run) this.write(chunk.subarray(run, pos));
          this.#feed(EMPTY, 0, true, pos < n ? chunk.subarray(pos) : undefined);
          return;
        } else if (this.wantBoundary) {
          if (pos > run) this.write(chunk.subarray(run, pos));
          run = pos;
          this.boundary();
          if (this.dead) return;
        }
        continue;
      }
      if (start > run) this.write(chunk.subarray(run, start));
      run = pos;
      if (action === A_FAIL) {
        this.#have = 0;
        this.dead = true;
        this.reject(CloseCode.ProtocolError, this.#why);
        return;
      }
      if (action === A_HOLD) {
        if (hb === chunk) chunk.copy((this.#buf ??= Buffer.allocUnsafe(MaxHeaderBytes + MaxControlPayload)), 0, ho, ho + hl);
        this.#have = hl;
        this.#maskAt = this.#maskAt >= 0 ? hl - 4 : -1;
        this.#mode = HOLD;
      } else {
        this.#have = 0;
        this.#mode = SKIP;
        if (action === A_TOO_BIG || action === A_POLICY) {
          this.reject(action === A_TOO_BIG ? CloseCode.MessageTooBig : CloseCode.PolicyViolation, this.#why);
          if (this.dead) return;
        }
      }
      this.#remaining = this.#len;
      if (this.#len === 0 && (this.#frameDone(), this.dead)) return;
    }
    if (pos > run) this.write(run === 0 ? chunk : chunk.subarray(run, pos));
  }

  /** Hand payload of a compressed message to the inflater; scanning goes on in #fed, with `rest`. */
  #feed(payload: Buffer, at: number, last: boolean, rest: Buffer | undefined): void {
    const inf = this.#inflater!;
    inf.rest = rest;
    this.flags |= F_SUSPENDED;
    this.inflating(true);
    inf.feed(payload, at, last);
  }

  /** Inflated bytes of the current compressed message: 0 to go on, or the code that stops it. */
  #inflated(bytes: number): number {
    this.#messageBytes += bytes;
    if (this.#max > 0 && this.#messageBytes > this.#max) return CloseCode.MessageTooBig;
    const check = this.onMessage;
    if (check !== undefined) {
      const v = check(bytes, false);
      if (v === Verdict.Close) return CloseCode.PolicyViolation;
      if (v === Verdict.Throttle) this.throttle();
    }
    return 0;
  }

  /** The inflater is through with the payload #feed gave it: forward it (code 0) or stop the message. */
  #fed(code: number, reason: string): void {
    const inf = this.#inflater!;
    const held = inf.held!;
    const rest = inf.rest;
    inf.held = undefined;
    inf.rest = undefined;
    this.flags &= ~F_SUSPENDED;
    if (this.dead) return;
    this.inflating(false);
    if (code === 0) {
      if (held.length > 0 && this.forwarding) this.write(held);
      if (this.#mode === HEADER && this.wantBoundary) {
        this.boundary();
        if (this.dead) return;
      }
    } else {
      // The destination has this frame's header and maybe some of its payload: no frame can follow there.
      if (held.length > 0) this.flags |= F_TORN;
      if (this.#mode === FORWARD) this.#mode = SKIP;
      // Data that does not inflate is the sender's fault as a protocol error is: nothing more is read from it.
      if (code === CloseCode.InvalidPayload) this.dead = true;
      const why =
        code === CloseCode.MessageTooBig ? `inflated message larger than ${this.#max} bytes` : code === CloseCode.PolicyViolation ? 'message rate exceeded' : reason;
      this.reject(code, why);
      if (this.dead) return;
    }
    if (rest !== undefined) this.#scan(rest);
  }

  /** End of a held or skipped frame. */
  #frameDone(): void {
    const held = this.#mode === HOLD;
    this.#mode = HEADER;
    this.#have = 0;
    // Waiting proxy frames go first: the destination has been at this boundary since the held frame began.
    if (this.wantBoundary) {
      this.boundary();
      if (this.dead) return;
    }
    if (held) this.control(this.#buf!, this.#op, this.#hl, this.#len, this.#maskAt);
  }

  /** Validate a complete header and decide what becomes of its frame. */
  #header(hb: Buffer, ho: number, hl: number): number {
    const b0 = hb[ho];
    const b1 = hb[ho + 1];
    const op = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    let len = b1 & 0x7f;
    this.#op = op;
    this.#hl = hl;
    this.#maskAt = b1 & 0x80 ? ho + hl - 4 : -1;
    if (len === 126) len = (hb[ho + 2] << 8) | hb[ho + 3];
    else if (len === 127) {
      const hi = hb.readUInt32BE(ho + 2);
      if (hi > 0x7fffffff) return this.#fail('64-bit length with the most significant bit set');
      len = hi * 0x100000000 + hb.readUInt32BE(ho + 6);
    }
    this.#len = len;
    const rsv = b0 & 0x70;
    const flags = this.flags;
    const deflate = (flags & F_DEFLATE) !== 0;
    const expectMask = (flags & F_EXPECT_MASK) !== 0;
    if (rsv !== 0 && (rsv !== 0x40 || !deflate || op === Op.Continuation || op >= Op.Close)) {
      return this.#fail(rsv === 0x40 && deflate ? 'RSV1 on a control or continuation frame' : 'reserved bits set without an extension');
    }
    if ((b1 & 0x80) === 0 ? expectMask : !expectMask) {
      return this.#fail(expectMask ? 'unmasked frame from the client' : 'masked frame from the upstream');
    }
    if (op >= Op.Close) {
      if (op > Op.Pong) return this.#fail(`unknown opcode ${op}`);
      if (!fin) return this.#fail('fragmented control frame');
      if (len > MaxControlPayload) return this.#fail('control frame longer than 125 bytes');
      if (op === Op.Close) return A_HOLD;
      if ((flags & F_FORWARDING) === 0) return A_SKIP;
      const check = this.onMessage;
      if (check !== undefined) {
        // Pings and pongs spend the byte budget too, header included, so a flood of empty ones is not free.
        const v = check(hl + len, false);
        if (v === Verdict.Close) return this.#limit(CloseCode.PolicyViolation, 'control frame rate exceeded');
        if (v === Verdict.Throttle) this.throttle();
      }
      if (op === Op.Ping) this.pings++;
      return op === Op.Pong && (flags & F_HOLD_PONGS) !== 0 && len === 8 ? A_HOLD : A_FORWARD;
    }
    // A compressed message's size is what it inflates to, counted as the inflater goes (#inflated).
    let compressed: boolean;
    if (op === Op.Continuation) {
      if ((flags & F_FRAGMENTED) === 0) return this.#fail('continuation frame without a message');
      compressed = (flags & F_COMPRESSED) !== 0;
      if (!compressed) this.#messageBytes += len;
    } else if (op <= Op.Binary) {
      if ((flags & F_FRAGMENTED) !== 0) return this.#fail('new data frame inside a fragmented message');
      compressed = rsv !== 0 && this.#inflate !== undefined;
      this.#messageBytes = compressed ? 0 : len;
    } else {
      return this.#fail(`unknown opcode ${op}`);
    }
    const next = fin ? flags & ~F_FRAGMENTED : flags | F_FRAGMENTED;
    this.flags = compressed ? next | F_COMPRESSED : next & ~F_COMPRESSED;
    if ((flags & F_FORWARDING) === 0) return A_SKIP;
    if (compressed) {
      const inf = (this.#inflater ??= new MessageInflater(
        this.#inflate!,
        (bytes) => this.#inflated(bytes),
        (code, reason) => this.#fed(code, reason),
      ));
      inf.masked = this.#maskAt >= 0;
      if (inf.masked) hb.copy(inf.key, 0, this.#maskAt, this.#maskAt + 4);
    }
    if (this.#messageBytes > Number.MAX_SAFE_INTEGER) {
      return this.#limit(CloseCode.MessageTooBig, 'message length beyond 2^53');
    }
    if (this.#max > 0 && this.#messageBytes > this.#max) {
      return this.#limit(CloseCode.MessageTooBig, `message larger than ${this.#max} bytes`);
    }
    const first = op !== Op.Continuation;
    const check = this.onMessage;
    if (check !== undefined) {
      const v = check(compressed ? 0 : len, first);
      if (v === Verdict.Close) return this.#limit(CloseCode.PolicyViolation, 'message rate exceeded');
      if (v === Verdict.Throttle) this.throttle();
    }
    // A message refused by the check is not counted; its continuations are not messages.
    if (first) this.messages++;
    return A_FORWARD;
  }

  #limit(code: number, why: string): number {
    this.#why = why;
    return code === CloseCode.MessageTooBig ? A_TOO_BIG : A_POLICY;
  }

  #fail(why: string): number {
    this.#why = why;
    return A_FAIL;
  }
}

/** The scanner writing to a separate output: tests and fuzzing (the relay's sides are scanners themselves). */
export class FrameScanner extends FrameScannerBase {
  readonly #out: ScanOutput;
  #onFrame: FrameObserver | undefined = undefined;

  constructor(out: ScanOutput, o: ScannerOptions) {
    super(o);
    this.#out = out;
  }

  override write(bytes: Buffer): void {
    this.#out.write(bytes);
  }

  override control(frame: Buffer, opcode: number, headerLen: number, payloadLen: number, maskAt: number): void {
    this.#out.control(frame, opcode, headerLen, payloadLen, maskAt);
  }

  override reject(code: number, reason: string): void {
    this.#out.reject(code, reason);
  }

  override boundary(): void {
    this.#out.boundary();
  }

  override throttle(): void {
    this.#out.throttle();
  }

  /** Test and debug observer of every accepted header (an observer field would cost every relayed socket). */
  get onFrame(): FrameObserver | undefined {
    return this.#onFrame;
  }
  set onFrame(f: FrameObserver | undefined) {
    this.#onFrame = f;
    this.put(F_OBSERVED, f !== undefined);
  }

  protected override frameSeen(offset: number, headerLen: number, payloadLen: number, opcode: number, fin: boolean): void {
    this.#onFrame?.(offset, headerLen, payloadLen, opcode, fin);
  }
}
