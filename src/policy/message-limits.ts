// rateLimit.messagesPerSecond / bytesPerSecond after the upgrade, per connection and per configured direction,
// enforced by the relay's message check at each data frame header, before the frame's payload is forwarded.
// Messages are counted at their first frame; bytes are every data frame's payload (continuation frames of a
// fragmented message included), so fragmenting a message does not get around the byte budget.
// - Close: a frame beyond the budget gets 1008 (the relay sends it to the sender, 1001 to the other side); in
//   a fragmented message the fragments already forwarded stay forwarded.
// - Throttle: the frame passes (nothing is ever dropped or reordered) and reading from the sender stops until
//   the buckets are back in credit; TCP backpressure then slows the sender itself.
// Buckets (sized by the builder): messages hold `burst` (unset: one second's worth); bytes hold one second's
// worth or `burst` bytes when larger. A frame larger than the whole byte bucket passes on a full bucket and
// leaves it in debt.
import type { MessageRate } from '../model/route.ts';
import type { LiveConnection } from '../proxy/connections.ts';
import type { HandshakeContext } from '../proxy/hooks.ts';
import { Verdict, type MessageCheck, type Relay } from '../proxy/relay/relay.ts';
import type { Metrics } from '../telemetry/metrics.ts';
import { systemClock, type Clock } from '../util/clock.ts';
import { TokenBucket } from './token-bucket.ts';

export interface MessageLimitsOptions {
  readonly metrics?: Metrics;
  /** Bucket time and the timer that resumes a throttled sender (tests drive both by hand). */
  readonly clock?: Clock;
}

/** One direction's budget as a relay message check. */
export function messageCheck(
  rl: MessageRate,
  clock: Clock,
  /** waitMs() tells, at any later time, how long the sender still has to wait. */
  onThrottle: (waitMs: () => number) => void,
  onClose: () => void,
): MessageCheck | undefined {
  if (rl.messagesPerSecond === undefined && rl.bytesPerSecond === undefined) return undefined;
  const now0 = clock.now();
  const msgs = rl.messagesPerSecond !== undefined ? new TokenBucket(rl.messageBurst, rl.messagesPerSecond, now0) : undefined;
  const bytes = rl.bytesPerSecond !== undefined ? new TokenBucket(rl.byteBurst, rl.bytesPerSecond, now0) : undefined;
  if (rl.onExceed === 'Close') {
    return (len, first) => {
      // A continuation frame costs no message: with no byte budget there is nothing to check.
      if (!first && !bytes) return Verdict.Allow;
      const now = clock.now();
      // A frame larger than the whole byte bucket passes on a full bucket (and leaves it in debt).
      const okMsgs = !first || !msgs || msgs.waitMs(1, now) === 0;
      const okBytes = !bytes || bytes.waitMs(len, now) === 0;
      if (!okMsgs || !okBytes) {
        onClose();
        return Verdict.Close;
      }
      if (first) msgs?.force(1, now);
      bytes?.force(len, now);
      return Verdict.Allow;
    };
  }
  const waitMs = () => {
    const now = clock.now();
    return Math.max(msgs ? msgs.waitMs(1, now) : 0, bytes ? bytes.waitMs(0, now) : 0);
  };
  return (len, first) => {
    if (!first && !bytes) return Verdict.Allow;
    const now = clock.now();
    if (first) msgs?.force(1, now);
    bytes?.force(len, now);
    // Paused as soon as the next frame would not fit. Frames already read in the same chunk still pass (they
    // are in flight); they leave the buckets in debt, and the pause lasts until the debt is repaid.
    if (waitMs() === 0) return Verdict.Allow;
    onThrottle(waitMs);
    return Verdict.Throttle;
  };
}

export class MessageLimits {
  readonly #o: MessageLimitsOptions;
  readonly #clock: Clock;

  constructor(o: MessageLimitsOptions = {}) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock();
  }

  /** The proxy's `established` hook. */
  readonly established = (ctx: HandshakeContext, _conn: LiveConnection, relay: Relay): void => {
    const rl = ctx.match.route.rateLimit.messages;
    if (!rl) return;
    const route = ctx.match.route;
    const labels = { namespace: route.namespace, route: route.name };
    for (const side of rl.sides) {
      let pending = false;
      const check = messageCheck(
        rl,
        this.#clock,
        (waitMs) => {
          this.#o.metrics?.rejectionsTotal.inc({ ...labels, reason: 'message_throttled' });
          if (pending) return;
          pending = true;
          const later = (ms: number) => {
            this.#clock.setTimeout(() => {
              const more = waitMs();
              if (more > 0 && !relay.ended) return later(more);
              pending = false;
              relay.resumeFrom(side);
            }, ms);
          };
          later(waitMs());
        },
        () => this.#o.metrics?.rejectionsTotal.inc({ ...labels, reason: 'message_rate' }),
      );
      if (check) relay.setMessageCheck(side, check);
    }
  };
}
