// `--workers 2`: two processes share the listening port, the table is built once in the primary and pushed to
// both, /metrics sums the group, and SIGTERM drains every worker with paced 1012s before exiting 0.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { echoWorkspace, loopbackListen, startCli, writeEchoRoute } from '../test/support/cli-process.ts';
import { closed, connect, nextMessage } from '../test/support/harness.ts';
import { waitUntil } from '../test/support/wait.ts';

const work = echoWorkspace('wsgate-workers-');

test('two workers serve one table; metrics sum across them; SIGTERM drains both', async () => {
  const f = writeEchoRoute(work.dir, work.echo.address);
  const gate = await startCli(['--config', f, '--workers', '2', ...loopbackListen, '--shutdown-delay-seconds', '0', '--drain-seconds', '1']);
  const { listen, admin } = gate;
  // Ready once both workers listen: only the primary's /readyz can tell.
  await waitUntil(async () => (await fetch(`http://${admin}/readyz`)).status === 200, 'both workers ready (/readyz 200)', 10_000, 25);
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect(`ws://${listen}/`)));
  await Promise.all(clients.map(async (c, i) => { c.send(`m${i}`); assert.equal((await nextMessage(c)).data.toString(), `m${i}`); }));
  const metrics = await (await fetch(`http://${admin}/metrics`)).text();
  assert.match(metrics, /wsgate_connections_active\{namespace="default",route="echo"\} 20\b/);
  assert.match(metrics, /wsgate_snapshot_builds_total\{result="published"\} 1\b/);
  const snap = (await (await fetch(`http://${admin}/debug/snapshot`)).json()) as { generation: number };
  assert.equal(snap.generation, 1);
  // Both workers take connections. They accept on the shared socket themselves (the kernel spreads them), so a
  // single burst may land on one: short-lived connections are added, in bounded batches, until both showed up
  // in the per-connection log lines.
  const servedBy = () => new Set(gate.stdout().split('\n').filter((l) => l.includes('"connection closed"')).map((l) => (JSON.parse(l) as { worker: number }).worker));
  for (let batch = 0; servedBy().size < 2; batch++) {
    assert.ok(batch < 20, `only worker(s) ${[...servedBy()].join(',')} took connections`);
    const extra = await Promise.all(Array.from({ length: 10 }, () => connect(`ws://${listen}/`)));
    const logged = gate.stdout().split('\n').length;
    await Promise.all(extra.map(async (c) => { c.close(1000); await closed(c); }));
    while (gate.stdout().split('\n').filter((l, i) => i >= logged - 1 && l.includes('"connection closed"')).length < 10) await once(gate.child.stdout!, 'data');
  }
  const ends = clients.map((c) => closed(c));
  const [code] = await gate.stop();
  assert.equal(code, 0);
  for (const e of await Promise.all(ends)) assert.equal(e.code, 1012);
  assert.deepEqual([...servedBy()].sort(), [1, 2]);
});
