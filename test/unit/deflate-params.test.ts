// The permessage-deflate parameters read from an upstream's 101 (RFC 7692 §7.1): which window and context
// takeover each direction's messages are inflated with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inflateParams, negotiatedDeflate } from '../../src/proxy/relay/deflate-params.ts';

test('negotiatedDeflate: absent, bare, every parameter, quoted values, other extensions around it', () => {
  const cases: [string | undefined, ReturnType<typeof negotiatedDeflate>][] = [
    [undefined, undefined],
    ['', undefined],
    ['x-webkit-deflate-frame', undefined],
    ['permessage-deflate', { serverMaxWindowBits: 15, clientMaxWindowBits: 15, serverNoContextTakeover: false, clientNoContextTakeover: false }],
    [
      // What ws answers with every option on (test/integration/relay-deflate.test.ts sees this header).
      'permessage-deflate; client_max_window_bits=10; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10',
      { serverMaxWindowBits: 10, clientMaxWindowBits: 10, serverNoContextTakeover: true, clientNoContextTakeover: true },
    ],
    ['x-foo; a="1,2", Permessage-Deflate; Server_Max_Window_Bits="9"', { serverMaxWindowBits: 9, clientMaxWindowBits: 15, serverNoContextTakeover: false, clientNoContextTakeover: false }],
    // Out of range (a client would fail the connection): read as 15, which inflates anything a valid sender sends.
    ['permessage-deflate; client_max_window_bits=7; server_max_window_bits=99', { serverMaxWindowBits: 15, clientMaxWindowBits: 15, serverNoContextTakeover: false, clientNoContextTakeover: false }],
  ];
  assert.deepEqual(
    cases.map(([h]) => negotiatedDeflate(h)),
    cases.map(([, want]) => want),
  );
});

test('inflateParams: the client side inflates with the client parameters, the upstream side with the server ones', () => {
  const p = { serverMaxWindowBits: 11, clientMaxWindowBits: 12, serverNoContextTakeover: true, clientNoContextTakeover: false };
  assert.deepEqual([inflateParams(p, true), inflateParams(p, false)], [
    { windowBits: 12, noContextTakeover: false },
    { windowBits: 11, noContextTakeover: true },
  ]);
});
