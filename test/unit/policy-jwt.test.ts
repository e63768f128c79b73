// auth.jwt as a pure check (plus a local JWKS HTTP server): algorithms and key sources, issuer, audience,
// exp/nbf with skew, token sources and their removal, required and forwarded claims, JWKS rotation with a
// bounded refresh rate, and no token or claim value in any message.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { JwtPolicy, type JwtEdits } from '../../src/policy/jwt.ts';
import { compiledJwt } from '../support/compiled-route.ts';

const hmac = Buffer.from('0123456789abcdef0123456789abcdef-secret');
const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');
const edits = (): JwtEdits => ({ drop: new Set(), extra: [] });
const req = (headers: Record<string, string> = {}, url = '/ws') => ({ url, headers });
const now = new Date('2030-01-01T00:00:00Z');
const t0 = Math.floor(now.getTime() / 1000);

async function sign(payload: JWTPayload, alg: string, key: Parameters<SignJWT['sign']>[0], kid?: string): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, ...(kid ? { kid } : {}) }).setIssuedAt(t0).setExpirationTime(t0 + 60).sign(key);
}

type Jwks = { keys: unknown[] };
let jwks: Jwks = { keys: [] };
let hits = 0;
let server: http.Server;
let jwksUrl = '';

before(async () => {
  server = http.createServer((_req, res) => {
    hits++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(jwks));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
  test(`${alg} with a PEM public key from a Secret`, async () => {
    const kp = await generateKeyPair(alg, { extractable: true });
    const secrets = { jwtKey: b64(await exportSPKI(kp.publicKey)) };
    const p = new JwtPolicy({ now: () => now });
    const tok = await sign({ sub: 'alice' }, alg, kp.privateKey);
    const e = edits();
    assert.equal(await p.check(compiledJwt({}, secrets), req({ authorization: `Bearer ${tok}` }), e), undefined);
    assert.equal(e.claims?.sub, 'alice');
    assert.ok(e.drop.has('authorization'), 'the token is not forwarded by default');
    // Algorithm confusion: the public key as an HMAC secret must not verify.
    const forged = await sign({ sub: 'mallory' }, 'HS256', new TextEncoder().encode(await exportSPKI(kp.publicKey)));
    assert.equal((await p.check(compiledJwt({}, secrets), req({ authorization: `Bearer ${forged}` }), edits()))?.httpStatus, 401);
  });
}

test('HS256: issuer, audience, exp/nbf with clock skew; 401 with WWW-Authenticate; nothing secret in messages', async () => {
  const secrets = { jwtKey: b64(hmac) };
  const spec = { issuer: 'https://issuer', audiences: ['chat'], clockSkewSeconds: 30 };
  let clock = now;
  const p = new JwtPolicy({ now: () => clock });
  const good = await sign({ iss: 'https://issuer', aud: 'chat', sub: 's3cr3t-sub' }, 'HS256', hmac);
  assert.equal(await p.check(compiledJwt(spec, secrets), req({ authorization: `Bearer ${good}` }), edits()), undefined);
  const cases: [string, Promise<string>][] = [
    ['wrong issuer', sign({ iss: 'https://other', aud: 'chat' }, 'HS256', hmac)],
    ['wrong audience', sign({ iss: 'https://issuer', aud: 'other' }, 'HS256', hmac)],
    ['wrong key', sign({ iss: 'https://issuer', aud: 'chat' }, 'HS256', Buffer.from('x'.repeat(40)))],
    ['not yet valid', new SignJWT({ iss: 'https://issuer', aud: 'chat' }).setProtectedHeader({ alg: 'HS256' }).setNotBefore(t0 + 120).sign(hmac)],
    ['garbage', Promise.resolve('not.a.jwt')],
  ];
  for (const [name, tp] of cases) {
    const tok = await tp;
    const err = await p.check(compiledJwt(spec, secrets), req({ authorization: `Bearer ${tok}` }), edits());
    assert.equal(err?.httpStatus, 401, name);
    assert.equal(err?.reason, 'unauthorized');
    assert.match(err?.headers['WWW-Authenticate'] ?? '', /^Bearer realm="wsgate", error="invalid_token"$/);
    assert.ok(!err?.message.includes(tok) && !err?.message.includes('s3cr3t'), name);
  }
  const missing = await p.check(compiledJwt(spec, secrets), req(), edits());
  assert.equal(missing?.httpStatus, 401);
  assert.equal(missing?.headers['WWW-Authenticate'], 'Bearer realm="wsgate"');
  // Expired 40 s ago: beyond the 30 s skew. Expired 20 s ago: within it.
  clock = new Date((t0 + 100) * 1000);
  assert.equal((await p.check(compiledJwt(spec, secrets), req({ authorization: `Bearer ${good}` }), edits()))?.httpStatus, 401);
  clock = new Date((t0 + 80) * 1000);
  assert.equal(await p.check(compiledJwt(spec, secrets), req({ authorization: `Bearer ${good}` }), edits()), undefined);
  // An HMAC key never verifies when only asymmetric algorithms are allowed: the builder says so in the route's
  // status (InvalidKey) and leaves the key out, so the route answers as with missing material (503 below).
  assert.throws(() => compiledJwt({ algorithms: ['RS256'] }, secrets), /the key verifies HS256, which auth\.jwt\.algorithms \(RS256\) does not list/);
  // A key set fetched from a URL is public keys only: HS256 is never among its algorithms.
  assert.equal((await p.check(compiledJwt({ jwksUrl: 'http://127.0.0.1:1/jwks', algorithms: ['HS256'] }), req({ authorization: `Bearer ${good}` }), edits()))?.httpStatus, 401);
  assert.equal((await p.check(compiledJwt({}), req({ authorization: `Bearer ${good}` }), edits()))?.httpStatus, 503);
});

test('token sources: query, cookie, subprotocol; each removed before forwarding unless forwardToken', async () => {
  const secrets = { jwtKey: b64(hmac) };
  const p = new JwtPolicy({ now: () => now });
  const tok = await sign({ sub: 'u' }, 'HS256', hmac);
  const q = edits();
  assert.equal(await p.check(compiledJwt({ tokenSources: [{ type: 'Query' }] }, secrets), req({}, `/ws?a=1&access_token=${tok}`), q), undefined);
  assert.equal(q.path, '/ws?a=1');
  const c = edits();
  assert.equal(await p.check(compiledJwt({ tokenSources: [{ type: 'Cookie', name: 'jwt' }] }, secrets), req({ cookie: `x=1; jwt=${tok}` }), c), undefined);
  assert.ok(c.drop.has('cookie'));
  assert.deepEqual(c.extra, ['Cookie', 'x=1']);
  const s = edits();
  assert.equal(await p.check(compiledJwt({ tokenSources: [{ type: 'Subprotocol' }] }, secrets), req({ 'sec-websocket-protocol': `chat, access_token, ${tok}` }), s), undefined);
  assert.ok(s.drop.has('sec-websocket-protocol'));
  assert.deepEqual(s.extra, ['Sec-WebSocket-Protocol', 'chat']);
  assert.equal(s.subprotocolFallback, 'access_token');
  const fwd = edits();
  assert.equal(await p.check(compiledJwt({ forwardToken: true }, secrets), req({ authorization: `Bearer ${tok}` }), fwd), undefined);
  assert.ok(!fwd.drop.has('authorization'));
  // Sources are tried in order.
  const h = edits();
  assert.equal(await p.check(compiledJwt({ tokenSources: [{ type: 'Header', name: 'X-Token' }, { type: 'Query' }] }, secrets), req({ 'x-token': tok }), h), undefined);
  assert.ok(h.drop.has('x-token'));
});

test('required claims → 403; forwarded claims replace client headers; values stay out of messages', async () => {
  const secrets = { jwtKey: b64(hmac) };
  const p = new JwtPolicy({ now: () => now });
  const spec = {
    requiredClaims: [{ name: 'roles', values: ['admin', 'ops'] }, { name: 'org.tier', values: ['gold'] }],
    forwardClaims: [{ claim: 'sub', header: 'X-User' }, { claim: 'roles', header: 'X-Roles' }, { claim: 'evil', header: 'X-Evil' }],
  };
  const ok = await sign({ sub: 'alice', roles: ['user', 'ops'], org: { tier: 'gold' }, evil: 'a\r\nb' }, 'HS256', hmac);
  const e = edits();
  assert.equal(await p.check(compiledJwt(spec, secrets), req({ authorization: `Bearer ${ok}`, 'x-user': 'root' }), e), undefined);
  assert.deepEqual(e.extra, ['X-User', 'alice', 'X-Roles', 'user,ops']);
  assert.ok(e.drop.has('x-user') && e.drop.has('x-evil'));
  const no = await sign({ sub: 'bob', roles: ['user'], org: { tier: 'gold' } }, 'HS256', hmac);
  const err = await p.check(compiledJwt(spec, secrets), req({ authorization: `Bearer ${no}` }), edits());
  assert.equal(err?.httpStatus, 403);
  assert.equal(err?.reason, 'claims_not_allowed');
  assert.ok(!err?.message.includes('user'));
});

test('JWKS: cached, refetched on an unknown kid after rotation, refresh rate bounded', async () => {
  const a = await generateKeyPair('ES256', { extractable: true });
  const b = await generateKeyPair('ES256', { extractable: true });
  const jwkA = { ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'ES256' };
  const jwkB = { ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'ES256' };
  jwks = { keys: [jwkA] };
  hits = 0;
  const p = new JwtPolicy({ now: () => now, jwksCooldownMs: 0 });
  const spec = { jwksUrl };
  const ta = await sign({ sub: 'a' }, 'ES256', a.privateKey, 'a');
  const tb = await sign({ sub: 'b' }, 'ES256', b.privateKey, 'b');
  for (let i = 0; i < 5; i++) assert.equal(await p.check(compiledJwt(spec), req({ authorization: `Bearer ${ta}` }), edits()), undefined);
  assert.equal(hits, 1, 'the key set is cached');
  assert.equal((await p.check(compiledJwt(spec), req({ authorization: `Bearer ${tb}` }), edits()))?.httpStatus, 401);
  jwks = { keys: [jwkA, jwkB] };
  assert.equal(await p.check(compiledJwt(spec), req({ authorization: `Bearer ${tb}` }), edits()), undefined, 'rotation picked up on the unknown kid');
  const fetched = hits;

  // With a cooldown, a flood of unknown kids cannot hammer the JWKS endpoint.
  jwks = { keys: [jwkA] };
  hits = 0;
  const bounded = new JwtPolicy({ now: () => now, jwksCooldownMs: 60_000 });
  assert.equal(await bounded.check(compiledJwt(spec), req({ authorization: `Bearer ${ta}` }), edits()), undefined);
  for (let i = 0; i < 20; i++) {
    const t = await sign({}, 'ES256', b.privateKey, `unknown-${i}`);
    assert.equal((await bounded.check(compiledJwt(spec), req({ authorization: `Bearer ${t}` }), edits()))?.httpStatus, 401);
  }
  assert.ok(hits <= 2, `JWKS fetched ${hits} times`);
  assert.ok(fetched >= 2);
});

test('JWKS unreachable → 503 auth_unavailable', async () => {
  const p = new JwtPolicy({ now: () => now, jwksTimeoutMs: 500 });
  const kp = await generateKeyPair('ES256');
  const t = await sign({}, 'ES256', kp.privateKey, 'k');
  const err = await p.check(compiledJwt({ jwksUrl: 'http://127.0.0.1:1/jwks' }), req({ authorization: `Bearer ${t}` }), edits());
  assert.equal(err?.httpStatus, 503);
  assert.equal(err?.reason, 'auth_unavailable');
});

test('every configured source is stripped; different tokens across or within sources → 400 ambiguous_credentials', async () => {
  const secrets = { jwtKey: b64(hmac) };
  const p = new JwtPolicy({ now: () => now });
  const tok = await sign({ sub: 'u' }, 'HS256', hmac);
  const other = await sign({ sub: 'v' }, 'HS256', hmac);
  const all = { tokenSources: [{ type: 'Header' as const }, { type: 'Query' as const }, { type: 'Cookie' as const }, { type: 'Subprotocol' as const }] };
  // The header's token is verified; the same token elsewhere, an empty parameter and a bare marker go too.
  const e = edits();
  const r = { url: `/ws?access_token=&a=1&access_token=${tok}`, headers: { authorization: `Bearer ${tok}`, cookie: `x=1; access_token=${tok}`, 'sec-websocket-protocol': 'chat, access_token' } };
  assert.equal(await p.check(compiledJwt(all, secrets), r, e), undefined);
  assert.deepEqual({ drop: [...e.drop].sort(), extra: e.extra, path: e.path, fallback: e.subprotocolFallback }, {
    drop: ['authorization', 'cookie', 'sec-websocket-protocol'],
    extra: ['Cookie', 'x=1', 'Sec-WebSocket-Protocol', 'chat'],
    path: '/ws?a=1',
    fallback: 'access_token',
  });
  // forwardToken keeps the source the verified token came from, and only that one.
  const f = edits();
  assert.equal(await p.check(compiledJwt({ ...all, forwardToken: true }, secrets), { url: `/ws?access_token=${tok}`, headers: { authorization: `Bearer ${tok}` } }, f), undefined);
  assert.deepEqual([[...f.drop], f.path], [[], '/ws']);
  const ambiguous: Record<string, string>[] = [
    { url: `/ws?access_token=${other}`, authorization: `Bearer ${tok}` },
    { url: '/ws', authorization: `Bearer ${tok}`, 'sec-websocket-protocol': `access_token, ${other}` },
    { url: '/ws', authorization: `Bearer ${tok}`, cookie: `access_token=${other}` },
    { url: `/ws?access_token=${tok}&access_token=${other}` },
    { url: '/ws', cookie: `access_token=${tok}; access_token=${other}` },
    { url: '/ws', 'sec-websocket-protocol': `access_token, ${tok}, access_token, ${other}` },
  ];
  for (const { url, ...headers } of ambiguous) {
    const err = await p.check(compiledJwt(all, secrets), { url: url!, headers }, edits());
    assert.deepEqual([err?.httpStatus, err?.reason, err?.headers['WWW-Authenticate']], [400, 'ambiguous_credentials', 'Bearer realm="wsgate", error="invalid_request"'], JSON.stringify(headers));
    assert.ok(!err?.message.includes(tok) && !err?.message.includes(other));
  }
  // A repeated Authorization field (Node keeps only the first in headers) is read from rawHeaders.
  const raw = { url: '/ws', headers: { authorization: `Bearer ${tok}` }, rawHeaders: ['Authorization', `Bearer ${tok}`, 'authorization', `Bearer ${other}`] };
  assert.equal((await p.check(compiledJwt({}, secrets), raw, edits()))?.reason, 'ambiguous_credentials');
});

test('requireExpiry: a token without exp → 401 unless requireExpiry is false', async () => {
  const secrets = { jwtKey: b64(hmac) };
  const p = new JwtPolicy({ now: () => now });
  const forever = await new SignJWT({ sub: 'u' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(t0).sign(hmac);
  const err = await p.check(compiledJwt({}, secrets), req({ authorization: `Bearer ${forever}` }), edits());
  assert.deepEqual([err?.httpStatus, err?.message], [401, 'invalid token: claim exp check failed']);
  assert.equal(await p.check(compiledJwt({ requireExpiry: false }, secrets), req({ authorization: `Bearer ${forever}` }), edits()), undefined);
});
