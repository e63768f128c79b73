// wsgate_endpoints is formatted when set, not on every scrape: after any sequence of sets, removals and resets,
// the /metrics text is exactly what prom-client's own formatting of the same Gauge gives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { Metrics } from '../../src/telemetry/metrics.ts';

const labels = fc.record({
  // Label values that need escaping in the text format (backslash, quote, newline) are among them.
  namespace: fc.constantFrom('apps', 'a"b', 'c\\d'),
  route: fc.constantFrom('chat', 'feed', 'x\ny'),
  state: fc.constantFrom('Active', 'NotReady', 'Draining'),
});
const op = fc.oneof(
  fc.record({ t: fc.constant('set' as const), labels, value: fc.nat(20) }),
  fc.record({ t: fc.constant('remove' as const), labels }),
  fc.record({ t: fc.constant('reset' as const) }),
);

/** The wsgate_endpoints block of a scrape (metrics are separated by a blank line). */
const block = (text: string): string | undefined => text.split('\n\n').find((b) => b.startsWith('# HELP wsgate_endpoints '));

test('endpoints gauge: the kept text equals prom-client formatting the same values', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 30 }), fc.array(fc.nat(30), { maxLength: 4 }), async (ops, scrapesAt) => {
      const m = new Metrics({ defaultMetrics: false });
      const check = async () => {
        const got = await m.registry.metrics();
        const want = await Registry.prototype.metrics.call(m.registry);
        assert.equal(block(got), block(want));
        assert.equal(got, want);
      };
      for (const [i, o] of ops.entries()) {
        if (o.t === 'set') m.endpoints.set(o.labels, o.value);
        else if (o.t === 'remove') m.endpoints.remove(o.labels);
        else m.endpoints.reset();
        if (scrapesAt.includes(i)) await check();
      }
      await check();
    }),
    { numRuns: 200 },
  );
});
