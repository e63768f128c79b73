// A rollout seen from 300 clients on 3 backends: one pod turns Draining (its clients stay, new ones go
// elsewhere), then Gone (its clients get 1012 spread over the route's drain window, never 1006, and reconnect
// to the others); clients of the untouched pods never notice. Once with Kubernetes objects (Service and
// EndpointSlices through the real builder, as the Kubernetes source hands them over) and once through the
// standalone file (an address moved to drainingEndpoints is Draining; removed from both lists, Gone).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { createBuilder } from '../../src/build/build.ts';
import type { EndpointSliceLite } from '../../src/build/input.ts';
import { loadConfig } from '../../src/config/config.ts';
import { serve } from '../../src/main.ts';
import type { SnapshotHolder } from '../../src/snapshot/holder.ts';
import { metricValue, routeObject, silentLog, startGate, startNamedBackend, until, type NamedBackend } from '../support/harness.ts';

const startPod = (name: string) => startNamedBackend(name, name);
type Pod = NamedBackend;

interface Client {
  readonly ws: WebSocket;
  readonly pod: string;
  end?: { code: number; at: number };
}

async function open(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const [greeting] = (await once(ws, 'message')) as [Buffer];
  const c: Client = { ws, pod: greeting.toString() };
  ws.once('close', (code: number) => (c.end = { code, at: performance.now() }));
  return c;
}

async function openMany(url: string, n: number): Promise<Client[]> {
  const out: Client[] = [];
  // Batches keep the least-connections counts current while clients arrive.
  for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => open(url)))));
  return out;
}

function byPod(clients: readonly Client[]): Map<string, Client[]> {
  const m = new Map<string, Client[]>();
  for (const c of clients) m.set(c.pod, [...(m.get(c.pod) ?? []), c]);
  return m;
}

// Long enough that a stall of this (shared, busy) test process does not read as bunching.
const windowSeconds = 3;
let pods: Pod[] = [];
const dir = mkdtempSync(join(tmpdir(), 'wsgate-rollout-'));

before(async () => {
  pods = await Promise.all(['pod-a', 'pod-b', 'pod-c'].map(startPod));
});

after(async () => {
  for (const p of pods) {
    for (const c of p.wss.clients) c.terminate();
    p.wss.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Draining: the victim keeps every connection and takes no new one while the others are Active. */
async function drainingCheck(o: { url: string; clients: readonly Client[]; victim: Pod; metrics: Parameters<typeof metricValue>[0] }): Promise<void> {
  const newcomers = await openMany(o.url, 30);
  for (const n of newcomers) assert.notEqual(n.pod, o.victim.name, 'a Draining endpoint takes no new connections while others are Active');
  for (const n of newcomers) n.ws.terminate();
  for (const cl of o.clients) assert.equal(cl.end, undefined, 'Draining keeps every connection');
  assert.equal(await metricValue(o.metrics, 'wsgate_connections_draining', { route: 'chat' }), 0);
}

/** Gone: the victim's clients close with 1012 over the window and reconnect elsewhere; the rest stay. */
async function goneAndCheck(o: {
  url: string;
  clients: Client[];
  victim: Pod;
  holder: SnapshotHolder;
  makeGone: () => Promise<void>;
  metrics: Parameters<typeof metricValue>[0];
}): Promise<{ spread: number[]; closes: number }> {
  const groups = byPod(o.clients);
  const doomed = groups.get(o.victim.name) ?? [];
  const others = o.clients.filter((c) => c.pod !== o.victim.name);
  assert.ok(doomed.length >= 50, `the victim holds ${doomed.length} clients`);
  const reconnected: Client[] = [];
  const reconnecting: Promise<void>[] = [];
  for (const c of doomed) {
    c.ws.once('close', (code: number) => {
      // 1012 says "restarting: come back"; a real client would wait a random moment.
      if (code === 1012) reconnecting.push(open(o.url).then((r) => void reconnected.push(r)));
    });
  }
  await o.makeGone();
  const t0 = performance.now();
  await until(() => doomed.every((c) => c.end !== undefined), 'every client of the gone pod closed', (windowSeconds + 5) * 1000);
  await Promise.all(reconnecting);

  const codes = new Map<number, number>();
  for (const c of doomed) codes.set(c.end!.code, (codes.get(c.end!.code) ?? 0) + 1);
  assert.deepEqual([...codes], [[1012, doomed.length]], 'every client of the gone pod got 1012, none 1006');

  // Spread: tenths of the window; stratified jitter puts about a tenth in each.
  const w = windowSeconds * 1000;
  const tenths = Array.from({ length: 10 }, () => 0);
  for (const c of doomed) tenths[Math.min(9, Math.max(0, Math.floor(((c.end!.at - t0) / w) * 10)))]++;
  const worst = Math.max(...tenths) / doomed.length;
  assert.ok(worst <= 0.3, `closes bunched: ${tenths.join(' ')}`);
  assert.ok(tenths.filter((n) => n > 0).length >= 7, `closes not spread over the window: ${tenths.join(' ')}`);

  assert.equal(reconnected.length, doomed.length);
  for (const r of reconnected) assert.notEqual(r.pod, o.victim.name, 'reconnects land on the remaining pods');
  // The backend closes its TCP first (the proxy is its WebSocket client), a moment after its clients' closes.
  await until(() => o.victim.wss.clients.size === 0, 'the gone pod released every connection');

  for (const c of others) assert.equal(c.end, undefined, `a client of ${c.pod} was closed`);
  await Promise.all(
    others.slice(0, 40).map(async (c) => {
      c.ws.send('still here');
      const [m] = (await once(c.ws, 'message')) as [Buffer];
      assert.equal(m.toString(), 'still here');
    }),
  );
  assert.equal(await metricValue(o.metrics, 'wsgate_drain_closes_total', { route: 'chat' }), doomed.length);
  await until(async () => (await metricValue(o.metrics, 'wsgate_connections_draining', { route: 'chat' })) === 0, 'draining gauge back to 0');
  for (const c of [...o.clients, ...reconnected]) c.ws.terminate();
  return { spread: tenths, closes: doomed.length };
}

test('Kubernetes objects: Draining keeps connections and takes no new ones; Gone drains with paced 1012', async () => {
  const build = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const route = routeObject('chat', { rules: [{ backendRefs: [{ name: 'chat', port: 80 }] }], drain: { windowSeconds } });
  const service = { metadata: { namespace: 'default', name: 'chat' }, spec: { ports: [{ name: 'ws', port: 80 }] } };
  const slice = (p: Pod, conditions: { ready?: boolean; serving?: boolean; terminating?: boolean }): EndpointSliceLite => ({
    metadata: { namespace: 'default', name: `chat-${p.name}`, labels: { 'kubernetes.io/service-name': 'chat' } },
    addressType: 'IPv4',
    ports: [{ name: 'ws', port: p.port }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions, targetRef: { name: p.name } }],
  });
  const [a, b, c] = pods;
  const content = (slices: EndpointSliceLite[]) => build({ routes: [route], services: [service], endpointSlices: slices, secrets: [] }).content;

  const gate = await startGate([]);
  try {
    gate.holder.publish(content([slice(a, {}), slice(b, {}), slice(c, {})]));
    const url = gate.url('/');
    const clients = await openMany(url, 300);
    const groups = byPod(clients);
    for (const p of pods) assert.ok((groups.get(p.name)?.length ?? 0) >= 60, `${p.name}: ${groups.get(p.name)?.length}`);

    // Draining: terminating but still serving.
    gate.holder.publish(content([slice(a, {}), slice(b, {}), slice(c, { ready: false, serving: true, terminating: true })]));
    await drainingCheck({ url, clients, victim: c, metrics: gate.metrics });

    // Gone: terminating and not serving (the slice keeps it, the builder drops it).
    const r = await goneAndCheck({
      url,
      clients,
      victim: c,
      holder: gate.holder,
      metrics: gate.metrics,
      makeGone: async () => void gate.holder.publish(content([slice(a, {}), slice(b, {}), slice(c, { ready: false, serving: false, terminating: true })])),
    });
    process.stdout.write(`# kubernetes objects: ${r.closes} closes over ${windowSeconds}s, per tenth: ${r.spread.join(' ')}\n`);
  } finally {
    await gate.close();
  }
});

test('standalone file: an address moved to drainingEndpoints is Draining; removed from the file, drained with paced 1012', async () => {
  const file = join(dir, 'routes.yaml');
  const list = (ps: readonly Pod[]) => `[${ps.map((p) => `"127.0.0.1:${p.port}"`).join(', ')}]`;
  const write = (ps: readonly Pod[], draining: readonly Pod[] = []) =>
    writeFileSync(
      file,
      `apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: chat }\nspec:\n  drain: { windowSeconds: ${windowSeconds} }\n  rules:\n    - backendRefs:\n        - endpoints: ${list(ps)}\n          drainingEndpoints: ${list(draining)}\n`,
    );
  write(pods);
  const running = await serve(loadConfig(['--config', file, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--build-holdoff-ms', '5'], {}), silentLog);
  try {
    const url = `ws://127.0.0.1:${running.proxyAddress.port}/`;
    const clients = await openMany(url, 300);
    const g = running.holder.current()!.generation;
    write(pods.slice(0, 2), [pods[2]]);
    await running.holder.waitForGeneration(g + 1);
    await drainingCheck({ url, clients, victim: pods[2], metrics: running.metrics });
    const r = await goneAndCheck({
      url,
      clients,
      victim: pods[2],
      holder: running.holder,
      metrics: running.metrics,
      makeGone: async () => {
        write(pods.slice(0, 2));
        await running.holder.waitForGeneration(g + 2);
      },
    });
    process.stdout.write(`# standalone file: ${r.closes} closes over ${windowSeconds}s, per tenth: ${r.spread.join(' ')}\n`);
  } finally {
    await running.close();
  }
});

test('a deleted route drains its connections even when another route still uses the same address', async () => {
  const [a] = pods;
  const addr = `127.0.0.1:${a.port}`;
  const mk = (name: string, path: string) =>
    routeObject(name, { rules: [{ matches: [{ path: { type: 'PathPrefix', value: path } }], backendRefs: [{ endpoints: [addr] }] }], drain: { windowSeconds: 1 } });
  const gate = await startGate([mk('chat', '/chat'), mk('feed', '/feed')]);
  try {
    const chat = await openMany(gate.url('/chat'), 20);
    const feed = await openMany(gate.url('/feed'), 20);
    gate.publish([mk('feed', '/feed')]);
    await until(() => chat.every((c) => c.end !== undefined), 'the deleted route\'s clients closed');
    assert.deepEqual([...new Set(chat.map((c) => c.end!.code))], [1012]);
    for (const c of feed) assert.equal(c.end, undefined, 'the other route\'s clients stay');
    for (const c of feed) c.ws.terminate();
  } finally {
    await gate.close();
  }
});
