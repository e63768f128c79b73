// permessage-deflate through the relay between real ws peers (test/support/raw-proxy.ts): the relay inflates
// compressed messages alongside, with the parameters of the upstream's 101 (RFC 7692 §7.1), so maxMessageBytes
// and the byte budget hold on what the application receives. Both directions, context takeover on and off,
// window bits below 15; compression bombs, data that does not inflate, and ping floods.
import assert from 'node:assert/strict';
import { ManualClock } from '../support/manual-clock.ts';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { after, test } from 'node:test';
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { CloseCode } from '../../src/errors.ts';
import { messageCheck } from '../../src/policy/message-limits.ts';
import { compiled } from '../support/compiled-route.ts';
import { closed, nextMessage } from '../support/harness.ts';
import { startRawProxy, type RawProxy } from '../support/raw-proxy.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A ws server (echo on /echo, a 2 MB message of zeros on /bomb) behind a raw proxy with the given limit. */
async function setup(deflate: PerMessageDeflateOptions, maxMessageBytes: number): Promise<{ proxy: RawProxy; received: Buffer[] }> {
  const received: Buffer[] = [];
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate, maxPayload: 64 * 1024 * 1024 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, isBinary) => {
      received.push(data);
      if (req.url === '/echo') ws.send(data, { binary: isBinary });
    });
    if (req.url === '/bomb') ws.send(Buffer.alloc(2 * 1024 * 1024));
  });
  const proxy = await startRawProxy({ upstreamPort: (wss.address() as AddressInfo).port, maxMessageBytes });
  cleanups.push(async () => {
    await proxy.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  return { proxy, received };
}

/** A ws client and the Sec-WebSocket-Extensions of the 101 it got. */
async function open(url: string): Promise<WebSocket & { negotiated?: string }> {
  // ws clients offer permessage-deflate by default; threshold 0 compresses every message, however small.
  const ws: WebSocket & { negotiated?: string } = new WebSocket(url, { perMessageDeflate: { threshold: 0 }, maxPayload: 64 * 1024 * 1024 });
  ws.on('error', () => {});
  ws.once('upgrade', (res) => (ws.negotiated = String(res.headers['sec-websocket-extensions'])));
  await once(ws, 'open');
  return ws;
}

const configs: [string, PerMessageDeflateOptions, RegExp][] = [
  ['context takeover, 15-bit windows', { threshold: 0 }, /^permessage-deflate$/],
  [
    'no context takeover either way, 10-bit windows',
    { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 },
    /^permessage-deflate; client_max_window_bits=10; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10$/,
  ],
  ['context takeover, 9-bit windows', { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }, /^permessage-deflate; client_max_window_bits=9; server_max_window_bits=9$/],
];

for (const [name, deflate, negotiated] of configs) {
  test(`compressed echo passes byte for byte both ways and is inflated alongside (${name})`, async () => {
    const { proxy } = await setup(deflate, 1024 * 1024);
    const ws = await open(`${proxy.url}/echo`);
    assert.match(ws.negotiated ?? '', negotiated);
    // Repetitive text (long back-references across messages with context takeover), random bytes (stored
    // blocks), an empty message, and a fragmented one.
    const text = 'the same words again and again '.repeat(2000);
    const messages: [Buffer | string, boolean][] = [
      [text, false],
      [text, false],
      [randomBytes(100_000), true],
      ['', false],
      [Buffer.from(text.slice(0, 5000)), true],
    ];
    let total = 0;
    for (const [m, binary] of messages) {
      const echoed = nextMessage(ws);
      ws.send(m, { binary });
      const got = await echoed;
      assert.equal(got.isBinary, binary);
      assert.ok(got.data.equals(Buffer.from(m)));
      total += Buffer.byteLength(m);
    }
    const fragmented = nextMessage(ws);
    ws.send(Buffer.from(text.slice(0, 3000)), { fin: false });
    ws.send(Buffer.from(text.slice(3000, 7000)), { fin: true });
    assert.equal((await fragmented).data.toString(), text.slice(0, 7000));
    total += 7000;
    const relay = proxy.relays[0];
    // Everything each side sent was inflated by the relay, to exactly the bytes the other side got.
    assert.equal(relay.inflatedBytes('client'), total);
    assert.equal(relay.inflatedBytes('upstream'), total);
    ws.close(1000);
    assert.equal((await closed(ws)).code, 1000);
  });
}

test('a compression bomb from the client gets 1009 once the relay inflated at most the limit plus one zlib chunk', async () => {
  const { proxy, received } = await setup({ threshold: 0 }, 1024);
  const ws = await open(`${proxy.url}/echo`);
  const bomb = Buffer.alloc(1024 * 1024);
  ws.send(bomb);
  const end = await closed(ws);
  assert.equal(end.code, CloseCode.MessageTooBig);
  const relayEnd = await proxy.endOf('/echo');
  assert.equal(relayEnd.code, CloseCode.MessageTooBig);
  // The wire frame was about 1 KB: measured on the wire it would have passed.
  assert.ok(proxy.counters.bytesFromClient < 2048, String(proxy.counters.bytesFromClient));
  const inflated = proxy.relays[0].inflatedBytes('client');
  assert.ok(inflated > 1024 && inflated <= 1024 + 16 * 1024, String(inflated));
  // The upstream never got the whole frame, so its application never saw the message.
  assert.deepEqual(received, []);
});

test('a compression bomb from the upstream gets 1009 to the upstream; the client never gets the message', async () => {
  const { proxy } = await setup({ threshold: 0 }, 64 * 1024);
  const ws = await open(`${proxy.url}/bomb`);
  let messages = 0;
  ws.on('message', () => messages++);
  const relayEnd = await proxy.endOf('/bomb');
  assert.equal(relayEnd.code, CloseCode.MessageTooBig);
  assert.match(relayEnd.reason, /^upstream: inflated message larger than 65536 bytes/);
  await closed(ws);
  assert.equal(messages, 0);
  const inflated = proxy.relays[0].inflatedBytes('upstream');
  assert.ok(inflated > 64 * 1024 && inflated <= 80 * 1024, String(inflated));
});

/** A raw client that negotiates permessage-deflate and sends its own frames; resolves with the close code it got. */
async function rawClient(port: number, path: string, frames: Buffer): Promise<number> {
  const s = net.connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  s.write(
    `GET ${path} HTTP/1.1\r\n` +
      'Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
  );
  let acc = Buffer.alloc(0);
  let sent = false;
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      acc = Buffer.concat([acc, c]);
      if (!sent) {
        const i = acc.indexOf('\r\n\r\n');
        if (i < 0) return;
        assert.match(acc.subarray(0, i).toString(), /permessage-deflate/i);
        acc = acc.subarray(i + 4);
        sent = true;
        s.write(frames);
      }
      // The proxy's close frame: 0x88, length, code.
      if (acc.length >= 4 && acc[0] === 0x88) {
        resolve(acc.readUInt16BE(2));
        s.destroy();
      }
    });
  });
}

function maskedFrame(b0: number, payload: Buffer): Buffer {
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  assert.ok(body.length < 126);
  return Buffer.concat([Buffer.from([b0, 0x80 | body.length]), key, body]);
}

test('a compressed message that does not inflate gets 1007 (ws does the same: lib/permessage-deflate.js inflateOnError)', async () => {
  const { proxy, received } = await setup({ threshold: 0 }, 1024 * 1024);
  // FIN + RSV1 + text; 0xff starts a block of the reserved type 3 (RFC 1951 §3.2.3).
  assert.equal(await rawClient(proxy.port, '/echo', maskedFrame(0xc1, Buffer.from([0xff, 0xff, 0xff, 0xff]))), CloseCode.InvalidPayload);
  assert.equal((await proxy.endOf('/echo')).code, CloseCode.InvalidPayload);
  assert.deepEqual(received, []);
});

test('a valid raw deflate message from a raw client passes and is counted inflated', async () => {
  const { proxy } = await setup({ threshold: 0 }, 1024 * 1024);
  // RFC 7692 §7.2.1: compress, then drop the 0x00 0x00 0xff 0xff the sync flush ends with.
  const z = zlib.deflateRawSync(Buffer.from('Hello'), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const payload = z.subarray(0, z.length - 4);
  const close = maskedFrame(0x88, Buffer.from([0x03, 0xe8]));
  assert.equal(await rawClient(proxy.port, '/quiet', Buffer.concat([maskedFrame(0xc1, payload), close])), 1000);
  assert.equal(proxy.relays[0].inflatedBytes('client'), 5);
});

test('bytesPerSecond counts inflated bytes: a small compressed frame over the budget gets 1008', async () => {
  const { proxy, received } = await setup({ threshold: 0 }, 1024 * 1024);
  const ws = await open(`${proxy.url}/echo`);
  // Time stands still: the bucket holds 10,000 bytes and never refills.
  const check = messageCheck(compiled({ rateLimit: { bytesPerSecond: 10_000, onExceed: 'Close', direction: 'FromClient' } }).rateLimit.messages!, new ManualClock(), () => {}, () => {});
  proxy.relays[0].setMessageCheck('client', check);
  ws.send(Buffer.alloc(100_000));
  assert.equal((await closed(ws)).code, CloseCode.PolicyViolation);
  assert.ok(proxy.counters.bytesFromClient < 1000);
  assert.deepEqual(received, []);
});

test('pings and pongs spend the byte budget: an unsolicited pong flood gets 1008', async () => {
  const { proxy } = await setup({ threshold: 0 }, 1024 * 1024);
  const ws = await open(`${proxy.url}/echo`);
  const check = messageCheck(compiled({ rateLimit: { bytesPerSecond: 1000, onExceed: 'Close', direction: 'FromClient' } }).rateLimit.messages!, new ManualClock(), () => {}, () => {});
  proxy.relays[0].setMessageCheck('client', check);
  const gone = closed(ws);
  // 100 pongs of 125 bytes (131 on the wire from a client): the 1,000-byte bucket covers 7 of them.
  for (let i = 0; i < 100; i++) ws.pong(Buffer.alloc(125));
  assert.equal((await gone).code, CloseCode.PolicyViolation);
  const end = await proxy.endOf('/echo');
  assert.match(end.reason, /control frame rate exceeded/);
});
