// Standalone hot reload through the real file source, controller and proxy: 100 clients keep echoing through
// 50 rewrites of the config file (routes added, removed, changed) with 0 disconnects; an invalid file keeps
// the previous table; a route whose backend is removed is drained with paced 1012s.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as yaml from 'js-yaml';
import { loadConfig } from '../../src/config/config.ts';
import { serve, type Running } from '../../src/main.ts';
import { closed, connect, type Echo, metricValue, nextMessage, released, silentLog, startEcho } from '../support/harness.ts';
import { ManualClock } from '../support/manual-clock.ts';

let dir: string;
let file: string;
let echoes: Echo[];
let gate: Running;
// The process's clock: drain windows, the controller's hold-off and every other timer move only when a test
// advances it.
const clock = new ManualClock();
const holdoffMs = 5;

function doc(name: string, spec: Record<string, unknown>): string {
  return yaml.dump({ apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name, namespace: 'default' }, spec });
}

function write(docs: string[]): void {
  writeFileSync(file, docs.join('---\n'));
}

const echoRoute = (extra: Record<string, unknown> = {}) =>
  doc('echo', { rules: [{ matches: [{ path: { value: '/echo' } }], backendRefs: [{ endpoints: echoes.map((e) => e.address) }] }], drain: { windowSeconds: 1 }, ...extra });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsgate-reload-'));
  file = join(dir, 'routes.yaml');
  echoes = await Promise.all([startEcho(), startEcho(), startEcho()]);
  write([echoRoute()]);
  gate = await serve(loadConfig(['--config', file, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--build-holdoff-ms', String(holdoffMs)], {}), silentLog, clock);
});

after(async () => {
  await gate.close();
  await Promise.all(echoes.map((e) => e.close()));
  rmSync(dir, { recursive: true, force: true });
});

const url = (p: string) => `ws://127.0.0.1:${gate.proxyAddress.port}${p}`;

/** Writes the file and lets the controller's hold-off (on the manual clock) pass each time the file watcher's
 *  signal arms it, until the next generation is published (a watcher may signal more than once per write, and a
 *  signal that read a half-written file publishes nothing). */
async function rewrite(docs: string[]): Promise<void> {
  const g = gate.holder.current()!.generation;
  write(docs);
  const published = gate.holder.waitForGeneration(g + 1).then(() => 'published' as const);
  for (;;) {
    // The controller's hold-off timer, exactly: a drain started by the new table arms its first paced close
    // at a random moment of its window, sometimes within the hold-off, and advancing for it would close early.
    const armed = clock.whenSet((ms) => ms === holdoffMs).then(() => 'armed' as const);
    if ((await Promise.race([published, armed])) === 'published') return;
    clock.advance(holdoffMs);
  }
}

test('100 clients echo through 50 config rewrites with 0 disconnects', async () => {
  const clients = await Promise.all(Array.from({ length: 100 }, () => connect(url('/echo'))));
  let disconnects = 0;
  for (const c of clients) c.on('close', () => disconnects++);
  let stop = false;
  let echoed = 0;
  const loops = clients.map(async (c, i) => {
    while (!stop) {
      const payload = `c${i}-${echoed}`;
      c.send(payload);
      assert.equal((await nextMessage(c)).data.toString(), payload);
      echoed++;
    }
  });
  for (let i = 0; i < 50; i++) {
    const extra = Array.from({ length: i % 7 }, (_, k) =>
      doc(`extra-${k}`, { hostnames: [`h${k}.example.com`], rules: [{ backendRefs: [{ endpoints: [`127.0.0.1:${20000 + i}`] }] }] }),
    );
    // The echo route itself changes too (limits, heartbeat, an added match) but keeps its backend.
    await rewrite([echoRoute({ limits: { maxMessageBytes: 65536 + i } , heartbeat: { intervalSeconds: 30 + i } }), ...extra]);
  }
  stop = true;
  await Promise.all(loops);
  assert.equal(disconnects, 0);
  assert.ok(echoed >= 100, `echoed ${echoed}`);
  assert.equal(gate.holder.current()!.generation, 51);
  await Promise.all(clients.map(async (c) => { c.close(); await closed(c); }));
  await gate.connections.whenEmpty();
});

test('an invalid file keeps the previous table serving', async () => {
  const g = gate.holder.current()!.generation;
  writeFileSync(file, 'apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: echo }\nspec: { rules: [ { backendRefs: [] } ] }\n');
  // Then a valid change: the invalid one in between must not have been published.
  await rewrite([echoRoute({ limits: { maxMessageBytes: 4096 } })]);
  assert.equal(gate.holder.current()!.generation, g + 1);
  const ws = await connect(url('/echo'));
  ws.send('still here');
  assert.equal((await nextMessage(ws)).data.toString(), 'still here');
  ws.close();
  await closed(ws);
});

test('removing a backend drains its connections with paced 1012; the others stay', async () => {
  const clients = await Promise.all(Array.from({ length: 30 }, () => connect(url('/echo'))));
  const gone = echoes[2];
  const expected = gone.wss.clients.size;
  assert.ok(expected > 0, 'least-connections spread clients over all three backends');
  const codes: number[] = [];
  let allClosed!: () => void;
  const drained = new Promise<void>((resolve) => (allClosed = resolve));
  for (const c of clients) {
    c.on('close', (code: number) => {
      codes.push(code);
      if (codes.length === expected) allClosed();
    });
  }
  const drainCloses = () => metricValue(gate.metrics, 'wsgate_drain_closes_total', { route: 'echo' });
  await rewrite([doc('echo', { rules: [{ matches: [{ path: { value: '/echo' } }], backendRefs: [{ endpoints: [echoes[0].address, echoes[1].address] }] }], drain: { windowSeconds: 1 } })]);
  // The drain is paced on the injected clock: nothing is closed before it moves, everything by the window's end.
  assert.equal(await drainCloses(), 0, 'no close before the window starts running');
  clock.advance(1000);
  assert.equal(await drainCloses(), expected, 'every drained connection closed within the window');
  await drained;
  assert.deepEqual([...new Set(codes)], [1012]);
  // The backend closes its TCP first (the proxy is its WebSocket client), a moment after the client's close.
  await released(gone.wss);
  const alive = clients.filter((c) => c.readyState === c.OPEN);
  assert.equal(alive.length, 30 - expected);
  for (const c of alive) {
    c.send('ok');
    assert.equal((await nextMessage(c)).data.toString(), 'ok');
  }
  assert.equal(await drainCloses(), expected);
  await Promise.all(alive.map(async (c) => { c.close(); await closed(c); }));
});
