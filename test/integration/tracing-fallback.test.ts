// The HTTP fallback's server span through the real proxy and the real fallback (affinityHooks builds it, as the
// data plane does): the real OTLP/HTTP exporter sends to the receiver double, and each test compares the whole
// span. Spans leave on an explicit flush only.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { affinityHooks, type AffinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { FallbackTracing } from '../../src/telemetry/tracing/fallback-tracing.ts';
import { createTracing, type Tracing } from '../../src/telemetry/tracing/provider.ts';
import { systemClock } from '../../src/util/clock.ts';
import { refusingPort, routeObject, silentLog, startGate, type Gate } from '../support/harness.ts';
import { testTracingConfig, OtlpReceiver, type AttrValue, type ReceivedSpan } from '../support/otlp-receiver.ts';

const bounded = { timeout: 20_000 };

let receiver: OtlpReceiver;
let tracing: Tracing;
let gate: Gate;
let hooks: AffinityHooks;
let upstream: http.Server;
let upPort: number;
let deadPort: number;
/** The traceparent of every request the upstream got. */
const traceparents: string[] = [];

before(async () => {
  receiver = new OtlpReceiver();
  await receiver.start();
  tracing = createTracing(testTracingConfig(receiver.url));
  upstream = http.createServer((req, res) => {
    traceparents.push(String(req.headers.traceparent));
    req.resume().on('end', () => res.writeHead(req.url?.startsWith('/busy') ? 503 : 200, { 'content-type': 'text/plain' }).end('ok'));
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upPort = (upstream.address() as AddressInfo).port;
  deadPort = refusingPort;
  const balancer = new BalancerState();
  hooks = affinityHooks({ secret: 's', className: 'wsgate', log: silentLog, balancer, clock: systemClock(), fallback: { tracing: new FallbackTracing(tracing.tracer) } });
  gate = await startGate(
    [
      routeObject('poll', {
        httpFallback: { enabled: true },
        rules: [
          { matches: [{ path: { type: 'PathPrefix', value: '/dead' } }], backendRefs: [{ endpoints: [`127.0.0.1:${deadPort}`] }] },
          { backendRefs: [{ endpoints: [`127.0.0.1:${upPort}`] }] },
        ],
      }),
    ],
    { balancer, hooks: { admission: hooks.admission, httpFallback: hooks.httpFallback } },
  );
});

after(async () => {
  await gate.close();
  hooks.close();
  await tracing.shutdown();
  upstream.closeAllConnections();
  upstream.close();
  await receiver.stop();
});

beforeEach(() => receiver.clear());

function request(path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gate.port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false }, (res) => {
      res.resume().on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

async function oneSpan(): Promise<ReceivedSpan> {
  await tracing.forceFlush();
  await receiver.received(1);
  assert.equal(receiver.spans.length, 1);
  return receiver.spans[0]!;
}

const volatile = new Set(['network.peer.port', 'server.port', 'wsgate.request_id']);

function shape(s: ReceivedSpan): unknown {
  return {
    name: s.name,
    kind: s.kind,
    status: s.status,
    attributes: Object.fromEntries(
      Object.entries(s.attributes)
        .map(([k, v]): [string, AttrValue] => [k, volatile.has(k) ? '<varies>' : v])
        .sort(([x], [y]) => x.localeCompare(y)),
    ),
    events: s.events,
  };
}

const common = {
  'client.address': '127.0.0.1',
  'network.peer.address': '127.0.0.1',
  'network.peer.port': '<varies>',
  'network.protocol.name': 'http',
  'network.protocol.version': '1.1',
  'server.address': '127.0.0.1',
  'server.port': '<varies>',
  'url.scheme': 'http',
  'wsgate.affinity': 'None',
  'wsgate.request_id': '<varies>',
  'wsgate.route': 'default/poll',
  'wsgate.upstream.attempt': 1,
};

function sorted(attributes: Record<string, AttrValue>): Record<string, AttrValue> {
  return Object.fromEntries(Object.entries(attributes).sort(([x], [y]) => x.localeCompare(y)));
}

test('a long-poll POST: a server span under the client traceparent, the upstream gets its context', bounded, async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const status = await request('/socket.io/?EIO=4&transport=polling&sid=abc', { method: 'POST', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'user-agent': 'poller/1' }, body: '40' });
  assert.equal(status, 200);
  const span = await oneSpan();
  assert.deepEqual(
    { traceId: span.traceId, parent: span.parentSpanId, upstream: traceparents.at(-1) },
    { traceId, parent: '00f067aa0ba902b7', upstream: `00-${traceId}-${span.spanId}-01` },
  );
  assert.deepEqual(shape(span), {
    name: 'POST',
    kind: 2,
    status: { code: 0, message: '' },
    attributes: sorted({
      ...common,
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      // The query (here a session id) is left out.
      'url.path': '/socket.io/',
      'user_agent.original': 'poller/1',
      'wsgate.backend': 'static:default/poll/1/0',
      'wsgate.endpoint': `127.0.0.1:${upPort}`,
      'wsgate.outcome': 'upstream_response',
      'wsgate.route.rule': 1,
    }),
    events: [],
  });
});

test("the upstream's 5xx is an error of the span; wsgate's own refusal carries its reason", bounded, async () => {
  assert.equal(await request('/busy'), 503);
  const busy = await oneSpan();
  receiver.clear();
  assert.equal(await request('/dead/x'), 502);
  const dead = await oneSpan();
  const pick = (s: ReceivedSpan) => ({
    root: s.parentSpanId === '',
    status: s.status,
    ...Object.fromEntries(['http.response.status_code', 'error.type', 'wsgate.outcome', 'wsgate.endpoint', 'wsgate.route.rule'].map((k) => [k, s.attributes[k]])),
  });
  assert.deepEqual(
    [pick(busy), pick(dead)],
    [
      { root: true, status: { code: 2, message: 'upstream answered 503' }, 'http.response.status_code': 503, 'error.type': '503', 'wsgate.outcome': 'upstream_response', 'wsgate.endpoint': `127.0.0.1:${upPort}`, 'wsgate.route.rule': 1 },
      { root: true, status: { code: 2, message: 'upstream_refused' }, 'http.response.status_code': 502, 'error.type': 'upstream_refused', 'wsgate.outcome': 'upstream_refused', 'wsgate.endpoint': `127.0.0.1:${deadPort}`, 'wsgate.route.rule': 0 },
    ],
  );
});
