// The first reader of every connection (plain, or TLS once its handshake is done): it waits for the request head
// and, when it is a plain WebSocket upgrade (upgrade-head.ts), hands it to the proxy without Node's HTTP machinery
// (llhttp, an IncomingMessage, the server's per-connection state and listeners), which cost more CPU per handshake
// than the rest of the proxy's own work. Every other request is given, byte for byte, to the HTTP server it fronts,
// as if that server had accepted the connection itself.
//
// What the HTTP server enforced before the head was complete is enforced here: the handshake deadline (408, swept
// as often as Node sweeps) and the header size cap (a head that outgrows it goes to Node's parser, which answers
// 431).
import type http from 'node:http';
import type { Socket } from 'node:net';
import { systemClock, type Clock } from '../../util/clock.ts';
import { headEnd, parseUpgradeHead, plausiblePartialHead, type UpgradeRequest } from './head.ts';

export interface UpgradeFrontOptions {
  /** Where the server hands over its connections: 'connection' for http.Server, 'secureConnection' for
   *  https.Server (after the TLS handshake; the bytes read are then the decrypted request). */
  readonly event?: 'connection' | 'secureConnection';
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  /** A plain upgrade. head: what followed the request head (a copy, or empty). */
  readonly upgrade: (req: UpgradeRequest, socket: Socket, head: Buffer) => void;
  /** The head did not arrive within handshakeTimeoutMs. */
  readonly timedOut: (socket: Socket) => void;
  /** The client half-closed in the middle of a head (Node's parser calls that HPE_INVALID_EOF_STATE). */
  readonly cutShort: (socket: Socket) => void;
  /** Kept on the socket from the start: an error before the head is read destroys it. */
  readonly onError: (this: Socket, err: Error) => void;
  /** Called first for every connection: false sheds it (the proxy's --max-connections), and shed() answers. */
  readonly admit?: (socket: Socket) => boolean;
  readonly shed?: (socket: Socket) => void;
  /** The process's clock: when each connection was accepted, and the deadline sweep (tests move it by hand). */
  readonly clock?: Clock;
}

/**
 * How often handshake deadlines are checked, by the front and by Node's HTTP servers behind it
 * (connectionsCheckingInterval): Node's default of 30 s would give a slowloris client its 408 far too late.
 */
export function deadlineCheckMs(handshakeTimeoutMs: number): number {
  return Math.min(1000, Math.max(50, Math.floor(handshakeTimeoutMs / 4)));
}

/** A connection whose head is not complete yet. */
class Pending {
  readonly socket: Socket;
  readonly started: number;
  /** What came so far (copies: a view would pin the socket's read buffer). */
  buffered: Buffer | undefined = undefined;
  readonly onData: (chunk: Buffer) => void;
  readonly onClose: () => void;
  readonly onEnd: () => void;

  constructor(front: UpgradeFront, socket: Socket, started: number) {
    this.socket = socket;
    this.started = started;
    this.onData = (chunk) => front.data(this, chunk);
    this.onClose = () => front.forget(this);
    this.onEnd = () => front.ended(this);
  }
}

const EMPTY = Buffer.alloc(0);

export class UpgradeFront {
  readonly #server: http.Server;
  readonly #o: UpgradeFrontOptions;
  /** The HTTP server's own connection listener: everything that is not a plain upgrade goes there. */
  readonly #http: (socket: Socket) => void;
  readonly #pending = new Set<Pending>();
  /** Connections handed to the HTTP server before their first head was complete, with the time they were
   *  accepted: the deadline runs from there, not from the hand-over (where Node's parser starts its own). */
  readonly #handed = new Map<Socket, number>();
  readonly #clock: Clock;
  readonly #stopSweep: () => void;

  constructor(server: http.Server, o: UpgradeFrontOptions) {
    const event = o.event ?? 'connection';
    const own = server.listeners(event);
    // http.Server (and https.Server, on secureConnection) registers exactly one: its connectionListener.
    if (own.length !== 1) throw new Error(`expected the HTTP server's own ${event} listener, found ${own.length}`);
    this.#server = server;
    this.#o = o;
    this.#http = own[0] as (socket: Socket) => void;
    server.removeListener(event, this.#http);
    server.on(event, (socket: Socket) => this.#accept(socket));
    this.#clock = o.clock ?? systemClock();
    // A handed-over head is complete once the server emits it.
    const headDone = (req: http.IncomingMessage) => this.#handed.delete(req.socket as Socket);
    server.prependListener('request', headDone);
    server.prependListener('upgrade', headDone);
    this.#stopSweep = this.#clock.repeat(() => this.sweep(), deadlineCheckMs(o.handshakeTimeoutMs));
  }

  /** Connections still waiting for their head (close() ends them). */
  get pending(): number {
    return this.#pending.size;
  }

  close(): void {
    this.#stopSweep();
    for (const p of this.#pending) p.socket.destroy();
    this.#pending.clear();
    this.#handed.clear();
  }

  #accept(socket: Socket): void {
    if (this.#o.admit && !this.#o.admit(socket)) {
      socket.on('error', this.#o.onError);
      return this.#o.shed?.(socket);
    }
    const p = new Pending(this, socket, this.#clock.now());
    this.#pending.add(p);
    socket.on('error', this.#o.onError);
    socket.on('data', p.onData);
    socket.on('close', p.onClose);
    socket.on('end', p.onEnd);
  }

  /** @internal (Pending's listener) */
  data(p: Pending, chunk: Buffer): void {
    const buf = p.buffered ? Buffer.concat([p.buffered, chunk]) : chunk;
    const end = headEnd(buf);
    if (end < 0) {
      // Node's parser answers an oversized head (431) and malformed bytes (400) at once, as it did; a head that
      // may still become a plain upgrade waits here.
      if (buf.length >= this.#o.maxHeaderBytes || !plausiblePartialHead(buf)) return this.#handOver(p, buf);
      p.buffered = Buffer.from(buf);
      return;
    }
    const req = end + 4 <= this.#o.maxHeaderBytes ? parseUpgradeHead(buf, end, p.socket) : undefined;
    if (!req) return this.#handOver(p, buf);
    this.#detach(p);
    const socket = p.socket;
    // As Node does with an upgraded socket: nothing is read until the relay listens (and resumes it).
    socket.pause();
    const rest = buf.length > end + 4 ? Buffer.from(buf.subarray(end + 4)) : EMPTY;
    this.#o.upgrade(req, socket, rest);
  }

  /** @internal (Pending's listener) */
  forget(p: Pending): void {
    this.#detach(p);
  }

  /** @internal (Pending's listener) As Node's server does on a half-close before a complete request: an
   *  unfinished head is refused (400), an empty connection is closed. */
  ended(p: Pending): void {
    const started = p.buffered !== undefined;
    this.#detach(p);
    if (started) this.#o.cutShort(p.socket);
    else p.socket.end();
  }

  #detach(p: Pending): void {
    this.#pending.delete(p);
    p.buffered = undefined;
    p.socket.removeListener('data', p.onData);
    p.socket.removeListener('close', p.onClose);
    p.socket.removeListener('end', p.onEnd);
  }

  /** The HTTP server takes the connection with the bytes read so far, as if it had read them itself. */
  #handOver(p: Pending, bytes: Buffer): void {
    this.#detach(p);
    const socket = p.socket;
    socket.removeListener('error', this.#o.onError);
    // Paused, so the bytes put back wait until the server's listeners are on; resume() then delivers them first.
    socket.pause();
    socket.unshift(bytes);
    this.#handed.set(socket, p.started);
    socket.once('close', () => this.#handed.delete(socket));
    this.#http.call(this.#server, socket);
    socket.resume();
  }

  /** Answers 408 to every connection whose first head is not complete one deadline after it was accepted,
   *  whichever parser is reading it. The interval calls it; a test with a manual clock may too. */
  sweep(): void {
    const now = this.#clock.now();
    for (const p of this.#pending) {
      if (now - p.started < this.#o.handshakeTimeoutMs) continue;
      this.#detach(p);
      this.#o.timedOut(p.socket);
    }
    for (const [socket, started] of this.#handed) {
      if (now - started < this.#o.handshakeTimeoutMs) continue;
      this.#handed.delete(socket);
      this.#o.timedOut(socket);
    }
  }
}
