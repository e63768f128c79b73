// A collector that is down: connections go on as if tracing were off, the exporter keeps at most its queue
// (plus the one batch being sent) and drops the rest instead of growing, and once the collector listens again
// on its port, new spans reach it. The batch delay is far beyond the test: exports happen when a batch fills
// and at the explicit flush, never on a timer the test would wait for.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TracingConfig } from '../../src/config/tracing.ts';
import { createTracing, type Tracing } from '../../src/telemetry/tracing/provider.ts';
import { ProxyTracing } from '../../src/telemetry/tracing/proxy-tracing.ts';
import { connect, nextMessage, startEcho, staticRoute, startGate, type Echo, type Gate } from '../support/harness.ts';
import { testTracingConfig, OtlpReceiver } from '../support/otlp-receiver.ts';

const bounded = { timeout: 30_000 };
const maxQueueSize = 6;

let receiver: OtlpReceiver;
let echo: Echo;
let tracing: Tracing;
let gate: Gate;

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  echo = await startEcho();
  const c: TracingConfig = testTracingConfig(receiver.url, { exportTimeoutMs: 2000, maxQueueSize, maxExportBatchSize: maxQueueSize });
  tracing = createTracing(c);
  gate = await startGate([staticRoute('chat', [echo.address])], { tracing: new ProxyTracing(tracing.tracer) });
});

after(async () => {
  await gate.close();
  await tracing.shutdown();
  await echo.close();
  await receiver.stop();
});

test('collector down, then back: no connection suffers, spans are dropped past the queue, and flow again', bounded, async () => {
  await receiver.stop();
  const connections = 10;
  for (let i = 0; i < connections; i++) {
    const ws = await connect(gate.url('/'));
    ws.send(`message ${i}`);
    assert.equal((await nextMessage(ws)).data.toString(), `message ${i}`);
    ws.close();
    await gate.connections.whenEmpty();
  }
  // Three spans per connection were made while nothing listened; a failed export is not kept for later.
  await tracing.forceFlush().catch(() => undefined);
  await receiver.start();
  const traceId = '5b8efff798038103d269b633813fc60c';
  const ws = await connect(gate.url('/'), { headers: { traceparent: `00-${traceId}-eee19b7ec3c1b174-01` } });
  ws.close();
  await gate.connections.whenEmpty();
  await tracing.forceFlush();
  await receiver.when((spans) => spans.filter((s) => s.traceId === traceId).length === 3);
  const fromDowntime = receiver.spans.filter((s) => s.traceId !== traceId).length;
  assert.ok(fromDowntime <= 2 * maxQueueSize, `at most the queue and one batch in flight survive: ${fromDowntime} of ${3 * connections}`);
  assert.equal(receiver.unsupported, 0);
});
