// limits.compression through the real proxy with ws clients and a ws upstream that both want permessage-deflate
// (ws clients offer it by default): Allow lets it be negotiated; Refuse strips the offer from the upgrade
// request, so the upstream's 101 accepts no extension and the connection runs uncompressed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { refuseCompression, withoutDeflate } from '../../src/policy/compression.ts';
import { connect, nextMessage, routeObject, startEcho, startGate, type Echo, type Gate } from '../support/harness.ts';

let echo: Echo;
let gate: Gate;

before(async () => {
  echo = await startEcho({ perMessageDeflate: { threshold: 0 } });
  const r = (name: string, compression: string) =>
    routeObject(name, {
      hostnames: ['example.com'],
      rules: [{ matches: [{ path: { type: 'Exact', value: `/${name}` } }], backendRefs: [{ endpoints: [echo.address] }] }],
      limits: { compression },
    });
  gate = await startGate([r('allow', 'Allow'), r('refuse', 'Refuse')], { hooks: { admission: [refuseCompression] } });
});

after(async () => {
  await gate.close();
  await echo.close();
});

async function negotiated(path: string): Promise<string | undefined> {
  const ws = await connect(gate.url(path), { headers: { Host: 'example.com' }, perMessageDeflate: { threshold: 0 } });
  const got = nextMessage(ws);
  ws.send('hello');
  assert.equal((await got).data.toString(), 'hello');
  const ext = ws.extensions;
  ws.close();
  return ext;
}

test('Allow: permessage-deflate is negotiated end to end', async () => {
  assert.equal(await negotiated('/allow'), 'permessage-deflate');
});

test('Refuse: the offer never reaches the upstream, so no extension is negotiated', async () => {
  assert.equal(await negotiated('/refuse'), '');
});

test('withoutDeflate keeps the other offered extensions', () => {
  assert.equal(withoutDeflate('permessage-deflate; client_max_window_bits, x-foo; a="b,c", permessage-deflate'), 'x-foo; a="b,c"');
  assert.equal(withoutDeflate('permessage-deflate'), '');
});
