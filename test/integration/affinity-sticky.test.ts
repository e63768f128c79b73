// Hash affinity is strict by default: 30 users keyed by a header, 3 backends, two wsgate replicas (separate
// processes, as two pods are). Every reconnect of a user, through either replica and whatever the load,
// reaches the backend its first connection reached. With bounded load on (the old default of 1.25), about a
// third of such reconnects moved once the loads were uneven, which breaks Socket.IO and other stateful apps.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { WebSocket } from 'ws';
import { loopbackListen, startCli, type CliProcess } from '../support/cli-process.ts';
import { closed, connectGreeted, startNamedBackend, type NamedBackend } from '../support/harness.ts';

const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
let dir: string;
let backends: NamedBackend[] = [];
let replicas: CliProcess[] = [];

before(async () => {
  backends = await Promise.all(['a', 'b', 'c'].map((n) => startNamedBackend(n)));
  dir = mkdtempSync(join(tmpdir(), 'wsgate-sticky-'));
  const file = join(dir, 'routes.yaml');
  writeFileSync(
    file,
    [
      'apiVersion: wsgate.io/v1alpha1',
      'kind: WebSocketRoute',
      'metadata: { name: sticky, namespace: default }',
      'spec:',
      '  rules:',
      `    - backendRefs: [{ endpoints: [${backends.map((b) => `"127.0.0.1:${b.port}"`).join(', ')}] }]`,
      '  sessionAffinity: { type: Header, header: { name: X-User } }',
    ].join('\n'),
  );
  const args = ['--config', file, ...loopbackListen, '--shutdown-delay-seconds', '0', '--drain-seconds', '1'];
  replicas = await Promise.all([startCli(args), startCli(args)]);
});

after(async () => {
  for (const r of replicas) await r.stop();
  for (const b of backends) {
    for (const c of b.wss.clients) c.terminate();
    b.wss.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function landAll(replica: CliProcess): Promise<{ ws: WebSocket; backend: string }[]> {
  const out = [];
  for (const user of users) out.push(await connectGreeted(`ws://${replica.listen}/`, { headers: { 'x-user': user } }));
  return out;
}

test('30 keys on 3 backends: every reconnect, through either replica and under uneven load, is sticky', async () => {
  // First pass through replica A, all held open so the loads are as uneven as the hash makes them.
  const first = await landAll(replicas[0]);
  const home = new Map(users.map((u, i) => [u, first[i].backend]));
  const perBackend = new Map<string, number>();
  for (const b of home.values()) perBackend.set(b, (perBackend.get(b) ?? 0) + 1);
  console.log(`# first landing: ${[...perBackend].map(([b, n]) => `${b}=${n}`).join(' ')}`);
  // Second pass through replica B while A's connections stay: the other replica agrees on every key.
  const second = await landAll(replicas[1]);
  assert.deepEqual(second.map((c) => c.backend), first.map((c) => c.backend), 'replica B picks what replica A picked');
  // Reconnects through A, each after its own close, with B's 30 still open.
  const moved: string[] = [];
  for (let i = 0; i < users.length; i++) {
    first[i].ws.close();
    await closed(first[i].ws);
    const again = await connectGreeted(`ws://${replicas[0].listen}/`, { headers: { 'x-user': users[i] } });
    if (again.backend !== home.get(users[i])) moved.push(users[i]);
    again.ws.close();
    await closed(again.ws);
  }
  assert.deepEqual(moved, [], 'no user moved backend');
  for (const c of second) {
    c.ws.close();
    await closed(c.ws);
  }
});
