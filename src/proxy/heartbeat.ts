// Heartbeats and idle timeouts, on the proxy's one shared timer wheel: one reusable wheel timer per connection,
// armed for the earliest of its deadlines (next ping, pong deadline, idle check), never a Node timer. The watch
// of a connection is that timer itself and keeps the client's ping state in its own fields: one object per
// connection (the upstream's ping state is a second one, only with pingUpstream).
//
// Heartbeat (route heartbeat.intervalSeconds > 0): every interval the proxy pings the client — and the upstream
// when pingUpstream — between frames (the relay injects the frame and swallows the pong that answers it; peers'
// own pings and pongs pass through). One ping is outstanding at a time per side, because a new ping would
// replace the tag the relay matches pongs against. No pong within timeoutSeconds: the peer is dead. Then
// - client silent: the upstream gets close 1001 (the client is going away) and the client socket is destroyed
//   at once — it does not read, so waiting for its close handshake would only hold the upstream longer;
// - upstream silent: the client gets close 1014 (the upstream failed), the same code as for an upstream that
//   vanished, and the relay's close deadline releases the silent upstream.
// A dead peer is found at most interval + timeout (+ one wheel tick) after it stopped answering.
//
// Idle (limits.idleTimeoutSeconds > 0): no data message started in either direction for that long closes both
// sides with 1001. Peers' pings count as activity only with limits.pingsAreActivity; the proxy's own pings and
// their pongs never do. Activity is sampled (at pings, and at least every tenth of the timeout), so the close
// comes between idleTimeout and idleTimeout × 1.1 after the last message.
import { CloseCode } from '../errors.ts';
import type { Route } from '../model/snapshot.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { WheelTimer, type TimerWheel } from '../util/timer-wheel.ts';
import type { LiveConnection } from './connections.ts';
import type { ProxyHooks } from './hooks.ts';
import type { HeartbeatState, RelaySide } from './relay/relay.ts';

export interface HeartbeatSettings {
  /** 0: no heartbeats. */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly pingUpstream: boolean;
  /** 0: no idle timeout. */
  readonly idleMs: number;
  readonly pingsAreActivity: boolean;
}

/** What the watcher needs from the relay. */
export interface WatchedRelay {
  readonly ended: boolean;
  ping(side: RelaySide): boolean;
  heartbeat(side: RelaySide): HeartbeatState;
  close(code: number, reason: string): void;
  /** Data messages started by a side so far, plus its pings when asked. */
  activity(side: RelaySide, pings: boolean): number;
}

/** The route's heartbeat and idle policies as one watch; undefined when both are off. */
export function heartbeatSettings(route: Pick<Route, 'heartbeat' | 'idle'>): HeartbeatSettings | undefined {
  const { heartbeat: h, idle } = route;
  if (h.intervalMs === 0 && idle.timeoutMs === 0) return undefined;
  return { intervalMs: h.intervalMs, timeoutMs: h.timeoutMs, pingUpstream: h.pingUpstream, idleMs: idle.timeoutMs, pingsAreActivity: idle.pingsAreActivity };
}

/** Settings per route: a Route is immutable within its snapshot, so they are computed once, not per connection. */
const settingsByRoute = new WeakMap<Route, HeartbeatSettings | null>();

function routeSettings(route: Route): HeartbeatSettings | undefined {
  let s = settingsByRoute.get(route);
  if (s === undefined) {
    s = heartbeatSettings(route) ?? null;
    settingsByRoute.set(route, s);
  }
  return s ?? undefined;
}

/** What a Watch destroys when the client stops answering: the client socket itself, or a caller's function. */
interface Droppable {
  destroy(): void;
}

interface SideState {
  readonly side: RelaySide;
  /** A ping is out and unanswered since sentAt. */
  awaiting: boolean;
  sentAt: number;
  sent: number;
  nextPingAt: number;
}

export interface HeartbeatOptions {
  readonly wheel: TimerWheel;
  readonly log: Logger;
  readonly metrics?: Metrics;
}

/** Watches every relayed connection of the proxy; one instance per proxy. */
export class Heartbeats {
  readonly #o: HeartbeatOptions;
  readonly #log: Logger;
  /** Watches started and not yet done: a count, not a set, so a connection has no entry here. */
  #active = 0;

  constructor(o: HeartbeatOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'heartbeat' });
  }

  /** Connections being watched (tests, leak checks). */
  get size(): number {
    return this.#active;
  }

  /**
   * Start watching a connection right after its relay is made. dropClient destroys the client socket (used
   * when the client stopped answering). The returned function stops watching; call it when the relay ends.
   */
  watch(route: Route, relay: WatchedRelay, dropClient: () => void): () => void {
    const w = this.#start(route, relay, { destroy: dropClient });
    if (!w) return () => {};
    return () => this.#stop(w);
  }

  /** The proxy hooks: start watching after the 101, stop when the relay ends. */
  hooks(): { established: NonNullable<ProxyHooks['established']>; ended: NonNullable<ProxyHooks['ended']> } {
    // The Watch itself is kept, no stop closure: an idle connection holds as little as possible.
    const watches = new WeakMap<LiveConnection, Watch>();
    return {
      established: (ctx, conn, relay) => {
        // The watch lives as long as the connection: it keeps the client socket, not the handshake context.
        const w = this.#start(conn.route, relay, ctx.socket);
        if (w) watches.set(conn, w);
      },
      ended: (conn) => {
        const w = watches.get(conn);
        if (!w) return;
        this.#stop(w);
        watches.delete(conn);
      },
    };
  }

  #start(route: Route, relay: WatchedRelay, client: Droppable): Watch | undefined {
    const s = routeSettings(route);
    if (!s) return undefined;
    const w = new Watch(this.#o.wheel, route, relay, s, client, this);
    this.#active++;
    w.start();
    return w;
  }

  #stop(w: Watch): void {
    w.stop();
  }

  /** @internal A watch is done (stopped, its relay ended, or it closed the connection); once per watch. */
  done(): void {
    this.#active--;
  }

  /** @internal A watch closed its connection (idle, or a peer that stopped answering). */
  closed(w: Watch, why: 'heartbeat' | 'idle', side: RelaySide | undefined): void {
    const l = { namespace: w.route.namespace, route: w.route.name };
    if (why === 'idle') {
      this.#o.metrics?.idleClosesTotal.inc(l);
      this.#log.debug({ route: w.route.key }, 'idle timeout');
    } else {
      this.#o.metrics?.heartbeatTimeoutsTotal.inc({ ...l, side: side ?? 'client' });
      this.#log.info({ route: w.route.key, side }, 'heartbeat timeout: peer did not answer the ping');
    }
  }
}

/** The watch of one connection: its wheel timer, and the client's ping state (SideState). */
class Watch extends WheelTimer implements SideState {
  readonly route: Route;
  readonly #relay: WatchedRelay;
  readonly #s: HeartbeatSettings;
  readonly #client: Droppable;
  readonly #owner: Heartbeats;
  /** The upstream's ping state, with pingUpstream only. */
  #up: SideState | undefined = undefined;
  #lastCount = 0;
  #lastActivityAt = 0;
  #done = false;
  // SideState of the client (used when intervalMs > 0).
  awaiting = false;
  sentAt = 0;
  sent = 0;
  nextPingAt = 0;

  constructor(
    wheel: TimerWheel,
    route: Route,
    relay: WatchedRelay,
    s: HeartbeatSettings,
    client: Droppable,
    owner: Heartbeats,
  ) {
    super(wheel);
    this.route = route;
    this.#relay = relay;
    this.#s = s;
    this.#client = client;
    this.#owner = owner;
  }

  get side(): RelaySide {
    return 'client';
  }

  start(): void {
    const now = this.wheel.now();
    if (this.#s.intervalMs > 0) {
      this.nextPingAt = now + this.#s.intervalMs;
      if (this.#s.pingUpstream) this.#up = { side: 'upstream', awaiting: false, sentAt: 0, sent: 0, nextPingAt: now + this.#s.intervalMs };
    }
    this.#lastCount = this.#count();
    this.#lastActivityAt = now;
    this.#arm(now);
  }

  stop(): void {
    this.disarm();
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner.done();
  }

  #count(): number {
    const p = this.#s.pingsAreActivity;
    return this.#relay.activity('client', p) + this.#relay.activity('upstream', p);
  }

  override fire(): void {
    if (this.#done) return;
    if (this.#relay.ended) return this.stop();
    const now = this.wheel.now();
    if (this.#s.intervalMs > 0) {
      if (!this.#ping(this, now)) return this.#timeout('client');
      if (this.#up && !this.#ping(this.#up, now)) return this.#timeout('upstream');
    }
    if (this.#s.idleMs > 0) {
      const c = this.#count();
      if (c !== this.#lastCount) {
        this.#lastCount = c;
        this.#lastActivityAt = now;
      } else if (now - this.#lastActivityAt >= this.#s.idleMs) {
        this.#finish();
        this.#owner.closed(this, 'idle', undefined);
        this.#relay.close(CloseCode.GoingAway, 'idle timeout');
        return;
      }
    }
    this.#arm(now);
  }

  /** One side's pings at a wake-up: false when its pong is overdue. */
  #ping(st: SideState, now: number): boolean {
    if (st.awaiting) {
      if (this.#relay.heartbeat(st.side).answered >= st.sent) {
        st.awaiting = false;
        st.nextPingAt = st.sentAt + this.#s.intervalMs;
      } else if (now >= st.sentAt + this.#s.timeoutMs) {
        return false;
      }
    }
    if (!st.awaiting && now >= st.nextPingAt) {
      if (this.#relay.ping(st.side)) {
        st.awaiting = true;
        st.sentAt = now;
        st.sent = this.#relay.heartbeat(st.side).sent;
      } else {
        // The side is closing: the relay's own close deadline takes it from here.
        st.nextPingAt = now + this.#s.intervalMs;
      }
    }
    return true;
  }

  #timeout(side: RelaySide): void {
    this.#finish();
    this.#owner.closed(this, 'heartbeat', side);
    if (side === 'client') {
      this.#relay.close(CloseCode.GoingAway, 'client heartbeat timeout');
      this.#client.destroy();
    } else {
      this.#relay.close(CloseCode.UpstreamFailed, 'upstream heartbeat timeout');
    }
  }

  #arm(now: number): void {
    let due = Infinity;
    if (this.#s.intervalMs > 0) {
      due = this.#due(this, now, due);
      if (this.#up) due = this.#due(this.#up, now, due);
    }
    if (this.#s.idleMs > 0) {
      const step = Math.max(this.wheel.tickMs, Math.floor(this.#s.idleMs / 10));
      due = Math.min(due, this.#lastActivityAt + this.#s.idleMs, now + step);
    }
    if (due !== Infinity) this.arm(Math.max(0, due - now));
  }

  /** The earlier of `due` and the next time this side needs looking at. */
  #due(st: SideState, now: number, due: number): number {
    if (!st.awaiting) return Math.min(due, st.nextPingAt);
    // Looked at again at the pong deadline, and earlier when the next ping would be due (the pong has usually
    // come by then).
    due = Math.min(due, st.sentAt + this.#s.timeoutMs);
    if (st.sentAt + this.#s.intervalMs > now) due = Math.min(due, st.sentAt + this.#s.intervalMs);
    return due;
  }
}
