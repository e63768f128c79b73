// Health following the holder looks only at the routes a swap changed (the snapshot's routes are a ChunkedMap
// that shares the unchanged ones); after any sequence of snapshots it must hold what a whole sync of each snapshot
// holds: the same probes in the same states, the same outlier groups and ejections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createBuilder } from '../../src/dag/build.ts';
import type { RouteObject } from '../../src/dag/input.ts';
import { groupKey, Health } from '../../src/health/health.ts';
import { ChunkedMap, mapChanges } from '../../src/model/chunked-map.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import type { ObjectKey, Route, Snapshot } from '../../src/model/snapshot.ts';
import { silentLog } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';

const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' });
const flush = () => new Promise((r) => setImmediate(r));

/** A route: its static endpoints (of 6 addresses), and a health check (one of two paths) or none. */
const routeArb = fc.record({ addrs: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }), check: fc.constantFrom(undefined, '/a', '/b') });
const tableArb = fc.array(fc.option(routeArb, { nil: undefined }), { minLength: 4, maxLength: 4 });

function routeObject(i: number, r: { addrs: number[]; check: string | undefined }): RouteObject {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { namespace: 'default', name: `r${i}`, generation: 1 },
    spec: {
      hostnames: [`r${i}.example`],
      rules: [{ backendRefs: [{ endpoints: r.addrs.map((a) => `127.0.0.1:${1000 + a}`) }] }],
      ...(r.check ? { healthCheck: { type: 'HTTP', path: r.check, intervalSeconds: 5, timeoutSeconds: 1 } } : {}),
      outlierDetection: { consecutiveFailures: 1 },
    },
  };
}

test('health: following swaps route by route holds what a whole sync of each snapshot holds', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(tableArb, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(3), fc.nat(3)), { maxLength: 6 }), async (tables, failures) => {
      const clock = new ManualClock();
      // Odd ports fail their probes; every probe answers on a later turn, as a real one does.
      const prober = async (t: { port: number }) => {
        await null;
        return { ok: t.port % 2 === 0, detail: 'fake' };
      };
      const holder = new SnapshotHolder();
      const following = new Health({ holder, log: silentLog, clock, prober });
      const whole = new Health({ holder: new SnapshotHolder(), log: silentLog, clock, prober });
      following.start();
      let routes = ChunkedMap.empty<ObjectKey, Route>();
      try {
        for (const table of tables) {
          const built = build({ routes: table.flatMap((r, i) => (r ? [routeObject(i, r)] : [])), services: [], endpointSlices: [], secrets: [] });
          // As the build thread hands them over: a route that compiles the same is the previous object.
          const same = (a: Route | undefined, b: Route) => a !== undefined && JSON.stringify(a) === JSON.stringify(b);
          routes = routes.with([...mapChanges(built.content.routes, routes)].map((c) => [c.key, c.now && same(c.before, c.now) ? c.before : c.now] as const));
          const s: Snapshot = holder.publish({ ...built.content, routes });
          whole.sync(s);
          // The same failures reported to both, through the groups of this snapshot, for endpoints the backend has
          // (the proxy reports only the endpoint it picked from the backend).
          for (const [ri, n] of failures) {
            const route = [...s.routes.values()][ri];
            const b = route?.rules[0]!.backends[0];
            if (!route || !b || !route.outlier) continue;
            const e = b.endpoints[n % b.endpoints.length]!;
            for (const h of [following, whole]) h.outlier.report(groupKey(route, b), e.key, false, b.endpoints.map((x) => x.key), route.outlier);
          }
          clock.advance(5_000);
          await flush();
          await flush();
          assert.equal(following.active.size, whole.active.size);
          assert.deepEqual([...following.outlier.groups()].sort(), [...whole.outlier.groups()].sort());
          for (let i = 0; i < 4; i++)
            for (let a = 1; a <= 6; a++) {
              const ep = `static|127.0.0.1:${1000 + a}`;
              assert.equal(following.active.state(`default/r${i}`, ep), whole.active.state(`default/r${i}`, ep));
              const g = `default/r${i}|static:default/r${i}/0/0`;
              assert.equal(following.outlier.ejected(g, ep), whole.outlier.ejected(g, ep));
            }
        }
      } finally {
        following.stop();
        whole.stop();
      }
    }),
    { numRuns: 40 },
  );
});
