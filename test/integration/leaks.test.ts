// After many connections come and go — echo, heartbeats armed, closes from both sides — everything returns to
// baseline: no open sockets, no live connections or heartbeat watches, no armed wheel timers, the gauges at
// zero, and the heap back within a small margin of where it started.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Heartbeats } from '../../src/proxy/heartbeat.ts';
import { TimerWheel } from '../../src/util/timer-wheel.ts';
import { closed, connect, metricValue, nextMessage, silentLog, startEcho, startGate, staticRoute } from '../support/harness.ts';

// The test runner starts files without --expose-gc; this is the documented way to reach gc() anyway.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

test('sockets, timers, gauges and heap return to baseline after 3 × 400 connections', async () => {
  const echo = await startEcho();
  const wheel = new TimerWheel();
  const heartbeats = new Heartbeats({ wheel, log: silentLog });
  const hb = heartbeats.hooks();
  const gate = await startGate([staticRoute('echo', [echo.address], { heartbeat: { intervalSeconds: 30, timeoutSeconds: 10 }, limits: { idleTimeoutSeconds: 600 } })], {
    wheel,
    hooks: { established: hb.established, ended: hb.ended },
  });
  const openSockets = () => new Promise<number>((r) => gate.proxy.server.getConnections((_e, n) => r(n)));
  const cycle = async (n: number) => {
    const clients = await Promise.all(Array.from({ length: n }, () => connect(gate.url('/'))));
    assert.equal(heartbeats.size, n);
    await Promise.all(clients.map(async (c, i) => {
      c.send(`m${i}`);
      await nextMessage(c);
    }));
    // Half close from the client; then the upstream closes the other half.
    const ends = clients.map((c) => closed(c));
    clients.forEach((c, i) => i % 2 === 0 && c.close(1000));
    await Promise.all(ends.filter((_e, i) => i % 2 === 0));
    for (const s of echo.wss.clients) s.close(1001);
    for (const e of await Promise.all(ends.filter((_e, i) => i % 2 === 1))) assert.equal(e.code, 1001);
    // The heartbeat watch and the wheel's timers go in the same call that removes the connection.
    await gate.connections.whenEmpty();
    assert.equal(heartbeats.size, 0);
    assert.equal(wheel.size, 0);
    assert.equal(await openSockets(), 0);
    assert.equal(await metricValue(gate.metrics, 'wsgate_connections_active', { route: 'echo' }), 0);
  };
  await cycle(100); // warm-up: JIT, pools, metric children
  const before = heapAfterGc();
  for (let i = 0; i < 3; i++) await cycle(400);
  const growth = heapAfterGc() - before;
  process.stdout.write(`# leaks: heap ${(before / 1048576).toFixed(1)} MiB before, grew ${(growth / 1024).toFixed(0)} KiB over 1,200 connections\n`);
  assert.ok(growth < 4 * 1024 * 1024, `heap grew ${(growth / 1024).toFixed(0)} KiB over 1,200 connections`);
  await gate.close();
  await echo.close();
});
