// values.schema.json covers every value in values.yaml, closes every chart-defined level
// (additionalProperties false), and accepts the defaults. Kubernetes structures passed through as they are
// (affinity, security contexts, ...) are the listed exceptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { Ajv } from 'ajv';
import { chartDir } from '../support/helm.ts';

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; additionalProperties?: boolean | Schema; items?: Schema };

const values = load(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Schema;

/** Kubernetes objects passed through to the manifests unchanged: their own API validates them. */
const passthrough = new Set([
  'affinity', 'podSecurityContext', 'containerSecurityContext', 'controller.extraEnv[]', 'tolerations[]',
  'topologySpreadConstraints[]', 'resources.claims[]',
  ...['serviceMonitor', 'podMonitor'].flatMap((m) => [`metrics.${m}.relabelings[]`, `metrics.${m}.metricRelabelings[]`]),
]);
const isMap = (s: Schema) => typeof s.additionalProperties === 'object';

test('every value in values.yaml is described by the schema', () => {
  const visit = (v: unknown, s: Schema | undefined, path: string) => {
    assert.ok(s, `${path}: not in values.schema.json`);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return;
    if (passthrough.has(path) || isMap(s)) return;
    for (const [k, child] of Object.entries(v)) visit(child, s.properties?.[k], path ? `${path}.${k}` : k);
  };
  visit(values, schema, '');
});

test('every chart-defined object level is closed (additionalProperties: false)', () => {
  const visit = (s: Schema, path: string) => {
    if (passthrough.has(path)) return;
    if (s.properties) {
      assert.equal(s.additionalProperties, false, `${path || '(root)'}: additionalProperties must be false`);
      for (const [k, child] of Object.entries(s.properties)) visit(child, path ? `${path}.${k}` : k);
    } else if (s.type === 'object' && !isMap(s) && path !== 'global') {
      assert.fail(`${path}: an object with neither properties nor a value schema`);
    }
    if (s.items) visit(s.items, `${path}[]`);
  };
  visit(schema, '');
});

test('the defaults satisfy the schema, and a few bad values do not', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const check = ajv.compile(schema);
  assert.ok(check(values), ajv.errorsText(check.errors));
  const bad = (patch: Record<string, unknown>) => !check({ ...values, ...patch });
  assert.ok(bad({ autoscaling: { ...(values.autoscaling as object), mode: 'both' } }));
  assert.ok(bad({ unknownKey: 1 }));
  assert.ok(bad({ preStopSleepSeconds: -1 }));
  assert.ok(bad({ terminationGracePeriodSeconds: 'long' }));
});
