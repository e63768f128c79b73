// Resource exhaustion on wsgate's own side is wsgate's overload: answered 503 overloaded and counted, never held
// against a healthy endpoint.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, mock, test } from 'node:test';
import { WebSocket } from 'ws';
import type { Health } from '../../src/health/health.ts';
import { closed, connect, type Echo, type Gate, metricValue, rawExchange, startEcho, startGate, startGateWithHealth, staticRoute, upgradeRequest } from '../support/harness.ts';

let echo: Echo;
let gate: Gate;
let health: Health;

before(async () => {
  echo = await startEcho();
  // One failure would eject the endpoint, if it were counted.
  ({ gate, health } = await startGateWithHealth([staticRoute('local', [echo.address], { outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100 }, circuitBreaker: { consecutiveFailures: 1 } })]));
});

after(async () => {
  health.stop();
  await gate.close();
  await echo.close();
});

for (const code of ['EMFILE', 'ENFILE', 'EADDRNOTAVAIL', 'ENOBUFS']) {
  test(`an upstream connect failing with ${code} is 503 overloaded, counted, and the endpoint stays in`, async () => {
    // The connect fails as libuv reports it when socket(2)/bind(2) cannot get the resource: an 'error' event on
    // the socket before 'connect' (errno(3) for the codes).
    const real = net.connect.bind(net) as (...a: unknown[]) => net.Socket;
    let upstreamCalls = 0;
    const connectMock = mock.method(net, 'connect', (...args: unknown[]) => {
      if ((args[0] as { port?: number }).port !== echo.port) return real(...args);
      upstreamCalls++;
      const s = new net.Socket();
      process.nextTick(() => s.destroy(Object.assign(new Error(`connect ${code}`), { code, syscall: 'connect' })));
      return s;
    });
    let res;
    try {
      res = await rawExchange(gate.port, upgradeRequest('/'));
    } finally {
      connectMock.mock.restore();
    }
    assert.deepEqual([res.status, res.headers['wsgate-reason']], [503, 'overloaded']);
    assert.equal(upstreamCalls, 1, 'no second endpoint tried with the same shortage');
    assert.equal(await metricValue(gate.metrics, 'wsgate_local_resource_errors_total', { code }), 1);
    assert.equal(await metricValue(gate.metrics, 'wsgate_endpoint_ejections_total', { route: 'local' }), 0);
    // The endpoint still takes the next client.
    const ws = await connect(gate.url('/'));
    ws.close();
  });
}

test('--max-connections: past the cap a client gets 503 overloaded; a freed slot serves again', async () => {
  const capped = await startGate([staticRoute('capped', [echo.address])], { maxConnections: 2 });
  try {
    const open = [await connect(capped.url('/')), await connect(capped.url('/'))];
    const refused = new WebSocket(capped.url('/'));
    refused.on('error', () => {});
    const [, res] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number; headers: Record<string, string> }];
    assert.deepEqual([res.statusCode, res.headers['wsgate-reason']], [503, 'overloaded']);
    assert.equal(await metricValue(capped.metrics, 'wsgate_rejections_total', { route: '', reason: 'overloaded' }), 1);
    open[0].close();
    await closed(open[0]);
    await capped.connections.whenAtMost(1);
    // The client socket's close reaches the count on its own event: retry until the slot is free.
    let ws: WebSocket | undefined;
    while (!ws) ws = await connect(capped.url('/')).catch(() => undefined);
    ws.close();
    open[1].close();
  } finally {
    await capped.close();
  }
});
