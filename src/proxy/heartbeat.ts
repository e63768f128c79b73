// Heartbeats and idle timeouts, on the proxy's one shared timer wheel: one reusable wheel timer per connection,
// armed for the earliest of its deadlines (next ping, pong deadline, idle check), never a Node timer.
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
import type { TimerWheel, WheelTimer } from '../util/timer-wheel.ts';
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

type SpecLike = {
  heartbeat?: { intervalSeconds?: number; timeoutSeconds?: number; pingUpstream?: boolean };
  limits?: { idleTimeoutSeconds?: number; pingsAreActivity?: boolean };
};

export function heartbeatSettings(spec: SpecLike): HeartbeatSettings | undefined {
  const intervalMs = (spec.heartbeat?.intervalSeconds ?? 30) * 1000;
  const idleMs = (spec.limits?.idleTimeoutSeconds ?? 3600) * 1000;
  if (intervalMs === 0 && idleMs === 0) return undefined;
  return {
    intervalMs,
    timeoutMs: (spec.heartbeat?.timeoutSeconds ?? 10) * 1000,
    pingUpstream: spec.heartbeat?.pingUpstream ?? false,
    idleMs,
    pingsAreActivity: spec.limits?.pingsAreActivity ?? false,
  };
}

/** Settings per route: a Route is immutable within its snapshot, so they are computed once, not per connection. */
const settingsByRoute = new WeakMap<Route, HeartbeatSettings | null>();

function routeSettings(route: Route): HeartbeatSettings | undefined {
  let s = settingsByRoute.get(route);
  if (s === undefined) {
    s = heartbeatSettings(route.spec) ?? null;
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
  readonly #watches = new Set<Watch>();

  constructor(o: HeartbeatOptions) {
    this.#o = o;
    this.#log = o.log.child({ component: 'heartbeat' });
  }

  /** Connections being watched (tests, leak checks). */
  get size(): number {
    return this.#watches.size;
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
    this.#watches.add(w);
    w.start();
    return w;
  }

  #stop(w: Watch): void {
    w.stop();
    this.#watches.delete(w);
  }

  /** @internal A watch closed its connection (idle, or a peer that stopped answering). */
  closed(w: Watch, why: 'heartbeat' | 'idle', side: RelaySide | undefined): void {
    this.#watches.delete(w);
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

const NO_SIDES: readonly SideState[] = [];

class Watch {
  readonly route: Route;
  readonly #wheel: TimerWheel;
  readonly #relay: WatchedRelay;
  readonly #s: HeartbeatSettings;
  readonly #client: Droppable;
  readonly #owner: Heartbeats;
  readonly #timer: WheelTimer;
  /** Made at its exact size in start() (an empty array grown by push would reserve room for 17). */
  #sides: readonly SideState[] = NO_SIDES;
  readonly #idleStep: number;
  #lastCount = 0;
  #lastActivityAt = 0;
  #done = false;

  constructor(
    wheel: TimerWheel,
    route: Route,
    relay: WatchedRelay,
    s: HeartbeatSettings,
    client: Droppable,
    owner: Heartbeats,
  ) {
    this.route = route;
    this.#wheel = wheel;
    this.#relay = relay;
    this.#s = s;
    this.#client = client;
    this.#owner = owner;
    this.#timer = wheel.timer(() => this.#fire());
    this.#idleStep = Math.max(wheel.tickMs, Math.floor(s.idleMs / 10));
  }

  start(): void {
    const now = this.#wheel.now();
    if (this.#s.intervalMs > 0) {
      const client: SideState = { side: 'client', awaiting: false, sentAt: 0, sent: 0, nextPingAt: now + this.#s.intervalMs };
      this.#sides = this.#s.pingUpstream
        ? [client, { side: 'upstream', awaiting: false, sentAt: 0, sent: 0, nextPingAt: now + this.#s.intervalMs }]
        : [client];
    }
    this.#lastCount = this.#count();
    this.#lastActivityAt = now;
    this.#arm(now);
  }

  stop(): void {
    this.#done = true;
    this.#timer.disarm();
  }

  #count(): number {
    const p = this.#s.pingsAreActivity;
    return this.#relay.activity('client', p) + this.#relay.activity('upstream', p);
  }

  #fire(): void {
    if (this.#done) return;
    if (this.#relay.ended) return this.stop();
    const now = this.#wheel.now();
    for (const st of this.#sides) {
      if (st.awaiting) {
        if (this.#relay.heartbeat(st.side).answered >= st.sent) {
          st.awaiting = false;
          st.nextPingAt = st.sentAt + this.#s.intervalMs;
        } else if (now >= st.sentAt + this.#s.timeoutMs) {
          return this.#timeout(st.side);
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
    }
    if (this.#s.idleMs > 0) {
      const c = this.#count();
      if (c !== this.#lastCount) {
        this.#lastCount = c;
        this.#lastActivityAt = now;
      } else if (now - this.#lastActivityAt >= this.#s.idleMs) {
        this.#done = true;
        this.#owner.closed(this, 'idle', undefined);
        this.#relay.close(CloseCode.GoingAway, 'idle timeout');
        return;
      }
    }
    this.#arm(now);
  }

  #timeout(side: RelaySide): void {
    this.#done = true;
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
    for (const st of this.#sides) {
      if (!st.awaiting) due = Math.min(due, st.nextPingAt);
      else {
        // Looked at again at the pong deadline, and earlier when the next ping would be due (the pong has
        // usually come by then).
        due = Math.min(due, st.sentAt + this.#s.timeoutMs);
        if (st.sentAt + this.#s.intervalMs > now) due = Math.min(due, st.sentAt + this.#s.intervalMs);
      }
    }
    if (this.#s.idleMs > 0) due = Math.min(due, this.#lastActivityAt + this.#s.idleMs, now + this.#idleStep);
    if (due !== Infinity) this.#timer.arm(Math.max(0, due - now));
  }
}
