// Leader election on a coordination.k8s.io/v1 Lease, after client-go's: a lease counts as held while the
// local time at which its record last changed plus leaseDurationSeconds is in the future (local clock, so
// clock skew between nodes does not matter). That local time is the monotonic Clock: expiry, the renew
// deadline and the retry period must not jump with the wall clock. Wall time (wallNow) is only what is
// written into the Lease's acquireTime/renewTime, which other replicas and humans read but never compare. Acquire and renew are updates carrying the
// resourceVersion read, so a lost race is a 409 and nothing else. Only status writing needs a leader: losing the lease calls
// onStoppedLeading and goes back to being a candidate, it never throws or exits.
import type { Logger } from 'pino';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.ts';
import { KubeApiError, type KubeClient, type LeaseRecord } from '../kube/kube-client.ts';

export interface LeaderElectorOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  /** The Lease name (the chart's electionID). */
  readonly name: string;
  /** Unique per replica: pod name plus a random suffix. */
  readonly identity: string;
  readonly log: Logger;
  /** How long a lease is valid without renewal (rounded up to whole seconds in the Lease). Default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader that could not renew for this long gives up leadership. Default 10 s. */
  readonly renewDeadlineMs?: number;
  /** Interval between attempts, candidate and leader alike. Default 2 s. */
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  /** Lease expiry, renew deadline and the retry timer (monotonic); the process's clock. */
  readonly clock?: Clock;
  /** Milliseconds since the epoch, for the timestamps written into the Lease (default Date.now). */
  readonly wallNow?: () => number;
}

export class LeaderElector {
  private readonly o: LeaderElectorOptions;
  private readonly leaseSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private readonly wallNow: () => number;
  private readonly log: Logger;
  private observed: LeaseRecord | undefined;
  private observedAt = 0;
  private leading = false;
  private lastRenew = 0;
  private running = false;
  private timer: ClockTimer | undefined;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(opts: LeaderElectorOptions) {
    this.o = opts;
    this.leaseSeconds = Math.max(1, Math.ceil((opts.leaseDurationMs ?? 15_000) / 1000));
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.clock = opts.clock ?? systemClock();
    this.wallNow = opts.wallNow ?? Date.now;
    this.log = opts.log.child({ component: 'leader-elector', lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stops trying; a leader releases the lease (holderIdentity cleared) so another replica takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    await this.inFlight;
    if (!this.leading) return;
    const rec = this.observed;
    this.setLeading(false);
    if (!rec || rec.holderIdentity !== this.o.identity) return;
    const at = new Date(this.wallNow());
    try {
      await this.o.client.updateLease(this.o.namespace, this.o.name, rec.resourceVersion, {
        holderIdentity: '', leaseDurationSeconds: 1, acquireTime: at, renewTime: at, leaseTransitions: rec.leaseTransitions,
      });
      this.log.info('lease released');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not release the lease; it will expire');
    }
  }

  private tick(): void {
    if (!this.running) return;
    this.inFlight = this.attempt()
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'lease attempt failed'))
      .finally(() => {
        if (!this.running) return;
        // Candidates spread out a little (client-go's JitterUntil); a leader renews on the period.
        const delay = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + 0.2 * Math.random());
        this.timer = this.clock.setTimeout(() => this.tick(), delay);
      });
  }

  private async attempt(): Promise<void> {
    const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
      this.log.debug({ err: (err as Error).message }, 'lease call failed');
      return false;
    });
    if (!this.running) return;
    if (ok) {
      this.lastRenew = this.clock.now();
      this.setLeading(true);
    } else if (this.leading && (this.observed?.holderIdentity !== this.o.identity || this.clock.now() - this.lastRenew >= this.renewDeadlineMs)) {
      this.setLeading(false);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity } = this.o;
    const now = this.clock.now();
    const at = new Date(this.wallNow());
    const current = await client.getLease(namespace, name);
    if (!current) {
      try {
        this.remember(await client.createLease(namespace, name, { holderIdentity: identity, leaseDurationSeconds: this.leaseSeconds, acquireTime: at, renewTime: at, leaseTransitions: 0 }));
        return true;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) return false;
        throw err;
      }
    }
    this.remember(current);
    const heldByOther = current.holderIdentity !== '' && current.holderIdentity !== identity;
    if (heldByOther && this.observedAt + current.leaseDurationSeconds * 1000 > now) return false;
    const mine = current.holderIdentity === identity;
    try {
      this.remember(
        await client.updateLease(namespace, name, current.resourceVersion, {
          holderIdentity: identity,
          leaseDurationSeconds: this.leaseSeconds,
          acquireTime: mine ? current.acquireTime ?? at : at,
          renewTime: at,
          leaseTransitions: mine ? current.leaseTransitions : current.leaseTransitions + 1,
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }

  /** observedAt moves only when the record changes: that is what makes an unrenewed lease expire. */
  private remember(rec: LeaseRecord): void {
    const o = this.observed;
    if (!o || o.holderIdentity !== rec.holderIdentity || o.renewTime !== rec.renewTime || o.resourceVersion !== rec.resourceVersion) {
      this.observedAt = this.clock.now();
    }
    this.observed = rec;
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.log.info({ leading }, leading ? 'started leading' : 'stopped leading');
    try {
      if (leading) this.o.onStartedLeading();
      else this.o.onStoppedLeading();
    } catch (err) {
      this.log.error({ err }, 'leadership callback threw');
    }
  }
}
