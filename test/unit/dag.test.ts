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
