// The HTTP fallback on its own: bodies stream both ways, hop-by-hop headers stay on their hop, X-Forwarded-*
// is set, the affinity cookie is honoured and set, kept-alive upstream sockets are reused, an upstream that
// stays silent past httpFallback.timeoutSeconds gets 504, and a proxy that is shutting down answers 503.
import assert from 'node:assert/strict';
import { systemClock } from '../../src/util/clock.ts';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { affinityHooks, type AffinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { type Gate, metricValue, silentLog, startGate, staticRoute } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';

interface Upstream {
  readonly name: string;
  readonly address: string;
  readonly server: http.Server;
  readonly seen: http.IncomingHttpHeaders[];
  readonly sockets: Set<unknown>;
}

async function startUpstream(name: string): Promise<Upstream> {
  const seen: http.IncomingHttpHeaders[] = [];
  const sockets = new Set<unknown>();
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    sockets.add(req.socket);
    if (req.url === '/silent') return; // never answers
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'x-pod': name, 'keep-alive': 'timeout=5', 'x-hop': 'drop-me', connection: 'x-hop' });
      res.write('body:');
      res.end(Buffer.concat(chunks));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { name, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen, sockets };
}

let ups: Upstream[] = [];
let gate: Gate;
let hooks: AffinityHooks;
const metrics = new Metrics({ defaultMetrics: false });

before(async () => {
  ups = await Promise.all(['a', 'b'].map(startUpstream));
  const balancer = new BalancerState();
  hooks = affinityHooks({ secret: 's', className: 'wsgate', log: silentLog, balancer, clock: systemClock(), metrics });
  gate = await startGate(
    [staticRoute('poll', ups.map((u) => u.address), { sessionAffinity: { type: 'Cookie', cookie: { name: 'aff', ttlSeconds: 0 } }, httpFallback: { enabled: true, timeoutSeconds: 1 } })],
    { balancer, hooks: { admission: hooks.admission, httpFallback: hooks.httpFallback }, metrics },
  );
});

after(async () => {
  await gate.close();
  hooks.close();
  for (const u of ups) {
    u.server.closeAllConnections();
    u.server.close();
  }
});

const agent = new http.Agent({ keepAlive: true });
after(() => agent.destroy());

function request(path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gate.port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

test('proxied with a cookie, then pinned by it; hop-by-hop stripped, X-Forwarded-* set, bodies streamed', async () => {
  const first = await request('/poll?x=1', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-drop': '1', connection: 'keep-alive, x-drop' }, body: 'hello' });
  assert.equal(first.status, 200);
  assert.equal(first.body, 'body:hello');
  assert.equal(first.headers['x-hop'], undefined, 'a header the upstream named in Connection stays on its hop');
  const setCookie = first.headers['set-cookie']?.[0] ?? '';
  assert.match(setCookie, /^aff=[\w-]{22}; Path=\/; HttpOnly; SameSite=Lax$/);
  const pod = first.headers['x-pod'];
  const up = ups.find((u) => u.name === pod)!;
  const h = up.seen.at(-1)!;
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-drop'], undefined, 'a header the client named in Connection stays on its hop');
  assert.ok(h['x-request-id']);
  const cookie = setCookie.split(';')[0];
  for (let i = 0; i < 10; i++) {
    const r = await request(`/poll?i=${i}`, { headers: { cookie } });
    assert.equal(r.headers['x-pod'], pod, 'the cookie pins every request to one pod');
    assert.equal(r.headers['set-cookie'], undefined, 'a session cookie (ttlSeconds 0) needs no renewal');
  }
  // 11 requests to one pod over kept-alive upstream connections: far fewer sockets than requests.
  assert.ok(up.sockets.size <= 2, `${up.sockets.size} upstream sockets for 11 requests`);
});

test('an upstream silent past timeoutSeconds → 504', async () => {
  const r = await request('/silent');
  assert.equal(r.status, 504);
  assert.equal(r.headers['wsgate-reason'], 'upstream_timeout');
});

test('every fallback request is counted by the status it got, and timed', async () => {
  const labels = { namespace: 'default', route: 'poll' };
  const before200 = await metricValue(metrics, 'wsgate_http_requests_total', { ...labels, code: '200' });
  const before504 = await metricValue(metrics, 'wsgate_http_requests_total', { ...labels, code: '504' });
  for (let i = 0; i < 3; i++) assert.equal((await request('/poll')).status, 200);
  assert.equal((await request('/silent')).status, 504);
  // The counter moves when the server side of the answer closes, which may trail the client's end by a tick.
  const count = (code: string) => metricValue(metrics, 'wsgate_http_requests_total', { ...labels, code });
  await waitUntil(async () => (await count('200')) === before200 + 3, 'three 200s counted');
  await waitUntil(async () => (await count('504')) === before504 + 1, 'one 504 counted');
  const text = await metrics.registry.getSingleMetricAsString('wsgate_http_request_duration_seconds');
  assert.match(text, /wsgate_http_request_duration_seconds_count\{namespace="default",route="poll"\} \d+/);
});

test('while shutting down a fallback request gets 503 shutting_down', async () => {
  gate.proxy.beginShutdown();
  const drained = gate.proxy.drainAll(100);
  const r = await request('/poll');
  assert.equal(r.status, 503);
  assert.equal(r.headers['wsgate-reason'], 'shutting_down');
  await drained;
});
