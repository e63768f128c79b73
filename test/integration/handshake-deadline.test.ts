// One handshake deadline per connection, whichever parser reads the head: a head the upgrade front hands to
// Node's HTTP parser (here because of obs-text, which only Node's parser decides on) keeps the deadline that
// started when the connection was accepted. Time is a manual clock, which runs the front's deadline sweep too.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Errors } from '../../src/errors.ts';
import { rejectUpgrade } from '../../src/proxy/handshake/refusal.ts';
import { UpgradeFront } from '../../src/proxy/handshake/front.ts';
import { ManualClock } from '../support/manual-clock.ts';
import { parseResponse } from '../support/harness.ts';
import { waitUntil } from '../support/wait.ts';

const DEADLINE = 60_000;
const clock = new ManualClock();
let server: http.Server;
let front: UpgradeFront;
let port: number;

before(async () => {
  // Node's own deadline is far away: only the front's can answer within the test.
  server = http.createServer({ headersTimeout: 10 * DEADLINE, requestTimeout: 10 * DEADLINE });
  front = new UpgradeFront(server, {
    handshakeTimeoutMs: DEADLINE,
    maxHeaderBytes: 16384,
    clock,
    upgrade: (_req, socket) => socket.destroy(),
    timedOut: (socket) => rejectUpgrade(socket, Errors.handshakeTimeout()),
    cutShort: (socket) => socket.destroy(),
    onError: function (this: net.Socket) {
      this.destroy();
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(() => {
  front.close();
  server.closeAllConnections();
  server.close();
});

test('a head handed to the HTTP parser half-way through its deadline gets 408 when the first deadline ends', async () => {
  const accepted = once(server, 'connection');
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  sock.on('data', (d: Buffer) => chunks.push(d));
  const closed = once(sock, 'close');
  await accepted;
  sock.write('GET /chat HTTP/1.1\r\nHost: example.com\r\n');
  await waitUntil(() => front.pending === 1, 'the front holds the partial head');
  clock.advance(DEADLINE / 2);
  assert.equal(front.pending, 1, 'half a deadline: still waiting');
  // obs-text (RFC 9110 §5.5): the front leaves such a head to Node's parser.
  sock.write(Buffer.from('X-Name: caf\xe9\r\n', 'latin1'));
  await waitUntil(() => front.pending === 0, 'the head handed to the HTTP server');
  clock.advance(DEADLINE / 2);
  await closed;
  assert.equal(parseResponse(Buffer.concat(chunks).toString('latin1')).status, 408);
});

test('a handed-over head that completes in time is served, and its deadline is forgotten', async () => {
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => res.end('ok'));
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  const first = new Promise<void>((resolve) => sock.once('data', () => resolve()));
  sock.on('data', (d: Buffer) => chunks.push(d));
  await once(sock, 'connect');
  sock.write(Buffer.from('GET /plain HTTP/1.1\r\nHost: example.com\r\nX-Name: caf\xe9\r\n\r\n', 'latin1'));
  await first;
  // Long past the first deadline, the kept-alive connection is Node's: no 408 from the front.
  clock.advance(2 * DEADLINE);
  sock.write('GET /again HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
  await once(sock, 'close');
  const text = Buffer.concat(chunks).toString('latin1');
  assert.deepEqual(text.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200', 'HTTP/1.1 200']);
});
