// A plain, readable view of a build result for whole-output comparison with golden YAML files.
import type { BuildResult } from '../../src/build/build.ts';

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
    })),
  };
}

function entryView(e: { pathType: string; path: string; headers: readonly { name: string; value: string }[]; routeKey: string; ruleIndex: number }): string {
  const h = e.headers.map((x) => ` ${x.name}=${x.value}`).join('');
  return `${e.pathType} ${e.path}${h} -> ${e.routeKey}#${e.ruleIndex}`;
}
