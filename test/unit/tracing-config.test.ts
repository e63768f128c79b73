// Tracing's Config: off by default; --otlp-endpoint over the OTEL_* variables of the OpenTelemetry
// specification (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/ and
// https://opentelemetry.io/docs/specs/otel/protocol/exporter/: a signal-specific endpoint is used as is, a base
// endpoint gets /v1/traces); bad values named with their flag or variable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { ConfigError } from '../../src/errors.ts';

const args = ['--config', 'routes.yaml'];

test('tracing is off without an endpoint, and when OTEL_SDK_DISABLED=true', () => {
  assert.equal(loadConfig(args, {}).tracing, undefined);
  assert.equal(loadConfig(args, { OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER_ARG: '0.5' }).tracing, undefined);
  assert.equal(loadConfig([...args, '--otlp-endpoint', 'http://collector:4318'], { OTEL_SDK_DISABLED: 'true' }).tracing, undefined);
});

test('the whole tracing config from the flag, with the defaults', () => {
  assert.deepEqual(loadConfig([...args, '--otlp-endpoint', 'http://collector:4318/'], {}).tracing, {
    url: 'http://collector:4318/v1/traces',
    headers: {},
    sampleRatio: 1,
    serviceName: 'wsgate',
    resourceAttributes: {},
    exportTimeoutMs: 10000,
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMs: 5000,
  });
});

test('the OTEL_* variables, and the flags over them', () => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318',
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=a',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b',
    OTEL_SERVICE_NAME: 'edge',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,service.name=ignored',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    OTEL_BSP_MAX_QUEUE_SIZE: '100',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50',
    OTEL_BSP_SCHEDULE_DELAY: '1000',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  };
  assert.deepEqual(loadConfig(args, env).tracing, {
    url: 'http://base:4318/v1/traces',
    headers: { authorization: 'Bearer abc', 'x-tenant': 'b' },
    sampleRatio: 0.25,
    serviceName: 'edge',
    resourceAttributes: { 'deployment.environment.name': 'prod', 'service.name': 'ignored' },
    exportTimeoutMs: 3000,
    maxQueueSize: 100,
    maxExportBatchSize: 50,
    scheduledDelayMs: 1000,
  });
  // The signal-specific endpoint is taken as is; the flag (or WSGATE_*) wins over both.
  assert.equal(loadConfig(args, { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/custom' }).tracing?.url, 'https://traces.example/custom');
  const flagged = loadConfig([...args, '--trace-sample-ratio', '0.01'], { ...env, WSGATE_OTLP_ENDPOINT: 'http://flag:4318' }).tracing;
  assert.deepEqual([flagged?.url, flagged?.sampleRatio], ['http://flag:4318/v1/traces', 0.01]);
  assert.equal(loadConfig(args, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).tracing?.sampleRatio, 0);
});

test('bad tracing values are reported with where they came from', () => {
  assert.throws(
    () =>
      loadConfig([...args, '--otlp-endpoint', 'collector:4318', '--trace-sample-ratio', '2'], {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_BSP_MAX_QUEUE_SIZE: 'lots',
        OTEL_EXPORTER_OTLP_HEADERS: 'novalue',
      }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.path).sort(), ['--otlp-endpoint', '--trace-sample-ratio', 'OTEL_BSP_MAX_QUEUE_SIZE', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_PROTOCOL']);
      return true;
    },
  );
  assert.throws(
    () => loadConfig(args, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'always_on' }),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.path === 'OTEL_TRACES_SAMPLER'),
  );
});
