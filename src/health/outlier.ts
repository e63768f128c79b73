// Passive health: consecutive failed connects/handshakes to one endpoint eject it for a while. The time grows
// with repeated ejections (base × n, capped) and shrinks again while the endpoint behaves (n drops by one per
// base period out of ejection), so a flapping pod stays out longer than one that failed once.
// State is kept per group — one backend as seen by one route — because the limits are per route and the
// share cap is a share of that backend. Expiry is computed from the clock when asked: no timers to leak.
import type { Clock } from '../util/clock.ts';

export interface OutlierConfig {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** Share of the backend's endpoints that may be out at once; floor(n × p / 100), so 50% of 1 is 0. */
  readonly maxEjectionPercent: number;
}

export interface EjectionEvent {
  readonly group: string;
  readonly endpoint: string;
  readonly durationMs: number;
  /** Ejections of this endpoint in the current streak (1 = first). */
  readonly streak: number;
}

interface EndpointState {
  failures: number;
  ejectedUntil: number;
  streak: number;
  lastEjectionEnd: number;
}

export class OutlierDetector {
  readonly #clock: Clock;
  readonly #onEject: (e: EjectionEvent) => void;
  readonly #groups = new Map<string, Map<string, EndpointState>>();

  constructor(o: { clock: Clock; onEject?: (e: EjectionEvent) => void }) {
    this.#clock = o.clock;
    this.#onEject = o.onEject ?? (() => {});
  }

  /**
   * One connect/handshake outcome. `members` are the endpoint keys the backend has now (the share cap is
   * computed over them). Returns true when this failure ejected the endpoint.
   */
  report(group: string, endpoint: string, ok: boolean, members: readonly string[], cfg: OutlierConfig): boolean {
    let g = this.#groups.get(group);
    if (!g) this.#groups.set(group, (g = new Map()));
    let s = g.get(endpoint);
    if (ok) {
      if (s) s.failures = 0;
      return false;
    }
    if (!s) g.set(endpoint, (s = { failures: 0, ejectedUntil: 0, streak: 0, lastEjectionEnd: -Infinity }));
    const now = this.#clock.now();
    // A handshake that started before the ejection may still fail after it: it says nothing new.
    if (s.ejectedUntil > now) return false;
    s.failures++;
    if (s.failures < cfg.consecutiveFailures) return false;
    const allowed = Math.floor((members.length * cfg.maxEjectionPercent) / 100);
    if (this.ejectedCount(group, members) >= allowed) return false;
    const decay = s.streak > 0 && Number.isFinite(s.lastEjectionEnd) ? Math.floor((now - s.lastEjectionEnd) / cfg.baseEjectionMs) : 0;
    s.streak = Math.max(0, s.streak - decay) + 1;
    const durationMs = Math.min(cfg.baseEjectionMs * s.streak, cfg.maxEjectionMs);
    s.ejectedUntil = now + durationMs;
    s.lastEjectionEnd = s.ejectedUntil;
    s.failures = 0;
    this.#onEject({ group, endpoint, durationMs, streak: s.streak });
    return true;
  }

  ejected(group: string, endpoint: string): boolean {
    const s = this.#groups.get(group)?.get(endpoint);
    return s !== undefined && s.ejectedUntil > this.#clock.now();
  }

  /** Until when (clock ms) the endpoint is out; 0 when it is in. */
  ejectedUntil(group: string, endpoint: string): number {
    const s = this.#groups.get(group)?.get(endpoint);
    return s && s.ejectedUntil > this.#clock.now() ? s.ejectedUntil : 0;
  }

  ejectedCount(group: string, members?: readonly string[]): number {
    const g = this.#groups.get(group);
    if (!g) return 0;
    const now = this.#clock.now();
    let n = 0;
    if (members) {
      for (const k of members) if ((g.get(k)?.ejectedUntil ?? 0) > now) n++;
    } else {
      for (const s of g.values()) if (s.ejectedUntil > now) n++;
    }
    return n;
  }

  groups(): IterableIterator<string> {
    return this.#groups.keys();
  }

  /** After a swap that changed only these groups: forget those gone (undefined) and, in the others, endpoints no
   *  longer published. */
  retainChanged(changed: ReadonlyMap<string, ReadonlySet<string> | undefined>): void {
    for (const [group, keep] of changed) {
      const g = this.#groups.get(group);
      if (!g) continue;
      if (!keep) this.#groups.delete(group);
      else for (const k of g.keys()) if (!keep.has(k)) g.delete(k);
    }
  }

  /** After a snapshot swap: forget groups and endpoints that are no longer published. */
  retain(live: ReadonlyMap<string, ReadonlySet<string>>): void {
    for (const [group, g] of this.#groups) {
      const keep = live.get(group);
      if (!keep) {
        this.#groups.delete(group);
        continue;
      }
      for (const k of g.keys()) if (!keep.has(k)) g.delete(k);
    }
  }
}
