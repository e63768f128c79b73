// Labels fed by the network stay bounded: a close code is chosen by the peer, so wsgate_closes_total must not
// grow a series per code a client makes up.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closeCodeLabel } from '../../src/telemetry/metrics.ts';
import { closed, connect, type Echo, type Gate, startEcho, startGate, staticRoute } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';

let echo: Echo;
let gate: Gate;

before(async () => {
  echo = await startEcho();
  gate = await startGate([staticRoute('codes', [echo.address])]);
});

after(async () => {
  await gate.close();
  await echo.close();
});

test('closeCodeLabel: registered codes keep their number; 3xxx, 4xxx and invalid share a label', () => {
  // RFC 6455 §7.4.1 (1000-1011 less 1004), IANA registry 1012-1014; 1005/1006/1015 are registered but local.
  // https://www.iana.org/assignments/websocket/websocket.xhtml#close-code-number
  const codes = [0, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000, 65535];
  assert.deepEqual(Object.fromEntries(codes.map((c) => [c, closeCodeLabel(c)])), {
    0: 'invalid', 999: 'invalid', 1000: '1000', 1001: '1001', 1002: '1002', 1003: '1003', 1004: 'invalid', 1005: '1005', 1006: '1006',
    1007: '1007', 1008: '1008', 1009: '1009', 1010: '1010', 1011: '1011', 1012: '1012', 1013: '1013', 1014: '1014', 1015: '1015',
    1016: 'invalid', 2999: 'invalid', 3000: '3xxx', 3999: '3xxx', 4000: '4xxx', 4999: '4xxx', 5000: 'invalid', 65535: 'invalid',
  });
});

test('300 clients closing with 300 different codes make at most a handful of wsgate_closes_total series', async () => {
  // Every code a ws client may send (RFC 6455 §7.4.2: 3000-4999 are open to libraries and applications).
  const codes = new Set<number>([1000, 1001]);
  // 7919 is prime to 2000: 298 distinct codes spread over both ranges.
  for (let i = 1; codes.size < 300; i++) codes.add(3000 + ((i * 7919) % 2000));
  const all = [...codes];
  for (let i = 0; i < all.length; i += 25) {
    await Promise.all(
      all.slice(i, i + 25).map(async (code) => {
        const ws = await connect(gate.url('/'));
        ws.close(code);
        assert.equal((await closed(ws)).code, code, 'the code itself still passes through');
      }),
    );
  }
  const series = async () => (await gate.metrics.registry.getSingleMetric('wsgate_closes_total')!.get()).values;
  await waitUntil(async () => (await series()).reduce((n, v) => n + v.value, 0) === all.length, 'every close counted');
  const labels = (await series()).map((v) => `${String(v.labels.code)} ${String(v.labels.initiator)}`).sort();
  assert.deepEqual(labels, ['1000 client', '1001 client', '3xxx client', '4xxx client']);
});
