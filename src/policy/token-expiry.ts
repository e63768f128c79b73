// auth.jwt.closeOnExpiry: a connection admitted with a token lives no longer than the token. At its `exp` plus
// clockSkewSeconds (the same tolerance the handshake allowed) the proxy closes both sides with 1008 "token
// expired", and the client reconnects with a fresh token. One wheel timer per such connection, on the proxy's
// shared timer wheel, so the close comes at most one wheel tick late.
import { CloseCode } from '../errors.ts';
import type { LiveConnection } from '../proxy/connections.ts';
import type { ProxyHooks } from '../proxy/hooks.ts';
import { WheelTimer, type TimerWheel } from '../util/timer-wheel.ts';

export interface TokenExpiryOptions {
  readonly wheel: TimerWheel;
  /** Wall-clock milliseconds, the time `exp` is measured in (tests pass the same clock as JwtPolicy's). */
  readonly now?: () => number;
}

/** What the timer needs from the relay. */
interface Closable {
  close(code: number, reason: string): void;
}

class ExpiryTimer extends WheelTimer {
  readonly #relay: Closable;

  constructor(wheel: TimerWheel, relay: Closable) {
    super(wheel);
    this.#relay = relay;
  }

  override fire(): void {
    this.#relay.close(CloseCode.PolicyViolation, 'token expired');
  }
}

export class TokenExpiry {
  readonly #o: TokenExpiryOptions;

  constructor(o: TokenExpiryOptions) {
    this.#o = o;
  }

  /** Arm at the upgrade, disarm when the relay ends (a connection that closed first never fires). */
  hooks(): { established: NonNullable<ProxyHooks['established']>; ended: NonNullable<ProxyHooks['ended']> } {
    const timers = new WeakMap<LiveConnection, ExpiryTimer>();
    const now = this.#o.now ?? Date.now;
    return {
      established: (ctx, conn, relay) => {
        const jwt = ctx.match.route.auth.jwt;
        const exp = ctx.claims?.exp;
        if (!jwt?.closeOnExpiry || typeof exp !== 'number') return;
        const t = new ExpiryTimer(this.#o.wheel, relay);
        t.arm(Math.max(0, exp * 1000 + jwt.clockSkewMs - now()));
        timers.set(conn, t);
      },
      ended: (conn) => {
        const t = timers.get(conn);
        if (!t) return;
        t.disarm();
        timers.delete(conn);
      },
    };
  }
}
