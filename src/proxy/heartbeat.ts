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
    const s = heartbeatSettings(route.spec);
    if (!s) return () => {};
    const w = new Watch(this.#o.wheel, route, relay, s, dropClient, (why, side) => this.#closed(w, why, side));
    this.#watches.add(w);
    w.start();
    return () => {
      w.stop();
      this.#watches.delete(w);
    };
  }

  /** The proxy hooks: start watching after the 101, stop when the relay ends. */
  hooks(): { established: NonNullable<ProxyHooks['established']>; ended: NonNullable<ProxyHooks['ended']> } {
    const stops = new WeakMap<LiveConnection, () => void>();
    return {
      established: (ctx, conn, relay) => {
        // The watch lives as long as the connection: it keeps the client socket, not the handshake context.
        const client = ctx.socket;
        stops.set(conn, this.watch(conn.route, relay, () => client.destroy()));
      },
      ended: (conn) => {
        stops.get(conn)?.();
        stops.delete(conn);
      },
    };
  }

  #closed(w: Watch, why: 'heartbeat' | 'idle', side: RelaySide | undefined): void {
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

class Watch {
  readonly route: Route;
  readonly #wheel: TimerWheel;
  readonly #relay: WatchedRelay;
  readonly #s: HeartbeatSettings;
  readonly #dropClient: () => void;
  readonly #onClose: (why: 'heartbeat' | 'idle', side: RelaySide | undefined) => void;
  readonly #timer: WheelTimer;
  readonly #sides: SideState[] = [];
  readonly #idleStep: number;
  #lastCount = 0;
  #lastActivityAt = 0;
  #done = false;

  constructor(
    wheel: TimerWheel,
    route: Route,
    relay: WatchedRelay,
    s: HeartbeatSettings,
    dropClient: () => void,
    onClose: (why: 'heartbeat' | 'idle', side: RelaySide | undefined) => void,
  ) {
    this.route = route;
    this.#wheel = wheel;
    this.#relay = relay;
    this.#s = s;
    this.#dropClient = dropClient;
    this.#onClose = onClose;
    this.#timer = wheel.timer(() => this.#fire());
    this.#idleStep = Math.max(wheel.tickMs, Math.floor(s.idleMs / 10));
  }

  start(): void {
    const now = this.#wheel.now();
    if (this.#s.intervalMs > 0) {
      this.#sides.push({ side: 'client', awaiting: false, sentAt: 0, sent: 0, nextPingAt: now + this.#s.intervalMs });
      if (this.#s.pingUpstream) this.#sides.push({ side: 'upstream', awaiting: false, sentAt: 0, sent: 0, nextPingAt: now + this.#s.intervalMs });
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
        this.#onClose('idle', undefined);
        this.#relay.close(CloseCode.GoingAway, 'idle timeout');
        return;
      }
    }
    this.#arm(now);
  }

  #timeout(side: RelaySide): void {
    this.#done = true;
    this.#onClose('heartbeat', side);
    if (side === 'client') {
      this.#relay.close(CloseCode.GoingAway, 'client heartbeat timeout');
      this.#dropClient();
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
