// Parent-based sampling through a real proxy and the real exporter: the ratio decides only for traces that
// begin at wsgate; a client's traceparent decides for its own (sampled flag, W3C Trace Context §3.2.2.5:
// https://www.w3.org/TR/trace-context/#sampled-flag). An unsampled handshake exports nothing, yet its backend
// still gets a traceparent (with the flag cleared) so the trace id reaches the backend's logs.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocketServer } from 'ws';
import type { TracingConfig } from '../../src/config/tracing.ts';
import { createTracing, type Tracing } from '../../src/telemetry/tracing/provider.ts';
import { ProxyTracing } from '../../src/telemetry/tracing/proxy-tracing.ts';
import { connect, staticRoute, startGate, type Gate } from '../support/harness.ts';
import { testTracingConfig, OtlpReceiver } from '../support/otlp-receiver.ts';

const bounded = { timeout: 20_000 };

let receiver: OtlpReceiver;
let wss: WebSocketServer;
const traceparents: string[] = [];
const gates: { gate: Gate; tracing: Tracing }[] = [];

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    traceparents.push(String(req.headers.traceparent));
    ws.on('error', () => {});
  });
});

after(async () => {
  for (const g of gates) {
    await g.gate.close();
    await g.tracing.shutdown();
  }
  wss.close();
  await receiver.stop();
});

async function gateAt(sampleRatio: number): Promise<{ gate: Gate; tracing: Tracing }> {
  const c: TracingConfig = testTracingConfig(receiver.url, { sampleRatio });
  const tracing = createTracing(c);
  const port = (wss.address() as AddressInfo).port;
  const gate = await startGate([staticRoute('chat', [`127.0.0.1:${port}`])], { tracing: new ProxyTracing(tracing.tracer) });
  const g = { gate, tracing };
  gates.push(g);
  return g;
}

/** One whole connection (open, then closed by the client), with an optional traceparent. */
async function visit(gate: Gate, traceparent?: string): Promise<string> {
  const before = traceparents.length;
  const ws = await connect(gate.url('/'), traceparent ? { headers: { traceparent } } : {});
  ws.close();
  await gate.connections.whenEmpty();
  assert.equal(traceparents.length, before + 1);
  return traceparents[before];
}

const clientTrace = '0af7651916cd43dd8448eb211c80319c';
const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

test('ratio 0: a trace begun here is not exported, a client-sampled one is, and the backend gets a traceparent either way', bounded, async () => {
  const { gate, tracing } = await gateAt(0);
  receiver.clear();
  const unsampled = traceparentPattern.exec(await visit(gate));
  assert.ok(unsampled, 'a traceparent upstream');
  assert.equal(unsampled[3], '00', 'not sampled');
  const sampled = traceparentPattern.exec(await visit(gate, `00-${clientTrace}-b7ad6b7169203331-01`));
  assert.ok(sampled);
  assert.deepEqual([sampled[1], sampled[3]], [clientTrace, '01']);
  await tracing.forceFlush();
  // Only the client-sampled connection's three spans: its handshake, its upstream attempt, its connection.
  assert.deepEqual(
    receiver.spans.map((s) => [s.traceId, s.kind]).sort(),
    [
      [clientTrace, 1],
      [clientTrace, 2],
      [clientTrace, 3],
    ],
  );
  // The upstream span is the parent the backend was given.
  assert.equal(receiver.spans.find((s) => s.kind === 3)!.spanId, sampled[2]);
});

test('ratio 1: every trace begun here is exported; a client that sent its trace unsampled keeps it unsampled', bounded, async () => {
  const { gate, tracing } = await gateAt(1);
  receiver.clear();
  const notSampled = traceparentPattern.exec(await visit(gate, `00-${clientTrace}-b7ad6b7169203331-00`));
  assert.ok(notSampled);
  assert.deepEqual([notSampled[1], notSampled[3]], [clientTrace, '00'], 'the client trace, unsampled');
  const ours = traceparentPattern.exec(await visit(gate));
  assert.ok(ours);
  assert.equal(ours[3], '01');
  await tracing.forceFlush();
  assert.deepEqual(
    receiver.spans.map((s) => [s.traceId, s.kind]).sort(),
    [
      [ours[1], 1],
      [ours[1], 2],
      [ours[1], 3],
    ],
  );
});
