// The built CLI, started as a user would: validate reports file, document, field path and reason with a
// non-zero exit; serve answers on its ports, exposes the admin endpoints and exits 0 on SIGTERM.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cliPath as cli, echoWorkspace, loopbackListen, startCli, writeEchoRoute } from '../test/support/cli-process.ts';
import { closed, connect, nextMessage } from '../test/support/harness.ts';

const work = echoWorkspace('wsgate-cli-');

test('--help lists the flags; a bad flag exits 2 naming it', () => {
  const help = spawnSync(process.execPath, [cli, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--admin-listen VALUE +\[WSGATE_ADMIN_LISTEN\] \(default 0\.0\.0\.0:9090\)/);
  const bad = spawnSync(process.execPath, [cli, '--config', 'x.yaml', '--listen', 'nowhere'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--listen: must be HOST:PORT, got nowhere/);
});

test('validate: each problem with file, document, field path and reason; exit 2', () => {
  const f = join(work.dir, 'bad.yaml');
  writeFileSync(
    f,
    [
      'apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: good }\nspec: { rules: [ { backendRefs: [ { endpoints: ["127.0.0.1:1"] } ] } ] }\n',
      'apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: bad }\nspec:\n  rules:\n    - backendRefs: [ { endpoints: ["127.0.0.1:1"], port: 80 } ]\n',
      'apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: worse }\nspec:\n  rules:\n    - backendRefs: [ { endpoints: ["127.0.0.1:1"] } ]\n  limits: { maxMessageBytes: 0 }\n',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n',
    ].join('---\n'),
  );
  const r = spawnSync(process.execPath, [cli, 'validate', f], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(lines, [
    `${f} document 2: spec.rules[0].backendRefs[0]: port is only for a Service reference`,
    `${f} document 3: spec.limits.maxMessageBytes: must be >= 1`,
    `${f} document 4: apiVersion: must be wsgate.io/v1alpha1`,
    `3 problem(s) in 1 file(s)`,
  ]);
  const ok = join(work.dir, 'ok.yaml');
  writeFileSync(ok, 'apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: good }\nspec: { rules: [ { backendRefs: [ { endpoints: ["127.0.0.1:1"] } ] } ] }\n');
  const good = spawnSync(process.execPath, [cli, 'validate', ok], { encoding: 'utf8' });
  assert.equal(good.status, 0);
  assert.equal(good.stdout, 'ok: 1 route(s) in 1 file(s)\n');
});

test('validate: a clientIPs entry that is no address or CIDR is refused with its path and value; exit 2', () => {
  const f = join(work.dir, 'cidrs.yaml');
  const route = (name: string, clientIPs: string) =>
    `apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: ${name} }\nspec:\n  clientIPs: ${clientIPs}\n  rules: [ { backendRefs: [ { endpoints: ["127.0.0.1:1"] } ] } ]\n`;
  writeFileSync(
    f,
    [
      route('good', '{ allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.9.9.9"] }'),
      route('prefix', '{ allow: ["10.0.0.0/33"] }'),
      route('word', '{ deny: ["nonsense"] }'),
      route('v6', '{ deny: ["::1/200"] }'),
      route('octet', '{ allow: ["10.0.0.256"] }'),
    ].join('---\n'),
  );
  const r = spawnSync(process.execPath, [cli, 'validate', f], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  const what = 'is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32';
  assert.deepEqual(r.stderr.trim().split('\n'), [
    `${f} document 2: spec.clientIPs.allow[0]: "10.0.0.0/33" ${what}; prefix length 0-32 for IPv4, 0-128 for IPv6)`,
    `${f} document 3: spec.clientIPs.deny[0]: "nonsense" ${what}; prefix length 0-32 for IPv4, 0-128 for IPv6)`,
    `${f} document 4: spec.clientIPs.deny[0]: "::1/200" ${what}; prefix length 0-32 for IPv4, 0-128 for IPv6)`,
    `${f} document 5: spec.clientIPs.allow[0]: "10.0.0.256" ${what})`,
    `4 problem(s) in 1 file(s)`,
  ]);
});

test('serve: routes traffic, admin endpoints answer, SIGTERM exits 0', async () => {
  const f = writeEchoRoute(work.dir, work.echo.address);
  const gate = await startCli(['--config', f, ...loopbackListen, '--shutdown-delay-seconds', '0', '--drain-seconds', '1']);
  const { listen, admin } = gate;
  assert.equal((await fetch(`http://${admin}/readyz`)).status, 200);
  assert.equal((await fetch(`http://${admin}/healthz`)).status, 200);
  const ws = await connect(`ws://${listen}/`);
  ws.send('through the CLI');
  assert.equal((await nextMessage(ws)).data.toString(), 'through the CLI');
  const metrics = await (await fetch(`http://${admin}/metrics`)).text();
  assert.match(metrics, /wsgate_connections_active\{namespace="default",route="echo"\} 1/);
  const snap = (await (await fetch(`http://${admin}/debug/snapshot`)).json()) as { generation: number; routes: { key: string }[] };
  assert.equal(snap.generation, 1);
  assert.deepEqual(snap.routes.map((r) => r.key), ['default/echo']);
  const wsClosed = closed(ws);
  const [code] = await gate.stop();
  assert.equal(code, 0);
  assert.equal((await wsClosed).code, 1012);
  assert.match(gate.stdout(), /"connection closed"/);
});
