// Defaults live once, in the schema (src/api/schema.ts); the builder (src/dag/compile) applies them. This fails
// when a file elsewhere in src/ restates one (`?? 30`, `?? 'LeastConnections'`, `pingUpstream ?? false`) or
// when the data plane reads a raw route spec instead of the compiled Route.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { restatedDefaults, schemaDefaults } from '../support/restated-defaults.ts';

const src = join(import.meta.dirname, '../../src');

test('no file in src/ outside api/ and dag/ restates a schema default, and the data plane reads no spec', () => {
  const found = restatedDefaults(src).map((f) => `${f.file}:${f.line}: ${f.why}: ${f.text}`);
  assert.deepEqual(found, []);
});

test('the check reads the defaults from the schema and catches the shapes a restatement takes', () => {
  const paths = schemaDefaults().map((d) => `${d.path}=${JSON.stringify(d.value)}`);
  for (const d of ['heartbeat.intervalSeconds=30', 'loadBalancer.policy="LeastConnections"', 'heartbeat.pingUpstream=false', 'limits.maxMessageBytes=1048576'])
    assert.ok(paths.includes(d), d);
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-defaults-'));
  try {
    mkdirSync(join(dir, 'proxy'));
    mkdirSync(join(dir, 'dag'));
    mkdirSync(join(dir, 'sources'));
    writeFileSync(
      join(dir, 'proxy', 'x.ts'),
      [
        'const a = (spec.heartbeat?.intervalSeconds ?? 30) * 1000;',
        "const b = route.spec.loadBalancer?.policy ?? 'LeastConnections';",
        'const c = h.pingUpstream ?? false;',
        'const d = x.maxMessageBytes ?? 1048576;',
        "const ok1 = normalizeTarget(req.url ?? '/');",
        'const ok2 = (m.get(k) ?? 0) + 1;',
        'const ok3 = debug ?? false;',
        'const ok4 = t ?? 300_000;',
      ].join('\n'),
    );
    // The builder applies defaults, and sources handle raw objects: neither is checked for these.
    writeFileSync(join(dir, 'dag', 'y.ts'), 'const a = spec.heartbeat?.intervalSeconds ?? 30;');
    writeFileSync(join(dir, 'sources', 'z.ts'), 'validate(o.spec.rules);');
    const found = restatedDefaults(dir).map((f) => `${f.file}:${f.line}`);
    assert.deepEqual(found, ['proxy/x.ts:1', 'proxy/x.ts:2', 'proxy/x.ts:3', 'proxy/x.ts:4']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
