// HTTP fallback (long-polling) requests pass the same address, origin and credential checks as upgrades:
// a route's auth cannot be bypassed by simply not upgrading.
import assert from 'node:assert/strict';
import { systemClock } from '../../src/util/clock.ts';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createBuilder } from '../../src/dag/build.ts';
import { createSecurity } from '../../src/policy/admission.ts';
import { affinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { BalancerState } from '../../src/proxy/balance/balancer.ts';
import { routeObject, silentLog, startGate, type Gate } from '../support/harness.ts';

const key = 'fallback-key';
let upstream: http.Server;
let gate: Gate;

before(async () => {
  upstream = http.createServer((_req, res) => res.end('polled'));
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const addr = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const security = createSecurity({ trustedProxies: [], log: silentLog });
  const balancer = new BalancerState();
  const affinity = affinityHooks({ secret: 'test', className: 'wsgate', log: silentLog, balancer, clock: systemClock(), fallback: { admission: security.fallbackAdmission } });
  gate = await startGate([], { balancer, hooks: { admission: [...security.admission, ...affinity.admission], httpFallback: affinity.httpFallback } });
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes: [
      routeObject('polling', {
        rules: [{ backendRefs: [{ endpoints: [addr] }] }],
        httpFallback: { enabled: true },
        allowedOrigins: ['https://app.example.com'],
        auth: { apiKey: { secretName: 'keys', header: 'X-Api-Key' } },
      }),
    ],
    services: [],
    endpointSlices: [],
    secrets: [{ metadata: { namespace: 'default', name: 'keys' }, data: { a: Buffer.from(key).toString('base64') } }],
  });
  gate.holder.publish(built.content);
  after(() => affinity.close());
});

after(async () => {
  await gate.close();
  upstream.close();
});

async function get(headers: Record<string, string>): Promise<{ status: number; reason: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${gate.port}/socket.io/?EIO=4&transport=polling`, { headers });
  return { status: res.status, reason: res.headers.get('wsgate-reason'), body: await res.text() };
}

test('fallback without credentials → 401; wrong origin → 403; with the key → proxied', async () => {
  assert.deepEqual(await get({}), { status: 401, reason: 'unauthorized', body: 'API key required\n' });
  const badOrigin = await get({ 'X-Api-Key': key, Origin: 'https://evil.example.net' });
  assert.equal(badOrigin.status, 403);
  assert.equal(badOrigin.reason, 'origin_not_allowed');
  assert.deepEqual(await get({ 'X-Api-Key': key, Origin: 'https://app.example.com' }), { status: 200, reason: null, body: 'polled' });
});
