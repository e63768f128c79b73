// Per-principal limits of one LLM route: concurrent requests (per principal; the per-connection count is the
// session's), requests per minute and tokens per minute over a sliding 60 s window. Tokens are charged when the
// provider reports usage, so a request is admitted on what was spent, not on a guess of what it will spend.
// A refusal says when to retry. State is per principal and swept when idle, so a stream of distinct principals
// does not grow memory.
import type { Clock } from '../util/clock.ts';
import type { LlmLimits } from './route.ts';

const WINDOW_MS = 60_000;
/** A concurrency refusal cannot know when another request ends; this is the hint it gives. */
export const CONCURRENCY_RETRY_MS = 1000;

interface PrincipalState {
  inFlight: number;
  /** Admission times in the window, oldest first. */
  readonly requests: number[];
  /** [time, tokens] charges in the window, oldest first. */
  readonly tokens: [number, number][];
  tokenSum: number;
}

export type Admission = { readonly ok: true; readonly release: (tokens: number) => void } | { readonly ok: false; readonly reason: string; readonly retryAfterMs: number };

export class PrincipalLimits {
  readonly #clock: Clock;
  readonly #limits: LlmLimits;
  readonly #states = new Map<string, PrincipalState>();
  readonly #stopSweep: () => void;

  constructor(limits: LlmLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
    this.#stopSweep = clock.repeat(() => this.#sweep(), WINDOW_MS);
  }

  /** Principals with state (in flight or within the window): for tests and a gauge. */
  get size(): number {
    return this.#states.size;
  }

  admit(principal: string): Admission {
    const now = this.#clock.now();
    let s = this.#states.get(principal);
    if (!s) this.#states.set(principal, (s = { inFlight: 0, requests: [], tokens: [], tokenSum: 0 }));
    this.#prune(s, now);
    const l = this.#limits;
    if (s.inFlight >= l.concurrentPerPrincipal) return { ok: false, reason: 'concurrent_per_principal', retryAfterMs: CONCURRENCY_RETRY_MS };
    if (s.requests.length >= l.requestsPerMinute) return { ok: false, reason: 'requests_per_minute', retryAfterMs: s.requests[0]! + WINDOW_MS - now };
    if (s.tokenSum >= l.tokensPerMinute) {
      // The earliest moment enough charges leave the window to bring the sum under the limit.
      let sum = s.tokenSum;
      let at = now;
      for (const [t, n] of s.tokens) {
        sum -= n;
        at = t + WINDOW_MS;
        if (sum < l.tokensPerMinute) break;
      }
      return { ok: false, reason: 'tokens_per_minute', retryAfterMs: Math.max(1, at - now) };
    }
    s.inFlight++;
    s.requests.push(now);
    const state = s;
    let released = false;
    return {
      ok: true,
      release: (tokens) => {
        if (released) return;
        released = true;
        state.inFlight--;
        if (tokens > 0) {
          state.tokens.push([this.#clock.now(), tokens]);
          state.tokenSum += tokens;
        }
      },
    };
  }

  close(): void {
    this.#stopSweep();
  }

  #prune(s: PrincipalState, now: number): void {
    while (s.requests.length > 0 && s.requests[0]! + WINDOW_MS <= now) s.requests.shift();
    while (s.tokens.length > 0 && s.tokens[0]![0] + WINDOW_MS <= now) s.tokenSum -= s.tokens.shift()![1];
  }

  #sweep(): void {
    const now = this.#clock.now();
    for (const [p, s] of this.#states) {
      this.#prune(s, now);
      if (s.inFlight === 0 && s.requests.length === 0 && s.tokens.length === 0) this.#states.delete(p);
    }
  }
}
