// docs/install.md and the chart README stay true: the route in the guide is valid against the CRD, every
// `--set key=` it shows is a chart value, and the prometheus-adapter rule matches the HPA's metric.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { Ajv } from 'ajv';
import { buildCrd } from '../../src/api/crd.ts';
import { chartDir, repoRoot } from '../support/helm.ts';

const guide = readFileSync(join(repoRoot, 'docs', 'install.md'), 'utf8');
const chartReadme = readFileSync(join(chartDir, 'README.md'), 'utf8');
const notes = readFileSync(join(chartDir, 'templates', 'NOTES.txt'), 'utf8');
const yamlBlocks = [...guide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => load(m[1]) as Record<string, unknown>);

test('the guide\'s WebSocketRoute is valid against the CRD schema', () => {
  const routes = yamlBlocks.filter((d) => d.kind === 'WebSocketRoute');
  assert.ok(routes.length >= 1);
  const check = new Ajv({ strict: false, validateFormats: false }).compile(buildCrd().spec.versions[0].schema.openAPIV3Schema);
  for (const r of routes) assert.ok(check(r), JSON.stringify(check.errors));
});

test('every --set key in the guide and the chart README is a chart value', () => {
  const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
  type S = { properties?: Record<string, S>; additionalProperties?: unknown };
  for (const [, key] of `${guide}\n${chartReadme}`.matchAll(/--set\s+([\w.]+)=/g)) {
    let s: S | undefined = schema as S;
    for (const part of key.split('.')) {
      if (s?.properties) s = s.properties[part];
      else if (typeof s?.additionalProperties === 'object') s = s.additionalProperties as S;
      else s = undefined;
    }
    assert.ok(s, `--set ${key}: not a chart value`);
  }
});

test('the prometheus-adapter rule names the HPA metric, in the guide and in NOTES.txt', () => {
  const rule = (yamlBlocks.find((d) => d.rules) as { rules: { custom: Record<string, unknown>[] } }).rules.custom[0];
  assert.equal(rule.seriesQuery, 'wsgate_connections_active{namespace!="",pod!=""}');
  assert.deepEqual(rule.name, { matches: '^wsgate_connections_active$', as: 'wsgate_connections_active' });
  assert.deepEqual(rule.resources, { overrides: { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } } });
  for (const line of ["seriesQuery: 'wsgate_connections_active{namespace!=\"\",pod!=\"\"}'", 'as: "wsgate_connections_active"', "metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'"]) {
    assert.ok(notes.includes(line), `NOTES.txt lacks ${line}`);
  }
});
