// A backend process killed with SIGKILL under 200 connections: its clients get 1014 (not an abrupt end), the
// other backend's clients are untouched, the proxy keeps serving (passive health soon stops trying the dead
// endpoint), and the proxy process's file descriptors return to their baseline.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { WebSocket } from 'ws';
import type { Health } from '../../src/health/health.ts';
import { closed, connect, type Echo, type Gate, metricValue, nextMessage, released, startEcho, startGateWithHealth, staticRoute } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';

const fds = () => readdirSync('/proc/self/fd').length;

let victim: ChildProcess;
let victimAddress: string;
let survivor: Echo;
let gate: Gate;
let health: Health;
let baseline: number;

async function spawnBackend(name: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../support/ws-backend-child.ts', import.meta.url).pathname, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, address: `127.0.0.1:${String(line).trim()}` };
}

before(async () => {
  survivor = await startEcho();
  const v = await spawnBackend('victim');
  victim = v.child;
  victimAddress = v.address;
  ({ gate, health } = await startGateWithHealth([staticRoute('pair', [victimAddress, survivor.address], { heartbeat: { intervalSeconds: 0 } })]));
});

after(async () => {
  health.stop();
  await gate.close();
  await survivor.close();
  if (victim.exitCode === null && victim.signalCode === null) victim.kill('SIGKILL');
});

test('SIGKILL under 200 connections: 1014 to its clients only, the proxy keeps serving, fds back to baseline', async () => {
  // Baseline: proxy and survivor listening, victim running (its stdout pipe is counted, and goes with it).
  baseline = fds();
  const clients = await Promise.all(Array.from({ length: 200 }, () => connect(gate.url('/'))));
  const owner = new Map<WebSocket, string>();
  await Promise.all(
    clients.map(async (ws) => {
      const answer = nextMessage(ws);
      ws.send('who');
      // The survivor is a plain echo: "who" comes back as it is.
      owner.set(ws, String((await answer).data) === 'victim' ? 'victim' : 'survivor');
    }),
  );
  const onVictim = clients.filter((ws) => owner.get(ws) === 'victim');
  const onSurvivor = clients.filter((ws) => owner.get(ws) === 'survivor');
  assert.ok(onVictim.length > 50 && onSurvivor.length > 50, `spread ${onVictim.length}/${onSurvivor.length}`);
  const victimCloses = onVictim.map((ws) => closed(ws));
  let survivorCloses = 0;
  for (const ws of onSurvivor) ws.once('close', () => survivorCloses++);

  const t0 = performance.now();
  victim.kill('SIGKILL');
  const codes = await Promise.all(victimCloses);
  console.log(`# ${codes.length} clients of the killed backend closed within ${Math.round(performance.now() - t0)} ms`);
  assert.deepEqual([...new Set(codes.map((c) => c.code))], [1014]);
  // The proxy's own record of each connection ends once both of its sockets are closed.
  await gate.connections.whenAtMost(onSurvivor.length);
  assert.equal(await metricValue(gate.metrics, 'wsgate_closes_total', { route: 'pair', code: '1014' }), onVictim.length, 'closes counted');

  // The others never noticed.
  assert.equal(survivorCloses, 0);
  await Promise.all(
    onSurvivor.map(async (ws) => {
      const m = nextMessage(ws);
      ws.send('still here');
      assert.equal(String((await m).data), 'still here');
    }),
  );

  // New clients keep being served: each dead try moves to the live endpoint, then passive health ejects it.
  for (let i = 0; i < 10; i++) {
    const ws = await connect(gate.url('/'));
    const m = nextMessage(ws);
    ws.send('who');
    assert.equal(String((await m).data), 'who', 'echoed by the survivor');
    ws.close();
    await closed(ws);
  }
  assert.equal(health.outlier.ejected('default/pair|static:default/pair/0/0', `static|${victimAddress}`), true, 'the dead endpoint is ejected');
  assert.equal(await metricValue(gate.metrics, 'wsgate_endpoint_ejections_total', { route: 'pair' }), 1);

  await Promise.all(onSurvivor.map(async (ws) => (ws.close(), await closed(ws))));
  await gate.connections.whenEmpty();
  await released(survivor.wss);
  if (victim.exitCode === null && victim.signalCode === null) await once(victim, 'exit');
  // The victim's stdout pipe is closed with it: one fd below the baseline is the baseline without it.
  await waitUntil(() => fds() <= baseline - 1, `fds back to baseline (${baseline - 1}), now ${fds()}`, 10000);
  console.log(`# fds: baseline ${baseline} (with the victim's pipe), after ${fds()}`);
});
