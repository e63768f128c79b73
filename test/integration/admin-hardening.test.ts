// The admin port is reachable from the pod network: /debug/* only for loopback peers unless --debug-endpoints,
// request-head deadline (slowloris) and a connection cap.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type http from 'node:http';
import net from 'node:net';
import { after, test } from 'node:test';
import { createAdminServer, debugAllowed, listen } from '../../src/telemetry/admin-server.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { rawExchange } from '../support/harness.ts';

const servers: http.Server[] = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function admin(o: { headersTimeoutMs?: number; maxConnections?: number; debugEndpoints?: boolean } = {}): Promise<{ server: http.Server; port: number }> {
  const server = createAdminServer({ metrics: new Metrics({ defaultMetrics: false }), ready: () => ({ ready: true, why: '' }), snapshot: () => undefined, ...o });
  servers.push(server);
  const a = await listen(server, '127.0.0.1', 0);
  return { server, port: a.port };
}

test('debugAllowed: loopback peers only, unless --debug-endpoints', () => {
  const peers = ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '10.1.2.3', '::ffff:10.1.2.3', 'fd00::1', '0.0.0.0', undefined];
  assert.deepEqual(peers.map((p) => [p, debugAllowed(p, false), debugAllowed(p, true)]), [
    ['127.0.0.1', true, true], ['127.9.9.9', true, true], ['::1', true, true], ['::ffff:127.0.0.1', true, true],
    ['10.1.2.3', false, true], ['::ffff:10.1.2.3', false, true], ['fd00::1', false, true], ['0.0.0.0', false, true], [undefined, false, true],
  ]);
});

test('a loopback peer reads /debug/snapshot; /metrics and probes are served', async () => {
  const { port } = await admin();
  const get = (p: string) => rawExchange(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.deepEqual((await Promise.all(['/debug/snapshot', '/metrics', '/healthz', '/readyz'].map(get))).map((r) => r.status), [200, 200, 200, 200]);
});

test('a slowloris head gets 408 from the admin server', async () => {
  const { port } = await admin({ headersTimeoutMs: 200 });
  // Never finished: only the deadline ends it (Node answers 408, as for the proxy's listener).
  const res = await rawExchange(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  assert.equal(res.status, 408);
});

test('past the connection cap, a new connection is closed at accept; a freed slot serves again', async () => {
  const { server, port } = await admin({ maxConnections: 2 });
  const held: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const accepted = once(server, 'connection');
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    held.push(s);
    await accepted;
  }
  const extra = net.connect(port, '127.0.0.1');
  extra.on('error', () => {});
  const got: Buffer[] = [];
  extra.on('data', (d: Buffer) => got.push(d));
  extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(extra, 'close');
  assert.equal(Buffer.concat(got).length, 0, 'nothing served past the cap');
  const gone = once(held[0], 'close');
  held[0].destroy();
  await gone;
  // The server counts the freed slot when it sees the close: retry until it has (bounded by the test timeout).
  let res;
  do res = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  while (Number.isNaN(res.status));
  assert.equal(res.status, 200);
  for (const s of held) s.destroy();
});
