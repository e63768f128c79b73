// The built CLI with --otlp-endpoint pointing at a collector that is down, then comes back on the same port:
// no connection suffers while it is down, spans flow again once it is back, and on SIGTERM the drained
// connection's span (1012, drain cause "proxy shutdown") is exported before the process exits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startCli } from '../test/support/cli-process.ts';
import { closed, connect, nextMessage, startEcho, type Echo } from '../test/support/harness.ts';
import { OtlpReceiver } from '../test/support/otlp-receiver.ts';

let dir: string;
let echo: Echo;
let receiver: OtlpReceiver;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wsgate-tracing-'));
  echo = await startEcho();
  receiver = new OtlpReceiver();
  await receiver.start();
});
after(async () => {
  await echo.close();
  await receiver.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('collector down, then back: connections unaffected, spans flow again, the last ones are flushed at exit', { timeout: 60_000 }, async () => {
  const f = join(dir, 'routes.yaml');
  writeFileSync(f, `apiVersion: wsgate.io/v1alpha1\nkind: WebSocketRoute\nmetadata: { name: echo }\nspec: { rules: [ { backendRefs: [ { endpoints: ["${echo.address}"] } ] } ] }\n`);
  await receiver.stop();
  const gate = await startCli(
    ['--config', f, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--shutdown-delay-seconds', '0', '--drain-seconds', '1', '--otlp-endpoint', receiver.endpoint],
    // Exports every 100 ms, so the test does not sit through the default 5 s; it waits on the spans arriving.
    { OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'wsgate-e2e' },
  );
  for (let i = 0; i < 5; i++) {
    const ws = await connect(`ws://${gate.listen}/`);
    ws.send(`while down ${i}`);
    assert.equal((await nextMessage(ws)).data.toString(), `while down ${i}`);
    const done = closed(ws);
    ws.close(1000);
    assert.equal((await done).code, 1000);
  }

  await receiver.start();
  const traceId = '6e0c63257de34c926f9efcd03927272e';
  const ws = await connect(`ws://${gate.listen}/`, { headers: { traceparent: `00-${traceId}-f067aa0ba902b7aa-01` } });
  ws.send('after');
  assert.equal((await nextMessage(ws)).data.toString(), 'after');
  const done = closed(ws);
  ws.close(1000);
  await done;
  await receiver.when((spans) => spans.filter((s) => s.traceId === traceId).length === 3);
  const mine = receiver.spans.filter((s) => s.traceId === traceId);
  assert.deepEqual(mine.map((s) => [s.kind, s.name]).sort(), [
    [1, 'WebSocket default/echo'],
    [2, 'GET'],
    [3, 'GET'],
  ]);
  assert.equal(mine[0].resource['service.name'], 'wsgate-e2e');

  // Open at SIGTERM: drained with 1012, and its span goes out before the process exits.
  const last = '0123456789abcdef0123456789abcdef';
  const open = await connect(`ws://${gate.listen}/`, { headers: { traceparent: `00-${last}-00f067aa0ba902b7-01` } });
  const openClosed = closed(open);
  gate.child.kill('SIGTERM');
  const [code] = await gate.exited;
  assert.equal(code, 0);
  assert.equal((await openClosed).code, 1012);
  const conn = receiver.spans.find((s) => s.traceId === last && s.kind === 1);
  assert.ok(conn, 'the drained connection span was exported before exit');
  assert.deepEqual(
    [conn.attributes['wsgate.close.code'], conn.attributes['wsgate.drain.cause'], conn.events.map((e) => e.name)],
    [1012, 'proxy shutdown', ['drain started']],
  );
  assert.equal(receiver.unsupported, 0);
});
