// A plain, readable view of a build result for whole-output comparison with golden YAML files.
import assert from 'node:assert/strict';
import type { BuildResult } from '../../src/dag/build.ts';
import type { RoutingBuildResult } from '../../src/dag/routing-apis.ts';
import type { BackendStatus } from '../../src/model/snapshot.ts';

export function buildView(r: BuildResult): unknown {
  const c = r.content;
  return {
    routes: [...c.routes.values()].map((route) => ({
      key: route.key,
      rules: route.rules.map((rule) => ({
        backends: rule.backends.map((b) => ({
          id: b.id,
          weight: b.weight,
          resolved: b.resolved,
          endpoints: b.endpoints.map((e) => `${e.address} ${e.state}${e.zone ? ` zone=${e.zone}` : ''}${e.podName ? ` pod=${e.podName}` : ''}`),
        })),
        // The provider key is shown by length only: goldens are read by people and kept in git.
        ...(rule.requestHeaders ? { requestHeaders: rule.requestHeaders } : {}),
        ...(rule.llm ? { llm: { ...rule.llm, providers: rule.llm.providers.map((p) => ({ ...p, apiKey: `(${p.apiKey.length} characters)` })) } } : {}),
      })),
    })),
    table: {
      exact: Object.fromEntries([...c.table.exact].map(([h, es]) => [h, es.map(entryView)])),
      wildcard: Object.fromEntries([...c.table.wildcard].map(([h, es]) => [h, es.map(entryView)])),
      any: c.table.any.map(entryView),
    },
    certificates: [...c.certificates.keys()],
    statuses: r.statuses.map((s) => ({
      key: s.key,
      conditions: s.conditions.map((x) => `${x.type}=${x.status} ${x.reason}: ${x.message} (gen ${x.observedGeneration})`),
      ...(s.readyEndpoints === undefined ? {} : { readyEndpoints: s.readyEndpoints }),
      ...(s.backends ? { backends: s.backends.map(backendStatusView) } : {}),
    })),
  };
}

function entryView(e: { pathType: string; path: string; headers: readonly { name: string; value: string }[]; routeKey: string; ruleIndex: number }): string {
  const h = e.headers.map((x) => ` ${x.name}=${x.value}`).join('');
  return `${e.pathType} ${e.path}${h} -> ${e.routeKey}#${e.ruleIndex}`;
}

function backendStatusView(b: BackendStatus): string {
  const ref = b.kind === 'Service' ? `Service ${b.name}:${b.port}` : 'Static';
  const notReady = b.notReady === undefined ? '' : ` notReady=${b.notReady}`;
  return `rules[${b.rule}].backendRefs[${b.backendRef}] ${ref} ready=${b.ready} draining=${b.draining}${notReady}`;
}

/** Two build results are the same, whole: content (hash, routes, endpoints, table), statuses, references and
 *  the routing-API statuses. */
export function assertSameBuild(got: RoutingBuildResult, want: RoutingBuildResult): void {
  assert.equal(got.content.hash, want.content.hash);
  assert.deepEqual(buildView(got), buildView(want));
  assert.deepEqual([...got.content.routes], [...want.content.routes]);
  assert.deepEqual([...got.content.endpoints], [...want.content.endpoints]);
  assert.deepEqual(got.content.table, want.content.table);
  assert.deepEqual(got.statuses, want.statuses);
  assert.deepEqual(got.references, want.references);
  assert.deepEqual(got.routingApis, want.routingApis);
}
