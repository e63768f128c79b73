// Every example route is valid: the standalone validator accepts it, and the pure builder accepts it in the
// mode it is written for (Kubernetes examples reference Services; standalone ones use static endpoints). An
// example that also carries the backend's Deployment and Service (for kubectl apply -f) has its routes checked
// on their own, and its Deployment checked against the rollout contract of docs/rollouts.md.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as yaml from 'js-yaml';
import { createSpecValidator } from '../../src/api/validate.ts';
import { createBuilder } from '../../src/dag/build.ts';
import { loadRoutes } from '../../src/sources/file/load-routes.ts';

const dir = join(import.meta.dirname, '../../examples');
const tmp = mkdtempSync(join(tmpdir(), 'wsgate-examples-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Manifest = { kind?: string; spec?: Record<string, unknown> };
const hasLlmRule = (d: Manifest) => ((d.spec?.rules ?? []) as { llm?: unknown }[]).some((r) => r.llm !== undefined);
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
const manifests = (file: string) => (yaml.loadAll(readFileSync(join(dir, file), 'utf8')) as (Manifest | null)[]).filter((d): d is Manifest => d !== null);

for (const file of files) {
  test(`example ${file} is valid`, async () => {
    const docs = manifests(file);
    const routeDocs = docs.filter((d) => d.kind === 'WebSocketRoute');
    let path = join(dir, file);
    if (routeDocs.length < docs.length) {
      // An LLM route comes with the Secret of its provider keys instead of a backend.
      const companions = routeDocs.some(hasLlmRule) ? ['Secret'] : ['Deployment', 'Service'];
      assert.deepEqual([...new Set(docs.map((d) => d.kind))].filter((k) => k !== 'WebSocketRoute').sort(), companions, 'routes come with their backend only');
      path = join(tmp, file);
      writeFileSync(path, routeDocs.map((d) => yaml.dump(d)).join('---\n'));
    }
    const r = await loadRoutes([path], createSpecValidator());
    assert.deepEqual(r.problems, []);
    assert.ok(r.routes.length > 0);
    type Refs = { rules: { backendRefs?: { name?: string }[]; llm?: unknown }[] };
    const kubernetes = r.routes.some((x) => (x.spec as Refs).rules.some((rule) => (rule.backendRefs ?? []).some((b) => b.name !== undefined) || rule.llm !== undefined));
    const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: !kubernetes, mode: kubernetes ? 'kubernetes' : 'standalone' })({
      routes: r.routes, services: [], endpointSlices: [], secrets: [],
    });
    for (const s of built.statuses) {
      assert.equal(s.conditions.find((c) => c.type === 'Accepted')?.status, 'True', `${s.key}: ${JSON.stringify(s.conditions)}`);
    }
  });
}

// The contract: a deleted pod must keep serving for the route's drain window after wsgate starts draining it
// (a preStop sleep; the pod's Service endpoint turns terminating when the Pod is deleted, before preStop runs),
// and the grace period must cover the sleep with room for the process to exit. The kubelet runs preStop before
// SIGTERM, within terminationGracePeriodSeconds:
// https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
test('example backend Deployments keep the rollout contract: preStop sleep >= drain window < grace period', () => {
  type Container = { lifecycle?: { preStop?: { sleep?: { seconds?: number }; exec?: { command?: string[] } } } };
  type PodSpec = { terminationGracePeriodSeconds?: number; containers: Container[] };
  let checked = 0;
  for (const file of files) {
    const docs = manifests(file);
    const windows = docs.filter((d) => d.kind === 'WebSocketRoute').map((d) => (d.spec?.['drain'] as { windowSeconds?: number } | undefined)?.windowSeconds ?? 30);
    for (const d of docs.filter((x) => x.kind === 'Deployment')) {
      const pod = (d.spec?.['template'] as { spec: PodSpec }).spec;
      for (const c of pod.containers) {
        const pre = c.lifecycle?.preStop;
        const exec = pre?.exec?.command;
        const sleep = pre?.sleep?.seconds ?? (exec?.[0] === 'sleep' ? Number(exec[1]) : 0);
        for (const w of windows) assert.ok(sleep >= w, `${file}: preStop sleep ${sleep} s covers the drain window ${w} s`);
        const grace = pod.terminationGracePeriodSeconds ?? 30;
        assert.ok(grace >= sleep + 5, `${file}: terminationGracePeriodSeconds ${grace} leaves the process time to exit after the ${sleep} s sleep`);
        checked++;
      }
    }
  }
  assert.ok(checked > 0, 'an example Deployment exists');
});

test('docs/rollouts.md shows the example Deployment as it is in examples/rollout-backend.yaml', () => {
  const doc = readFileSync(join(import.meta.dirname, '../../docs/rollouts.md'), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => yaml.load(m[1]!) as Manifest);
  const shown = blocks.filter((b) => b.kind === 'Deployment');
  assert.deepEqual(shown, manifests('rollout-backend.yaml').filter((d) => d.kind === 'Deployment'));
});
