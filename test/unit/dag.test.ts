// The builder from YAML fixtures: objects in, the whole snapshot view and statuses out, compared with the
// golden expected.yaml of each case. WSGATE_UPDATE_GOLDEN=1 rewrites the goldens (review the diff!).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { createBuilder } from '../../src/dag/build.ts';
import { loadBuildCase } from '../support/build-fixtures.ts';
import { buildView } from '../support/snapshot-view.ts';

const dir = join(import.meta.dirname, '../fixtures/dag');
const update = process.env.WSGATE_UPDATE_GOLDEN === '1';

const loadCase = (name: string) => loadBuildCase(join(dir, name));

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

for (const name of readdirSync(dir).sort()) {
  test(`build fixture: ${name}`, () => {
    const { options, input } = loadCase(name);
    const build = createBuilder(options);
    const result = build(input);
    const view = buildView(result);
    const goldenPath = join(dir, name, 'expected.yaml');
    if (update) writeFileSync(goldenPath, yaml.dump(view, { lineWidth: 200, noRefs: true }));
    assert.deepEqual(view, yaml.load(readFileSync(goldenPath, 'utf8')));
    // Deterministic: shuffled input, identical output and hash.
    for (const seed of [1, 2, 3]) {
      const again = build({
        routes: shuffled(input.routes, seed),
        services: shuffled(input.services, seed),
        endpointSlices: shuffled(input.endpointSlices, seed),
        secrets: shuffled(input.secrets, seed),
      });
      assert.equal(again.content.hash, result.content.hash);
      assert.deepEqual(buildView(again), view);
    }
  });
}

test('the content hash changes with anything the data plane reads: a path match, a header match, a policy', () => {
  const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' });
  const hashOf = (spec: Record<string, unknown>) =>
    build({ routes: [{ apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'chat', namespace: 'default' }, spec: { rules: [{ backendRefs: [{ endpoints: ['127.0.0.1:9001'] }] }], ...spec } }], services: [], endpointSlices: [], secrets: [] }).content.hash;
  const rules = (match: Record<string, unknown>) => ({ rules: [{ matches: [match], backendRefs: [{ endpoints: ['127.0.0.1:9001'] }] }] });
  const hashes = [
    hashOf({}),
    hashOf(rules({ path: { value: '/a' } })),
    hashOf(rules({ path: { value: '/b' } })),
    hashOf(rules({ path: { type: 'Exact', value: '/b' } })),
    hashOf(rules({ path: { value: '/b' }, headers: [{ name: 'x-room', value: '1' }] })),
    hashOf({ heartbeat: { intervalSeconds: 5 } }),
    hashOf({ hostnames: ['chat.example.com'] }),
  ];
  assert.equal(new Set(hashes).size, hashes.length);
  assert.equal(hashOf({ heartbeat: { intervalSeconds: 30 } }), hashes[0], 'a default written out compiles the same');
});
