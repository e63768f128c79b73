// The upstream request headers with a rule's rewrite, as forwardHeaders assembles them: the whole header list
// compared. What the rewrite does to the client's headers follows the Gateway API's HTTPHeaderFilter
// (https://gateway-api.sigs.k8s.io/reference/spec/#httpheaderfilter): set replaces every line of the name, add
// appends ",value" to the existing header ("my-header: foo" + "bar,baz" → "my-header: foo,bar,baz"), remove
// drops it; and wsgate's own edits win: an admission check's drop (a credential kept from the backend, a
// forwardClaims header) removes the name even when the rewrite writes it.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { compileRequestHeaders } from '../../src/dag/compile/request-headers.ts';
import { forwardHeaders, type ForwardOptions } from '../../src/proxy/handshake/forward-headers.ts';
import type { UpgradeRequest } from '../../src/proxy/handshake/head.ts';

function request(raw: string[]): UpgradeRequest {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    headers[k] = headers[k] === undefined ? raw[i + 1]! : `${headers[k]}, ${raw[i + 1]}`;
  }
  return { method: 'GET', url: '/', httpVersionMajor: 1, httpVersionMinor: 1, headers, rawHeaders: raw, socket: { remoteAddress: '10.0.0.9' } as Socket };
}

const base: ForwardOptions = {
  clientIp: '10.0.0.9',
  secure: false,
  correlation: { requestId: 'rid', traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01' },
  trustForwarded: false,
  upgrade: true,
};

/** The header lines as "Name: value", without the ones wsgate writes on every request (they are the same in every case). */
function lines(req: UpgradeRequest, o: Partial<ForwardOptions>): string[] {
  const out = forwardHeaders(req, { ...base, ...o });
  const own = new Set(['connection', 'upgrade', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip', 'x-request-id', 'traceparent']);
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!own.has(out[i]!.toLowerCase())) kept.push(`${out[i]}: ${out[i + 1]}`);
  return kept;
}

const client = request([
  'Host', 'chat.example.com',
  'X-Multi', 'a',
  'Authorization', 'Bearer client',
  'x-multi', 'b',
  'X-Empty', '',
  'X-Gone', '1',
  'X-Tenant', 'red',
]);

test('without a rewrite the client headers go as they came', () => {
  assert.deepEqual(lines(client, {}), ['Host: chat.example.com', 'X-Multi: a', 'Authorization: Bearer client', 'x-multi: b', 'X-Empty: ', 'X-Gone: 1', 'X-Tenant: red']);
});

test('remove, set and add in one pass: set lines follow the client headers, add goes onto the last line of its name', () => {
  const rewrite = compileRequestHeaders({
    set: [{ name: 'X-Tenant', value: 'blue' }, { name: 'X-New', value: 'n' }],
    add: [{ name: 'X-Multi', value: 'c' }, { name: 'X-Empty', value: 'e' }, { name: 'X-New', value: 'm' }, { name: 'X-Absent', value: 'z' }],
    remove: ['x-gone'],
  });
  assert.ok(rewrite);
  assert.deepEqual(lines(client, { rewrite }), [
    'Host: chat.example.com',
    'X-Multi: a',
    'Authorization: Bearer client',
    'x-multi: b,c',
    'X-Empty: e',
    'X-Tenant: blue',
    'X-New: n,m',
    'X-Absent: z',
  ]);
});

test("an admission check's drop wins over the rewrite: the name is not sent, from the client or from the rewrite", () => {
  const rewrite = compileRequestHeaders({ set: [{ name: 'Authorization', value: 'Bearer static' }], add: [{ name: 'X-User', value: 'forged' }] });
  assert.ok(rewrite);
  // As the JWT check does for forwardToken: false and a forwardClaims header X-User (src/policy/jwt.ts).
  const got = lines(client, { rewrite, drop: new Set(['authorization', 'x-user']), extra: ['X-User', 'alice'] });
  assert.deepEqual(got, ['Host: chat.example.com', 'X-Multi: a', 'x-multi: b', 'X-Empty: ', 'X-Gone: 1', 'X-Tenant: red', 'X-User: alice']);
});

test('a rewrite with nothing in it compiles to none', () => {
  assert.equal(compileRequestHeaders({ set: [], add: [], remove: [] }), undefined);
  assert.equal(compileRequestHeaders(undefined), undefined);
});
