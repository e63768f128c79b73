// The relay: after the 101, bytes flow both ways through one FrameScanner per direction (docs/architecture.md §4).
//
// Closing, as implemented (the README's close-code list):
// - Close frames pass through with their code and reason. Each socket's leg of the close handshake is done when
//   a close went to it and nothing more will be read from it (its close came, or it broke the protocol); then
//   its TCP is ended. FIN after a close frame is propagated to the other side. Except towards the upstream once
//   a close went to it (unless it broke the protocol): there the proxy is the WebSocket client and leaves the
//   first FIN to the server (RFC 6455 §7.1.1), within the close deadline.
// - Proxy frames (close, ping) enter a stream only between frames: queued while a frame is in flight.
// - A protocol error gets 1002 to the offender (then its TCP is ended without waiting) and 1001 to the other
//   side; a message over maxMessageBytes gets 1009 (a message check's Close: 1008) to the sender, 1001 to the
//   other side, and the sender's answering close is awaited.
// - With permessage-deflate, compressed messages are inflated alongside (inflate.ts) and their limits apply to
//   the inflated size, which is only known mid-payload: the frame's header (and the payload up to that point) has
//   gone out, so the other side cannot be sent a close frame and its socket is destroyed (its peer sees 1006,
//   and never gets the whole frame to inflate). Data that does not inflate gets 1007 to the sender.
// - An upstream that goes away without a close frame (reset, FIN, error) gives the client 1014 when the stream
//   to the client is at a frame boundary; mid-frame there is no clean way to end it, so the client socket is
//   destroyed (its peer sees 1006). A client that goes away releases the upstream the same way with 1001.
// - From the first close on, a deadline (closeTimeoutMs, on the shared wheel) destroys whatever is left, so
//   every socket is destroyed in the end and onEnd is called exactly once, after both have closed.
//
// RelayEnd.initiator: the side whose close frame or disappearance came first, or 'proxy' when the proxy
// decided (close(), protocol errors, limits); the code is the first close code seen on the wire (1006 for a
// client that vanished, 1014 for an upstream that did).
import type { Duplex } from 'node:stream';
import { randomFillSync } from 'node:crypto';
import { CloseCode } from '../../errors.ts';
import type { RouteCounters } from '../../telemetry/metrics.ts';
import type { TimerWheel, WheelTimer } from '../../util/timer-wheel.ts';
import { inflateParams, type DeflateParams } from './deflate-params.ts';
import { closePayload, controlFrame, Op, readClose } from './frame.ts';
import { FrameScannerBase, SUBCLASS_FLAGS, type MessageCheck } from './scanner.ts';

export { Verdict, type MessageCheck } from './scanner.ts';

export type RelaySide = 'client' | 'upstream';

/** Counters of one connection so far. Bytes include frame headers. */
export interface RelayStats {
  messagesFromClient: number;
  messagesFromUpstream: number;
  bytesFromClient: number;
  bytesFromUpstream: number;
}

export interface RelayEnd {
  readonly code: number;
  readonly reason: string;
  readonly initiator: RelaySide | 'proxy';
  readonly stats: RelayStats;
}

/** Proxy pings to one side and the pongs that answered them; times are the wheel's clock. */
export interface HeartbeatState {
  readonly sent: number;
  readonly answered: number;
  readonly lastSentAt: number;
  readonly lastAnsweredAt: number;
}

export interface RelayOptions {
  readonly client: Duplex;
  readonly upstream: Duplex;
  /** Bytes read from the client after the upgrade request. */
  readonly clientHead: Buffer;
  /** Bytes read from the upstream after its 101. */
  readonly upstreamHead: Buffer;
  /** permessage-deflate as negotiated (negotiatedDeflate() of the 101), or undefined: RSV1 is a protocol error. */
  readonly deflate: DeflateParams | undefined;
  /** Largest message, fragments summed; 0: no limit. */
  readonly maxMessageBytes: number;
  /** After a close: how long to wait for the close handshake and TCP to finish before destroying. */
  readonly closeTimeoutMs: number;
  readonly wheel: TimerWheel;
  readonly counters: RouteCounters;
  onEnd(end: RelayEnd): void;
  /** The first close recorded, when it is decided (tracing's events); the end follows after the close handshake. */
  onClose?: (code: number, reason: string, initiator: RelaySide | 'proxy') => void;
}

// Side flag bits, after the scanner's own (FrameScannerBase.flags).
const S_CLIENT = SUBCLASS_FLAGS;
const S_CLOSE_RECEIVED = SUBCLASS_FLAGS << 1;
const S_CLOSE_QUEUED = SUBCLASS_FLAGS << 2;
const S_CLOSE_SENT = SUBCLASS_FLAGS << 3;
const S_ENDED = SUBCLASS_FLAGS << 4;
const S_GONE = SUBCLASS_FLAGS << 5;
const S_VANISHED = SUBCLASS_FLAGS << 6;
// Reasons to stop reading from a socket; it reads while none is set.
const PAUSE_BACKPRESSURE = SUBCLASS_FLAGS << 7;
const PAUSE_USER = SUBCLASS_FLAGS << 8;
/** The scanner waits for the inflater. */
const PAUSE_INFLATE = SUBCLASS_FLAGS << 9;
const PAUSED = PAUSE_BACKPRESSURE | PAUSE_USER | PAUSE_INFLATE;

/** The Side a socket belongs to, set once when the relay takes the socket over. */
const kSide = Symbol('wsgate.relaySide');
type Owned = Duplex & { [kSide]: Side };

// Socket listeners shared by every connection (`this` is the socket): per-side closures would stay on both
// sockets for the connection's whole life.
function onSocketData(this: Owned, chunk: Buffer): void {
  this[kSide].onData(chunk);
}
/** Writes to this socket drained: the other side may read again. */
function onSocketDrain(this: Owned): void {
  const s = this[kSide];
  s.relay.unpause(s.other, PAUSE_BACKPRESSURE);
}
function onSocketEnd(this: Owned): void {
  const s = this[kSide];
  s.relay.peerEnded(s);
}
function onSocketClose(this: Owned): void {
  const s = this[kSide];
  s.relay.peerClosed(s);
}
function onSocketError(): void {
  // 'close' follows and is handled there; listening here keeps an ECONNRESET from throwing.
}

/** Proxy pings sent to one socket and the pongs that answered them. */
class Pings implements HeartbeatState {
  sent = 0;
  answered = 0;
  lastSentAt = 0;
  lastAnsweredAt = 0;
  // The tag of the ping out, as signed 32-bit halves: they stay small integers rather than boxed numbers.
  tagHi = 0;
  tagLo = 0;
}

const NO_PINGS: HeartbeatState = Object.freeze(new Pings());

/**
 * One socket: the scanner of the bytes read from it (it is one: that object is most of an idle connection's
 * memory, so the scanner, its output, the close-handshake state and the proxy pings share it), the state of its
 * leg of the close handshake, and the proxy pings sent to it. Its booleans are bits of the scanner's flags.
 */
class Side extends FrameScannerBase {
  readonly socket: Duplex;
  readonly relay: Relay;
  /** Proxy frames waiting for the stream into this socket to reach a frame boundary. */
  queue: Buffer[] | undefined = undefined;
  /** Made at the first proxy ping to this socket: most upstreams are never pinged. */
  proxyPings: Pings | undefined = undefined;

  constructor(relay: Relay, isClient: boolean, socket: Duplex, o: RelayOptions) {
    const d = o.deflate;
    super(
      { masked: isClient, deflate: d !== undefined, maxMessageBytes: o.maxMessageBytes, ...(d ? { inflate: inflateParams(d, isClient) } : {}) },
      isClient ? S_CLIENT : 0,
    );
    this.relay = relay;
    this.socket = socket;
    (socket as Owned)[kSide] = this;
  }

  get isClient(): boolean {
    return this.has(S_CLIENT);
  }

  /** The other socket of the connection (a lookup, not a field: one fewer per socket). */
  get other(): Side {
    const r = this.relay;
    return r.client === this ? r.upstream : r.client;
  }

  get name(): RelaySide {
    return this.isClient ? 'client' : 'upstream';
  }

  /** A close frame came from this socket. */
  get closeReceived(): boolean {
    return this.has(S_CLOSE_RECEIVED);
  }
  /** A close frame is written or queued to this socket; nothing else goes to it afterwards. */
  get closeQueued(): boolean {
    return this.has(S_CLOSE_QUEUED);
  }
  get closeSent(): boolean {
    return this.has(S_CLOSE_SENT);
  }
  /** We ended this socket's writable side (or it was ended for us). */
  get ended(): boolean {
    return this.has(S_ENDED);
  }
  /** 'close' was emitted. */
  get gone(): boolean {
    return this.has(S_GONE);
  }
  /** Went away without a close frame. */
  get vanished(): boolean {
    return this.has(S_VANISHED);
  }
  /** Nothing more goes into this socket: a close went or waits for it, or it is ended or gone. */
  get shut(): boolean {
    return this.has(S_CLOSE_QUEUED | S_ENDED | S_GONE);
  }

  onData(chunk: Buffer): void {
    const m = this.messages;
    this.push(chunk);
    const dm = this.messages - m;
    const n = chunk.length;
    const c = this.relay.counters;
    if (this.isClient) {
      c.bytesFromClient += n;
      if (dm !== 0) c.messagesFromClient += dm;
    } else {
      c.bytesFromUpstream += n;
      if (dm !== 0) c.messagesFromUpstream += dm;
    }
  }

  // ScanOutput: what the scanner of this socket's bytes does with them.
  override write(bytes: Buffer): void {
    if (!this.other.socket.write(bytes)) this.relay.pause(this, PAUSE_BACKPRESSURE);
  }

  override control(frame: Buffer, opcode: number, headerLen: number, payloadLen: number, maskAt: number): void {
    this.relay.control(this, frame, opcode, headerLen, payloadLen, maskAt);
  }

  override reject(code: number, reason: string): void {
    this.relay.reject(this, code, reason);
  }

  override boundary(): void {
    this.relay.flush(this.other);
  }

  override throttle(): void {
    this.relay.pause(this, PAUSE_USER);
  }

  protected override inflating(on: boolean): void {
    if (on) this.relay.pause(this, PAUSE_INFLATE);
    else this.relay.unpause(this, PAUSE_INFLATE);
  }
}

/**
 * A relayed WebSocket connection. Construct it with both sockets right after the 101 has been written to the
 * client; it takes over every byte and event of both sockets and calls onEnd once, after both are closed.
 * Methods marked internal are the sides' calls into it (one object per connection rather than a wrapper around
 * an engine).
 */
export class Relay {
  /** @internal */ readonly counters: RouteCounters;
  /** @internal */ readonly client: Side;
  /** @internal */ readonly upstream: Side;
  readonly #wheel: TimerWheel;
  readonly #closeTimeoutMs: number;
  readonly #onEnd: (end: RelayEnd) => void;
  readonly #onClose: RelayOptions['onClose'];
  /** The close deadline, made at the first close: an open connection has none. */
  #timer: WheelTimer | undefined = undefined;
  #end: { code: number; reason: string; initiator: RelaySide | 'proxy' } | undefined = undefined;
  #finished = false;

  constructor(o: RelayOptions) {
    // Only what is needed later is kept: not the options object, nor the head buffers it holds.
    this.#wheel = o.wheel;
    this.#closeTimeoutMs = o.closeTimeoutMs;
    this.#onEnd = o.onEnd;
    this.#onClose = o.onClose;
    this.counters = o.counters;
    this.client = new Side(this, true, o.client, o);
    this.upstream = new Side(this, false, o.upstream, o);
    for (const s of [this.client, this.upstream]) {
      s.socket.on('data', onSocketData);
      s.socket.on('end', onSocketEnd);
      s.socket.on('close', onSocketClose);
      // An error listener is all that keeps an ECONNRESET from throwing; the proxy's sockets come with one that
      // stays, and a second would turn the socket's single listener into an array.
      if (s.socket.listenerCount('error') === 0) s.socket.on('error', onSocketError);
      s.socket.on('drain', onSocketDrain);
    }
    if (o.clientHead.length > 0) this.client.onData(o.clientHead);
    if (o.upstreamHead.length > 0) this.upstream.onData(o.upstreamHead);
    for (const s of [this.client, this.upstream]) {
      // A socket that closed before we listened would never tell us.
      if (s.socket.destroyed) process.nextTick(() => this.peerClosed(s));
      else if (!s.has(PAUSED)) s.socket.resume();
    }
  }

  /** Counters so far (the same numbers that are added to the route's counters). */
  get stats(): RelayStats {
    const c = this.client;
    const u = this.upstream;
    return { messagesFromClient: c.messages, messagesFromUpstream: u.messages, bytesFromClient: c.offset, bytesFromUpstream: u.offset };
  }

  /** onEnd has been called. */
  get ended(): boolean {
    return this.#finished;
  }

  /**
   * Close both sides with code and reason (drain 1012, shutdown 1001, heartbeat timeout, ...), each at its
   * next frame boundary; then wait for the peers' closes up to closeTimeoutMs. Idempotent.
   */
  close(code: number, reason = ''): void {
    if (this.#finished) return;
    this.#record(code, reason, 'proxy');
    this.#inject(this.client, controlFrame(Op.Close, closePayload(code, reason), false), true);
    this.#inject(this.upstream, controlFrame(Op.Close, closePayload(code, reason), true), true);
    this.#closing();
  }

  /**
   * Send a proxy ping (8 random bytes) to one side, between frames. Its pong is swallowed and counted in
   * heartbeat(side). Returns false when that side is closing or gone.
   */
  ping(side: RelaySide = 'client'): boolean {
    const to = this.#side(side);
    if (this.#finished || to.shut) return false;
    const tag = Buffer.allocUnsafe(8);
    randomFillSync(tag);
    const p = (to.proxyPings ??= new Pings());
    p.tagHi = tag.readInt32BE(0);
    p.tagLo = tag.readInt32BE(4);
    p.sent++;
    p.lastSentAt = this.#wheel.now();
    to.holdPongs = true;
    this.#inject(to, controlFrame(Op.Ping, tag, !to.isClient), false);
    return true;
  }

  /** Proxy pings sent to a side and answered by it (live; `answered === sent` means none outstanding). */
  heartbeat(side: RelaySide): HeartbeatState {
    return this.#side(side).proxyPings ?? NO_PINGS;
  }

  /** Bytes a side's compressed messages inflated to so far (each one stops at its limit plus one zlib chunk). */
  inflatedBytes(side: RelaySide): number {
    return this.#side(side).inflatedBytes;
  }

  /** Data messages a side has started so far, plus the pings it sent when `pings` (health: idle timeouts). */
  activity(side: RelaySide, pings: boolean): number {
    const s = this.#side(side);
    return pings ? s.messages + s.pings : s.messages;
  }

  /** Stop reading from a side (throttling); independent of backpressure pauses. */
  pauseFrom(side: RelaySide): void {
    this.pause(this.#side(side), PAUSE_USER);
  }

  resumeFrom(side: RelaySide): void {
    this.unpause(this.#side(side), PAUSE_USER);
  }

  /**
   * Check each data frame a side sends (continuations too; see MessageCheck), at its header, before its payload
   * is forwarded. Throttle: the frame passes and reading from that side pauses until resumeFrom(side). Close:
   * 1008 to the sender, 1001 to the other side. Undefined removes the check (no cost when there is none).
   */
  setMessageCheck(side: RelaySide, check: MessageCheck | undefined): void {
    this.#side(side).onMessage = check;
  }

  #side(side: RelaySide): Side {
    return side === 'client' ? this.client : this.upstream;
  }

  /** @internal */
  pause(s: Side, bit: number): void {
    if (!s.has(PAUSED) && !s.gone) s.socket.pause();
    s.set(bit);
  }

  /** @internal */
  unpause(s: Side, bit: number): void {
    if (!s.has(bit)) return;
    s.clear(bit);
    if (!s.has(PAUSED) && !s.gone) s.socket.resume();
  }

  /** @internal A held control frame from s is complete. */
  control(s: Side, frame: Buffer, opcode: number, hl: number, len: number, maskAt: number): void {
    const o = s.other;
    if (opcode === Op.Pong) {
      const p = s.proxyPings;
      if (p && this.#answersPing(p, frame, hl, maskAt)) {
        p.answered = p.sent;
        p.lastAnsweredAt = this.#wheel.now();
      } else if (s.forwarding) {
        s.write(Buffer.from(frame.subarray(0, hl + len)));
      }
      return;
    }
    // A close: nothing more is read from s.
    s.dead = true;
    const info = readClose(frame, hl, len, maskAt);
    if (!info) {
      this.reject(s, CloseCode.ProtocolError, 'close frame with a 1-byte body');
      return;
    }
    s.set(S_CLOSE_RECEIVED);
    this.#record(info.code, info.reason, s.name);
    if (!o.shut && s.forwarding) {
      o.set(S_CLOSE_QUEUED);
      this.#emit(o, Buffer.from(frame.subarray(0, hl + len)), true);
    }
    this.#closing();
    this.#legDone(s);
  }

  /** @internal s broke the protocol or a limit. */
  reject(s: Side, code: number, reason: string): void {
    const why = `${s.name}: ${reason}`;
    this.#record(code, why, 'proxy');
    const o = s.other;
    if (s.torn && !o.gone) {
      // The stream to o stops mid-frame: a close frame cannot follow it.
      this.#markEnded(o);
      o.socket.destroy();
    }
    this.#inject(o, controlFrame(Op.Close, closePayload(CloseCode.GoingAway, ''), s.isClient), true);
    this.#inject(s, controlFrame(Op.Close, closePayload(code, reason), !s.isClient), true);
    this.#closing();
    this.#legDone(s);
  }

  /** @internal The stream into `to` reached a frame boundary: write what waited for it. */
  flush(to: Side): void {
    const q = to.queue;
    to.queue = undefined;
    to.other.wantBoundary = false;
    if (!q) return;
    const last = q.length - 1;
    for (let i = 0; i < last; i++) to.socket.write(q[i]);
    // Nothing is queued after a close, so a close waiting is the last frame.
    this.#emit(to, q[last], to.closeQueued && !to.closeSent);
  }

  /** @internal FIN from s. */
  peerEnded(s: Side): void {
    // Without allowHalfOpen Node has ended our side too.
    if (!s.socket.writable) this.#markEnded(s);
    if (!s.closeReceived) return this.#vanish(s);
    const o = s.other;
    if (!o.ended && !o.gone && !o.queue && !this.#serverClosesFirst(o)) this.#endSocket(o);
  }

  /** @internal */
  peerClosed(s: Side): void {
    if (s.gone) return;
    s.set(S_GONE);
    this.#markEnded(s);
    if (!s.closeReceived) this.#vanish(s);
    if (this.client.gone && this.upstream.gone) this.#finish();
  }

  #vanish(s: Side): void {
    if (s.vanished || s.closeReceived || this.#finished) return;
    s.set(S_VANISHED);
    s.dead = true;
    this.#record(s.isClient ? CloseCode.Abnormal : CloseCode.UpstreamFailed, `${s.name} went away`, s.name);
    this.#markEnded(s);
    if (!s.socket.destroyed) s.socket.destroy();
    const o = s.other;
    if (!o.gone && !o.closeQueued) {
      if (s.atBoundary) {
        const code = s.isClient ? CloseCode.GoingAway : CloseCode.UpstreamFailed;
        this.#inject(o, controlFrame(Op.Close, closePayload(code, ''), !o.isClient), true);
      } else {
        // The stream to o stops mid-frame: a close frame cannot follow it.
        this.#markEnded(o);
        o.socket.destroy();
      }
    }
    this.#closing();
  }

  /** Put a proxy frame into the stream towards `to`, now if it is between frames, else at the next boundary. */
  #inject(to: Side, frame: Buffer, isClose: boolean): void {
    if (to.shut) return;
    if (isClose) to.set(S_CLOSE_QUEUED);
    const src = to.other;
    if (src.atBoundary && !to.queue) {
      this.#emit(to, frame, isClose);
    } else {
      (to.queue ??= []).push(frame);
      src.wantBoundary = true;
    }
  }

  #emit(to: Side, frame: Buffer, isClose: boolean): void {
    to.socket.write(frame);
    if (!isClose) return;
    to.set(S_CLOSE_SENT);
    this.#stopInto(to);
    this.#legDone(to);
  }

  /**
   * Once a close went to s and nothing more will be read from it, its TCP can end. Towards the upstream the proxy
   * is the WebSocket client: after a clean close handshake it lets the server close the TCP first (RFC 6455
   * §7.1.1), so the TIME_WAIT stays with the server and not on the proxy's ephemeral ports, where every one left
   * makes the next connect() search longer; the close deadline bounds the wait.
   */
  #legDone(s: Side): void {
    if (s.closeSent && s.dead && !s.ended && !s.gone && !this.#serverClosesFirst(s)) this.#endSocket(s);
  }

  /** s is the upstream, a close went to it, and it answered with its own or may still: its FIN is awaited. (One
   *  that broke the protocol is not waited for.) */
  #serverClosesFirst(s: Side): boolean {
    return !s.isClient && s.closeSent && (s.closeReceived || !s.dead);
  }

  #endSocket(s: Side): void {
    this.#markEnded(s);
    s.socket.end();
  }

  #markEnded(s: Side): void {
    s.set(S_ENDED);
    s.queue = undefined;
    this.#stopInto(s);
  }

  /** Nothing more is forwarded into `to`; its writer need not wait for it to drain any more. */
  #stopInto(to: Side): void {
    to.other.forwarding = false;
    this.unpause(to.other, PAUSE_BACKPRESSURE);
  }

  #record(code: number, reason: string, initiator: RelaySide | 'proxy'): void {
    if (this.#end) return;
    this.#end = { code, reason, initiator };
    this.#onClose?.(code, reason, initiator);
  }

  #closing(): void {
    if (this.#finished) return;
    const t = (this.#timer ??= this.#wheel.timer(() => this.#expire()));
    if (!t.armed) t.arm(this.#closeTimeoutMs);
  }

  #expire(): void {
    this.#record(CloseCode.Abnormal, 'close timeout', 'proxy');
    for (const s of [this.client, this.upstream]) if (!s.socket.destroyed) s.socket.destroy();
  }

  #answersPing(s: Pings, frame: Buffer, hl: number, maskAt: number): boolean {
    let hi = frame.readInt32BE(hl);
    let lo = frame.readInt32BE(hl + 4);
    if (maskAt >= 0) {
      const key = frame.readInt32BE(maskAt);
      hi ^= key;
      lo ^= key;
    }
    return hi === s.tagHi && lo === s.tagLo;
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#timer?.disarm();
    for (const s of [this.client, this.upstream]) {
      s.disposeInflater();
      s.socket.off('data', onSocketData);
      s.socket.off('end', onSocketEnd);
      s.socket.off('close', onSocketClose);
      s.socket.off('drain', onSocketDrain);
      // The error listener stays: a destroyed socket may still report a late write error.
      if (!s.socket.destroyed) s.socket.destroy();
    }
    const end = this.#end ?? { code: CloseCode.Abnormal, reason: '', initiator: 'proxy' as const };
    this.#onEnd({ ...end, stats: this.stats });
  }
}
