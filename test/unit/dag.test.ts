// The builder from YAML fixtures: objects in, the whole snapshot view and statuses out, compared with the
// golden expected.yaml of each case. WSGATE_UPDATE_GOLDEN=1 rewrites the goldens (review the diff!).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as yaml from 'js-yaml';
import { createBuilder } from '../../src/dag/build.ts';
import type { BuildInput, BuildOptions } from '../../src/dag/input.ts';
import { buildView } from '../support/snapshot-view.ts';

const dir = join(import.meta.dirname, '../fixtures/dag');
const update = process.env.WSGATE_UPDATE_GOLDEN === '1';

interface Case { options?: Partial<BuildOptions>; objects: BuildInput }

function loadCase(name: string): { options: BuildOptions; input: BuildInput } {
  const docs = yaml.loadAll(readFileSync(join(dir, name, 'input.yaml'), 'utf8')) as Record<string, unknown>[];
  const options: BuildOptions = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' };
  const input = { routes: [] as unknown[], services: [] as unknown[], endpointSlices: [] as unknown[], secrets: [] as unknown[] };
  for (const d of docs) {
    if (!d) continue;
    if (d.kind === 'BuildOptions') Object.assign(options, d.options as Case['options']);
    else if (d.kind === 'WebSocketRoute') input.routes.push(d);
    else if (d.kind === 'Service') input.services.push(d);
    else if (d.kind === 'EndpointSlice') input.endpointSlices.push(d);
    else if (d.kind === 'Secret') input.secrets.push(d);
    else throw new Error(`${name}: unknown kind ${String(d.kind)}`);
  }
  return { options, input: input as unknown as BuildInput };
}

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
