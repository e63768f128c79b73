// Circuit breaking per backend. Two kinds of trip:
// - capacity: handshakes in flight and open connections (plus those in flight) against the route's limits;
//   refused while at the limit, admitted again the moment there is room — no state to recover from;
// - failures: `consecutiveFailures` failed connects/handshakes in a row open the circuit for `openSeconds`;
//   then it is half-open: exactly one handshake goes through as a probe, its success closes the circuit, its
//   failure opens it again. A probe the client abandoned proves nothing and frees the slot for the next one.
// Capacity is counted per backend (all routes together: it protects the pods); the failure state is per
// group (backend as seen by one route) because the thresholds are the route's.
import type { Clock } from '../util/clock.ts';

export interface BreakerConfig {
  readonly maxPendingHandshakes?: number;
  readonly maxConnections?: number;
  readonly consecutiveFailures?: number;
  readonly openMs: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerAttempt {
  readonly group: string;
  readonly backend: string;
  readonly probe: boolean;
}

interface GroupState {
  failures: number;
  openUntil: number;
  tripped: boolean;
  probeInFlight: boolean;
}

export class CircuitBreakers {
  readonly #clock: Clock;
  readonly #onChange: (group: string, state: BreakerState) => void;
  readonly #groups = new Map<string, GroupState>();
  readonly #pending = new Map<string, number>();

  constructor(o: { clock: Clock; onChange?: (group: string, state: BreakerState) => void }) {
    this.#clock = o.clock;
    this.#onChange = o.onChange ?? (() => {});
  }

  state(group: string): BreakerState {
    const g = this.#groups.get(group);
    if (!g?.tripped) return 'closed';
    return this.#clock.now() < g.openUntil ? 'open' : 'half-open';
  }

  pending(backend: string): number {
    return this.#pending.get(backend) ?? 0;
  }

  /** May a new handshake go to this backend through this group? Reserves nothing. */
  admits(group: string, backend: string, connections: number, cfg: BreakerConfig): boolean {
    const pending = this.pending(backend);
    if (cfg.maxPendingHandshakes !== undefined && pending >= cfg.maxPendingHandshakes) return false;
    if (cfg.maxConnections !== undefined && connections + pending >= cfg.maxConnections) return false;
    const g = this.#groups.get(group);
    if (!g?.tripped) return true;
    if (this.#clock.now() < g.openUntil) return false;
    return !g.probeInFlight;
  }

  /** A connect attempt starts; in half-open it is the probe. The token goes back to finished(). */
  started(group: string, backend: string): BreakerAttempt {
    this.#pending.set(backend, this.pending(backend) + 1);
    const g = this.#groups.get(group);
    const probe = g !== undefined && g.tripped && this.#clock.now() >= g.openUntil && !g.probeInFlight;
    if (probe) {
      g.probeInFlight = true;
      this.#onChange(group, 'half-open');
    }
    return { group, backend, probe };
  }

  /** The attempt's outcome; aborted: the client left before the upstream answered. */
  finished(a: BreakerAttempt, outcome: 'ok' | 'failed' | 'aborted', cfg: BreakerConfig): void {
    const p = this.pending(a.backend) - 1;
    if (p > 0) this.#pending.set(a.backend, p);
    else this.#pending.delete(a.backend);
    let g = this.#groups.get(a.group);
    if (g?.tripped) {
      // Only the probe moves a tripped circuit: attempts admitted before the trip that end afterwards say
      // nothing about the backend now.
      if (!a.probe) return;
      g.probeInFlight = false;
      if (outcome === 'ok') {
        this.#groups.delete(a.group);
        this.#onChange(a.group, 'closed');
      } else if (outcome === 'failed') {
        g.openUntil = this.#clock.now() + cfg.openMs;
        this.#onChange(a.group, 'open');
      }
      return;
    }
    if (outcome === 'aborted') return;
    if (outcome === 'ok') {
      this.#groups.delete(a.group);
      return;
    }
    if (cfg.consecutiveFailures === undefined) return;
    if (!g) this.#groups.set(a.group, (g = { failures: 0, openUntil: 0, tripped: false, probeInFlight: false }));
    if (++g.failures >= cfg.consecutiveFailures) {
      g.tripped = true;
      g.failures = 0;
      g.openUntil = this.#clock.now() + cfg.openMs;
      this.#onChange(a.group, 'open');
    }
  }

  groups(): IterableIterator<string> {
    return this.#groups.keys();
  }

  /** After a snapshot swap: forget groups whose route or backend is gone. Pending counts settle themselves. */
  /** After a swap: these groups are gone. */
  forget(groups: Iterable<string>): void {
    for (const g of groups) this.#groups.delete(g);
  }

  retain(live: ReadonlySet<string>): void {
    for (const k of this.#groups.keys()) if (!live.has(k)) this.#groups.delete(k);
  }
}
