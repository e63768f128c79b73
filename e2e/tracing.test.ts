// The built CLI with --otlp-endpoint pointing at a collector that is down, then comes back on the same port:
// no connection suffers while it is down, spans flow again once it is back, and on SIGTERM the drained
// connection's span (1012, drain cause "proxy shutdown") is exported before the process exits. And the composition
// root's wiring: LLM request spans and HTTP fallback spans from the built CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LLM_SUBPROTOCOL } from '../src/llm/protocol.ts';
import { startCli } from '../test/support/cli-process.ts';
import { closed, connect, nextMessage, startEcho, type Echo } from '../test/support/harness.ts';
import { startProviderDouble } from '../test/support/llm-provider-double.ts';
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

test('the built CLI traces LLM requests (a span per provider attempt) and HTTP fallback requests', { timeout: 60_000 }, async () => {
  const primary = await startProviderDouble('openai-chat', () => ({ status: 503 }));
  const backup = await startProviderDouble('anthropic-messages', () => ({ tokens: ['a', 'b'], inputTokens: 2 }));
  const key = join(dir, 'provider-key');
  writeFileSync(key, 'sk-e2e\n');
  const f = join(dir, 'llm-routes.yaml');
  writeFileSync(
    f,
    [
      'apiVersion: wsgate.io/v1alpha1',
      'kind: WebSocketRoute',
      'metadata: { name: chat }',
      'spec:',
      '  rules:',
      '    - matches: [{ path: { type: PathPrefix, value: /llm } }]',
      '      llm:',
      '        providers:',
      `          - { name: primary, baseUrl: "${primary.url}", format: openai-chat, credentials: { file: "${key}" }, models: [m-a] }`,
      `          - { name: backup, baseUrl: "${backup.url}", format: anthropic-messages, credentials: { file: "${key}" }, models: [m-b] }`,
      '        aliases: { fast: [m-a, m-b] }',
      '---',
      'apiVersion: wsgate.io/v1alpha1',
      'kind: WebSocketRoute',
      'metadata: { name: poll }',
      `spec: { httpFallback: { enabled: true }, rules: [ { backendRefs: [ { endpoints: ["${echo.address}"] } ] } ] }`,
      '',
    ].join('\n'),
  );
  const gate = await startCli(['--config', f, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--shutdown-delay-seconds', '0', '--drain-seconds', '1', '--otlp-endpoint', receiver.endpoint], {
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  try {
    receiver.clear();
    const llmTrace = '1e0c63257de34c926f9efcd03927272e';
    const ws = await connect(`ws://${gate.listen}/llm`, { headers: { traceparent: `00-${llmTrace}-f067aa0ba902b7aa-01` } }, [LLM_SUBPROTOCOL]);
    const done = new Promise<Record<string, unknown>>((resolve) =>
      ws.on('message', (d) => {
        const m = JSON.parse(String(d)) as Record<string, unknown>;
        if (m.type === 'done') resolve(m);
      }),
    );
    ws.send(JSON.stringify({ type: 'request', id: 'r1', model: 'fast', messages: [{ role: 'user', content: 'hi' }] }));
    assert.deepEqual(await done, { type: 'done', id: 'r1', finishReason: 'end_turn', usage: { inputTokens: 2, outputTokens: 2 } });
    await receiver.when((spans) => spans.filter((s) => s.traceId === llmTrace).length === 4);
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s.name]));
    assert.deepEqual(
      receiver.spans
        .filter((s) => s.traceId === llmTrace)
        .map((s) => [s.kind, s.name, byId.get(s.parentSpanId) ?? 'remote', s.attributes['wsgate.llm.outcome'] ?? s.attributes['wsgate.outcome']])
        .sort(),
      [
        [2, 'GET', 'remote', 'llm'],
        [2, 'chat fast', 'GET', 'ok'],
        [3, 'chat m-a', 'chat fast', 'failed'],
        [3, 'chat m-b', 'chat fast', 'ok'],
      ],
    );
    const closedLlm = closed(ws);
    ws.close(1000);
    await closedLlm;
    // The socket's own span is made at its close, under the handshake.
    await receiver.when((spans) => spans.some((s) => s.traceId === llmTrace && s.kind === 1));
    const socketSpan = receiver.spans.find((s) => s.traceId === llmTrace && s.kind === 1)!;
    assert.deepEqual(
      [socketSpan.name, byId.get(socketSpan.parentSpanId), socketSpan.attributes['wsgate.llm.requests'], socketSpan.attributes['wsgate.close.code'], socketSpan.attributes['wsgate.close.initiator']],
      ['WebSocket default/chat', 'GET', 1, 1000, 'client'],
    );

    // A plain GET on the fallback route goes to the ws server, whose HTTP side answers 426.
    const pollTrace = '2e0c63257de34c926f9efcd03927272e';
    const res = await fetch(`http://${gate.listen}/poll?sid=1`, { headers: { traceparent: `00-${pollTrace}-f067aa0ba902b7aa-01` } });
    await res.arrayBuffer();
    assert.equal(res.status, 426);
    await receiver.when((spans) => spans.some((s) => s.traceId === pollTrace));
    const poll = receiver.spans.find((s) => s.traceId === pollTrace)!;
    assert.deepEqual([poll.kind, poll.name, poll.attributes['http.response.status_code'], poll.attributes['wsgate.route'], poll.attributes['url.path']], [2, 'GET', 426, 'default/poll', '/poll']);
  } finally {
    await gate.stop();
    await primary.close();
    await backup.close();
  }
});
