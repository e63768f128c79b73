// Heartbeat and idle logic on a manual wheel clock with a scripted relay: timings exact, no sockets, no sleeps.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Heartbeats, heartbeatSettings, type WatchedRelay } from '../../src/proxy/heartbeat.ts';
import { compiled } from '../support/compiled-route.ts';
import type { HeartbeatState, RelaySide } from '../../src/proxy/relay/relay.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { holderWith, route } from '../support/health-snapshot.ts';
import { metricValue } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';

class FakeRelay implements WatchedRelay {
  ended = false;
  closes: { code: number; reason: string; at: number }[] = [];
  pings: { side: RelaySide; at: number }[] = [];
  answer: Record<RelaySide, boolean> = { client: true, upstream: true };
  messages: Record<RelaySide, number> = { client: 0, upstream: 0 };
  peerPings: Record<RelaySide, number> = { client: 0, upstream: 0 };
  readonly hb: Record<RelaySide, { sent: number; answered: number; lastSentAt: number; lastAnsweredAt: number }> = {
    client: { sent: 0, answered: 0, lastSentAt: 0, lastAnsweredAt: 0 },
    upstream: { sent: 0, answered: 0, lastSentAt: 0, lastAnsweredAt: 0 },
  };
  constructor(readonly now: () => number) {}
  ping(side: RelaySide): boolean {
    if (this.closes.length) return false;
    this.pings.push({ side, at: this.now() });
    const h = this.hb[side];
    h.sent++;
    h.lastSentAt = this.now();
    // The peer answers on the next turn of the clock when it is alive.
    if (this.answer[side]) {
      h.answered = h.sent;
      h.lastAnsweredAt = this.now();
    }
    return true;
  }
  heartbeat(side: RelaySide): HeartbeatState {
    return this.hb[side];
  }
  close(code: number, reason: string): void {
    this.closes.push({ code, reason, at: this.now() });
  }
  activity(side: RelaySide, pings: boolean): number {
    return this.messages[side] + (pings ? this.peerPings[side] : 0);
  }
}

function setup(spec: Record<string, unknown>) {
  const clock = new ManualClock(0);
  const wheel = new TimerWheel({ clock, tickMs: 100 });
  const metrics = new Metrics({ defaultMetrics: false });
  const hbs = new Heartbeats({ wheel, log: pino({ level: 'silent' }), metrics });
  const r = holderWith([route('chat', { rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:1001'] }] }], ...spec })]).holder.current()!.routes.get('default/chat')!;
  const relay = new FakeRelay(() => clock.now());
  let dropped = -1;
  const stop = hbs.watch(r, relay, () => (dropped = clock.now()));
  /** Moves time in 100 ms ticks (the wheel's interval fires at each); each(t) runs just before the tick at t. */
  const run = (ms: number, each?: (t: number) => void) => {
    const end = clock.now() + ms;
    while (clock.now() < end) {
      each?.(clock.now() + 100);
      clock.advance(100);
    }
  };
  return { wheel, hbs, relay, run, stop, metrics, dropped: () => dropped, now: () => clock.now() };
}

describe('heartbeats', () => {
  it('pings the client every interval while it answers; never the upstream unless asked', () => {
    const t = setup({ heartbeat: { intervalSeconds: 1, timeoutSeconds: 1 }, limits: { idleTimeoutSeconds: 0 } });
    t.run(5_000);
    assert.deepEqual(t.relay.pings.map((p) => `${p.side}@${p.at}`), ['client@1000', 'client@2000', 'client@3000', 'client@4000', 'client@5000']);
    assert.deepEqual(t.relay.closes, []);
  });

  it('a client that stops answering is closed within interval + timeout: 1001 upstream, client socket dropped', async () => {
    const t = setup({ heartbeat: { intervalSeconds: 1, timeoutSeconds: 1 }, limits: { idleTimeoutSeconds: 0 } });
    t.run(2_500);
    t.relay.answer.client = false; // silent from 2.5 s: the ping at 3 s goes unanswered
    t.run(3_000);
    assert.deepEqual(t.relay.closes, [{ code: 1001, reason: 'client heartbeat timeout', at: 4_000 }]);
    assert.equal(t.dropped(), 4_000);
    assert.ok(t.relay.closes[0].at - 2_500 <= 1_000 + 1_000, 'within interval + timeout of going silent');
    assert.equal(await metricValue(t.metrics, 'wsgate_heartbeat_timeouts_total', { route: 'chat', side: 'client' }), 1);
    assert.equal(t.hbs.size, 0);
    assert.equal(t.wheel.size, 0, 'nothing left armed');
  });

  it('pingUpstream: a silent upstream gets its client a 1014', () => {
    const t = setup({ heartbeat: { intervalSeconds: 2, timeoutSeconds: 1, pingUpstream: true }, limits: { idleTimeoutSeconds: 0 } });
    t.run(2_000);
    assert.deepEqual(t.relay.pings.map((p) => p.side), ['client', 'upstream']);
    t.relay.answer.upstream = false;
    t.run(5_000);
    assert.deepEqual(t.relay.closes, [{ code: 1014, reason: 'upstream heartbeat timeout', at: 5_000 }]);
    assert.equal(t.dropped(), -1);
  });

  it('timeout longer than the interval: no second ping while one is out', () => {
    const t = setup({ heartbeat: { intervalSeconds: 1, timeoutSeconds: 3 }, limits: { idleTimeoutSeconds: 0 } });
    t.relay.answer.client = false;
    t.run(6_000);
    assert.deepEqual(t.relay.pings.map((p) => p.at), [1_000]);
    assert.equal(t.relay.closes[0]?.at, 4_000);
  });

  it('idle timeout: no data message in either direction closes with 1001; messages reset it', async () => {
    const t = setup({ heartbeat: { intervalSeconds: 0 }, limits: { idleTimeoutSeconds: 2 } });
    t.run(1_500);
    t.relay.messages.upstream++;
    t.run(3_000);
    assert.equal(t.relay.closes.length, 1);
    const at = t.relay.closes[0].at;
    assert.ok(at >= 1_500 + 2_000 && at <= 1_500 + 2_200 + 100, `closed at ${at}: between 2 s and 2.2 s after the last message`);
    assert.equal(t.relay.closes[0].code, 1001);
    assert.equal(await metricValue(t.metrics, 'wsgate_idle_closes_total', { route: 'chat' }), 1);
  });

  it('peer pings keep a connection alive only with pingsAreActivity; the proxy’s own heartbeats never do', () => {
    for (const pingsAreActivity of [false, true]) {
      const t = setup({ heartbeat: { intervalSeconds: 1, timeoutSeconds: 1 }, limits: { idleTimeoutSeconds: 3, pingsAreActivity } });
      t.run(10_000, (now) => {
        if (now % 500 === 0) t.relay.peerPings.client++;
      });
      assert.equal(t.relay.closes.length, pingsAreActivity ? 0 : 1, `pingsAreActivity=${pingsAreActivity}`);
      if (!pingsAreActivity) assert.ok(t.relay.closes[0].at <= 3_000 + 300 + 100);
      t.stop();
    }
  });

  it('stop() (the relay ended) disarms the connection’s timer', () => {
    const t = setup({});
    assert.equal(t.wheel.size, 1);
    t.stop();
    assert.equal(t.wheel.size, 0);
    assert.equal(t.hbs.size, 0);
  });

  it('settings: defaults 30 s / 10 s, idle 1 h; both zero means nothing to watch', () => {
    assert.deepEqual(heartbeatSettings(compiled({})), { intervalMs: 30_000, timeoutMs: 10_000, pingUpstream: false, idleMs: 3_600_000, pingsAreActivity: false });
    assert.equal(heartbeatSettings(compiled({ heartbeat: { intervalSeconds: 0 }, limits: { idleTimeoutSeconds: 0 } })), undefined);
  });
});
