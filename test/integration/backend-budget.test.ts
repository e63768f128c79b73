// A backend that accepts TCP but never answers the handshake holds at most its share of the global handshake
// budget (circuitBreaker.maxPendingHandshakes, by default a quarter of --max-handshakes-in-flight): other routes
// keep being served.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { Health } from '../../src/health/health.ts';
import { connect, rawExchange, startEcho, startGate, staticRoute, upgradeRequest, type Echo, type Gate } from '../support/harness.ts';

const GLOBAL = 8;
const SHARE = 2;
let echo: Echo;
let hung: net.Server;
const hungSockets: net.Socket[] = [];
let gate: Gate;
let health: Health;

before(async () => {
  echo = await startEcho();
  hung = net.createServer((s) => {
    s.on('error', () => {});
    hungSockets.push(s);
    hung.emit('held');
  });
  hung.listen(0, '127.0.0.1');
  await once(hung, 'listening');
  const hungAddress = `127.0.0.1:${(hung.address() as AddressInfo).port}`;
  const slow = { upstream: { handshakeTimeoutSeconds: 120, maxConnectAttempts: 1 } };
  gate = await startGate([staticRoute('hung', [hungAddress], { hostnames: ['hung.test'], ...slow }), staticRoute('fine', [echo.address])], {
    maxHandshakesInFlight: GLOBAL,
    hooks: {
      admission: [(ctx) => health.admission(ctx)],
      upstreamAttempt: (ctx, pick) => health.hooks().upstreamAttempt(ctx, pick),
      upstreamResult: (e, ok, info) => health.hooks().upstreamResult(e, ok, info),
    },
  });
  health = new Health({ holder: gate.holder, log: pino({ level: 'silent' }), metrics: gate.metrics, defaultMaxPendingHandshakes: SHARE });
  health.start();
});

after(async () => {
  health?.stop();
  await gate.close();
  await echo.close();
  for (const s of hungSockets) s.destroy();
  hung.close();
});

test('a hung backend holds its share of the handshake budget; another route is still served', async () => {
  const clients: net.Socket[] = [];
  const held = new Promise<void>((resolve) => hung.on('held', () => hungSockets.length === SHARE && resolve()));
  for (let i = 0; i < SHARE; i++) {
    const c = net.connect(gate.port, '127.0.0.1');
    c.on('error', () => {});
    c.write(upgradeRequest('/', { Host: 'hung.test' }));
    clients.push(c);
  }
  await held;
  // Past its share, the hung backend's clients are refused at once instead of taking the global slots.
  const refused = await Promise.all(Array.from({ length: GLOBAL }, () => rawExchange(gate.port, upgradeRequest('/', { Host: 'hung.test' }))));
  assert.deepEqual(new Set(refused.map((r) => `${r.status} ${r.headers['wsgate-reason']}`)), new Set(['503 circuit_open']));
  assert.equal(hungSockets.length, SHARE);
  // The other route gets a slot of the global budget.
  const ws = await connect(gate.url('/'));
  ws.close();
  for (const c of clients) c.destroy();
});
