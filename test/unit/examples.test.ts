// Every example route is valid: the standalone validator accepts it, and the pure builder accepts it in the
// mode it is written for (Kubernetes examples reference Services; standalone ones use static endpoints).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createSpecValidator } from '../../src/api/validate.ts';
import { createBuilder } from '../../src/build/build.ts';
import { loadRoutes } from '../../src/sources/file/load-routes.ts';

const dir = join(import.meta.dirname, '../../examples');

for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
  test(`example ${file} is valid`, async () => {
    const r = await loadRoutes([join(dir, file)], createSpecValidator());
    assert.deepEqual(r.problems, []);
    assert.ok(r.routes.length > 0);
    type Refs = { rules: { backendRefs: { name?: string }[] }[] };
    const kubernetes = r.routes.some((x) => (x.spec as Refs).rules.some((rule) => rule.backendRefs.some((b) => b.name !== undefined)));
    const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: !kubernetes, mode: kubernetes ? 'kubernetes' : 'standalone' })({
      routes: r.routes, services: [], endpointSlices: [], secrets: [],
    });
    for (const s of built.statuses) {
      assert.equal(s.conditions.find((c) => c.type === 'Accepted')?.status, 'True', `${s.key}: ${JSON.stringify(s.conditions)}`);
    }
  });
}
