// The pure admission checks: origin patterns, client address through trusted proxies, CIDR filters, API keys,
// connection budgets on an injected clock, and the builder's key material resolution.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { fileSecret, hashKey, resolveRouteSecrets } from '../../src/dag/secrets.ts';
import type { Route } from '../../src/model/snapshot.ts';
import { checkApiKey } from '../../src/policy/api-key.ts';
import { ClientIpFilter } from '../../src/policy/client-ip.ts';
import { parseCidr, parseCidrs, resolveClientIp } from '../../src/util/cidr.ts';
import { cookieWithout, queryParam, queryWithout } from '../../src/policy/credentials.ts';
import { messageCheck } from '../../src/policy/message-limits.ts';
import { checkOrigin, originMatches } from '../../src/policy/origin.ts';
import { Verdict } from '../../src/proxy/relay/scanner.ts';
import { ConnectionLimiter } from '../../src/policy/rate-limit.ts';
import { TokenBucket } from '../../src/policy/token-bucket.ts';
import { selfSigned } from '../support/certs.ts';
import { compiled, compiledRoute } from '../support/compiled-route.ts';
import { ManualClock } from '../support/manual-clock.ts';

test('origin: exact, wildcard subdomains, star, missing', () => {
  assert.equal(originMatches('https://chat.example.com', 'https://chat.example.com'), true);
  assert.equal(originMatches('https://chat.example.com', 'HTTPS://Chat.Example.com'), true);
  assert.equal(originMatches('https://chat.example.com', 'http://chat.example.com'), false);
  assert.equal(originMatches('https://chat.example.com', 'https://chat.example.com:8443'), false);
  assert.equal(originMatches('https://*.example.com', 'https://a.example.com'), true);
  assert.equal(originMatches('https://*.example.com', 'https://a.b.example.com'), true);
  assert.equal(originMatches('https://*.example.com', 'https://example.com'), false);
  assert.equal(originMatches('https://*.example.com', 'https://evilexample.com'), false);
  assert.equal(originMatches('https://*.example.com', 'https://a.example.com.evil.io'), false);
  assert.equal(originMatches('https://*.example.com', 'https://x/.example.com'), false);
  assert.equal(originMatches('*', 'null'), false);
  const spec = { allowedOrigins: ['https://chat.example.com'] };
  const origins = compiled(spec).origins;
  assert.equal(checkOrigin(origins, 'https://chat.example.com'), undefined);
  assert.equal(checkOrigin(origins, 'https://evil.com')?.httpStatus, 403);
  assert.equal(checkOrigin(origins, 'https://evil.com')?.reason, 'origin_not_allowed');
  assert.equal(checkOrigin(origins, undefined), undefined, 'allowMissingOrigin defaults to true');
  assert.equal(checkOrigin(compiled({ ...spec, allowMissingOrigin: false }).origins, undefined)?.httpStatus, 403);
  assert.equal(checkOrigin(compiled({}).origins, 'https://anything'), undefined);
});

test('client address: X-Forwarded-For only through trusted proxies, right to left', () => {
  const trusted = parseCidrs(['10.0.0.0/8', 'fd00::/8']).set;
  assert.deepEqual(resolveClientIp('203.0.113.9', '1.2.3.4', trusted), { ip: '203.0.113.9', trustForwarded: false });
  assert.deepEqual(resolveClientIp('10.1.1.1', '1.2.3.4', trusted), { ip: '1.2.3.4', trustForwarded: true });
  // The client prepends a lie; the proxy appended the real address.
  assert.equal(resolveClientIp('10.1.1.1', '6.6.6.6, 1.2.3.4, 10.2.2.2', trusted).ip, '1.2.3.4');
  assert.equal(resolveClientIp('::ffff:10.1.1.1', ['1.2.3.4'], trusted).ip, '1.2.3.4');
  assert.equal(resolveClientIp('fd00::1', '[2001:db8::7]:443', trusted).ip, '2001:db8::7');
  assert.equal(resolveClientIp('10.1.1.1', 'garbage, 10.3.3.3', trusted).ip, '10.3.3.3');
  assert.equal(resolveClientIp('10.1.1.1', undefined, trusted).ip, '10.1.1.1');
  assert.equal(resolveClientIp('1.2.3.4', '5.6.7.8', parseCidrs([]).set).ip, '1.2.3.4');
  assert.deepEqual(parseCidrs(['10.0.0.0/33', 'nope', '1.2.3.4', '::/0']).bad, ['10.0.0.0/33', 'nope']);
});

test('parseCidr: the one parser says what is wrong with an entry', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { ip: '10.0.0.0', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseCidr('2001:db8::/32'), { ip: '2001:db8::', prefix: 32, family: 'ipv6' });
  assert.deepEqual(parseCidr('192.168.1.7'), { ip: '192.168.1.7', prefix: 32, family: 'ipv4' });
  assert.deepEqual(parseCidr('::1'), { ip: '::1', prefix: 128, family: 'ipv6' });
  assert.match(parseCidr('10.0.0.0/33') as string, /prefix length that is not a number from 0 to 32 \(IPv4\)/);
  assert.match(parseCidr('::1/200') as string, /prefix length that is not a number from 0 to 128 \(IPv6\)/);
  assert.match(parseCidr('10.0.0.0/8/9') as string, /prefix length/);
  assert.match(parseCidr('10.0.0.0/') as string, /prefix length/);
  assert.match(parseCidr('nonsense') as string, /is not an IP address or CIDR/);
  assert.match(parseCidr('10.0.0.256') as string, /is not an IP address or CIDR/);
  assert.match(parseCidr('fe80::1%eth0/64') as string, /zone/);
});

test('clientIPs: allow and deny, IPv4 and IPv6, deny wins; a bad entry never compiles', () => {
  const f = new ClientIpFilter();
  const spec = compiled({ clientIPs: { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.9.0.0/16'] } }).clientIps;
  assert.equal(f.check(spec, '10.1.2.3'), undefined);
  assert.equal(f.check(spec, '2001:db8::1'), undefined);
  assert.equal(f.check(spec, '10.9.1.1')?.reason, 'client_ip_not_allowed');
  assert.equal(f.check(spec, '192.168.1.1')?.httpStatus, 403);
  assert.equal(f.check(spec, '2001:db9::1')?.httpStatus, 403);
  assert.equal(f.check(compiled({ clientIPs: { deny: ['192.168.0.0/16'] } }).clientIps, '10.0.0.1'), undefined);
  assert.equal(f.check(compiled({}).clientIps, '10.0.0.1'), undefined);
  // The builder refuses the route (test/fixtures/dag/invalid-client-ips), so the filter never meets one.
  assert.throws(() => compiled({ clientIPs: { deny: ['192.168.0.0/99'] } }), /spec\.clientIPs\.deny\[0\]/);
});

test('credentials: query and cookie removal keeps everything else', () => {
  assert.equal(queryParam('/ws?a=1&access_token=x%2By&b', 'access_token'), 'x+y');
  assert.equal(queryWithout('/ws?a=1&access_token=xyz&b', 'access_token'), '/ws?a=1&b');
  assert.equal(queryWithout('/ws?access_token=xyz', 'access_token'), '/ws');
  assert.equal(cookieWithout('a=1; tok=secret; b=2', 'tok'), 'a=1; b=2');
});

test('API key: hashed, constant-time compare, header or query, stripped before forwarding', () => {
  const secrets = { apiKeyHashes: [hashKey('k-one'), hashKey('k-two')] };
  const apiKey = (a: Record<string, unknown>, resolved?: typeof secrets) => compiled({ auth: { apiKey: { file: 'keys.txt', ...a } } }, resolved ?? {}).auth.apiKey!;
  const edits = () => ({ drop: new Set<string>(), path: undefined as string | undefined });
  const e1 = edits();
  assert.equal(checkApiKey(apiKey({ header: 'X-Api-Key' }, secrets), { url: '/', headers: { 'x-api-key': 'k-two' } }, e1), undefined);
  assert.ok(e1.drop.has('x-api-key'));
  const bad = checkApiKey(apiKey({ header: 'X-Api-Key' }, secrets), { url: '/', headers: { 'x-api-key': 'nope' } }, edits());
  assert.equal(bad?.httpStatus, 401);
  assert.match(bad?.headers['WWW-Authenticate'] ?? '', /^ApiKey realm="wsgate"/);
  assert.ok(!bad?.message.includes('nope'), 'the key never appears in a message');
  assert.equal(checkApiKey(apiKey({ header: 'X-Api-Key' }, secrets), { url: '/', headers: {} }, edits())?.httpStatus, 401);
  const e2 = edits();
  assert.equal(checkApiKey(apiKey({ queryParam: 'key' }, secrets), { url: '/ws?key=k-one&x=1', headers: {} }, e2), undefined);
  assert.equal(e2.path, '/ws?x=1');
  assert.equal(checkApiKey(apiKey({ queryParam: 'key' }), { url: '/ws?key=k-one', headers: {} }, edits())?.httpStatus, 503);
});

function fakeRoute(key: string, spec: Record<string, unknown>): Route {
  const [namespace, name] = key.split('/') as [string, string];
  return { ...compiledRoute(spec, [], name), key: key as Route['key'], namespace };
}

test('connection budgets: per-IP rate with Retry-After, per-IP and per-route concurrency released on close', () => {
  const clock = new ManualClock(0);
  const lim = new ConnectionLimiter({ clock });
  const rate = fakeRoute('ns/rate', { rateLimit: { connectionsPerMinutePerIP: 2 } });
  const sock = () => new EventEmitter();
  assert.equal(lim.admit(rate, '1.1.1.1', sock()), undefined);
  assert.equal(lim.admit(rate, '1.1.1.1', sock()), undefined);
  const e = lim.admit(rate, '1.1.1.1', sock());
  assert.equal(e?.httpStatus, 429);
  assert.equal(e?.reason, 'rate_limited');
  assert.equal(e?.headers['Retry-After'], '30');
  assert.equal(lim.admit(rate, '2.2.2.2', sock()), undefined, 'other addresses have their own bucket');
  clock.advance(30_000);
  assert.equal(lim.admit(rate, '1.1.1.1', sock()), undefined);

  const conc = fakeRoute('ns/conc', { limits: { maxConnections: 3, maxConnectionsPerIP: 2 } });
  const a = sock(), b = sock();
  assert.equal(lim.admit(conc, '1.1.1.1', a), undefined);
  assert.equal(lim.admit(conc, '1.1.1.1', b), undefined);
  const perIp = lim.admit(conc, '1.1.1.1', sock());
  assert.equal(perIp?.httpStatus, 429);
  assert.equal(perIp?.reason, 'connection_limit');
  assert.equal(lim.admit(conc, '2.2.2.2', sock()), undefined);
  const full = lim.admit(conc, '3.3.3.3', sock());
  assert.equal(full?.httpStatus, 503);
  assert.equal(full?.reason, 'route_connection_limit');
  assert.equal(full?.headers['Retry-After'], '1');
  a.emit('close');
  assert.equal(lim.held('ns/conc'), 2);
  assert.equal(lim.admit(conc, '3.3.3.3', sock()), undefined);
});

test('connection rate buckets stay bounded', () => {
  const clock = new ManualClock(0);
  const lim = new ConnectionLimiter({ clock, maxTrackedBuckets: 100 });
  const r = fakeRoute('ns/r', { rateLimit: { connectionsPerMinutePerIP: 5 } });
  for (let i = 0; i < 1000; i++) {
    clock.advance(1);
    lim.admit(r, `10.0.${i >> 8}.${i & 255}`, new EventEmitter());
  }
  assert.ok(lim.trackedBuckets <= 100);
});

test('token bucket: refill, debt and wait times', () => {
  const b = new TokenBucket(10, 5, 0);
  assert.equal(b.take(10, 0), true);
  assert.equal(b.take(1, 0), false);
  assert.equal(b.waitMs(1, 0), 200);
  assert.equal(b.take(1, 200), true);
  b.force(5, 200);
  assert.equal(b.waitMs(0, 200), 1000);
  assert.equal(b.full(10_000), true);
});

test('builder key material: Secrets and files resolve, API keys only as hashes, problems named', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const cert = selfSigned(['chat.example.com']);
  const hmac = 'an HMAC secret of at least 32 bytes';
  const secrets = [
    { metadata: { namespace: 'ns', name: 'tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(cert.cert), 'tls.key': b64(cert.key) } },
    { metadata: { namespace: 'ns', name: 'jwt' }, data: { key: b64(hmac) } },
    { metadata: { namespace: 'ns', name: 'keys' }, data: { a: b64('alpha\n'), b: b64('beta') } },
    { metadata: { namespace: 'ns', name: 'ca' }, data: { 'ca.crt': b64(cert.cert) } },
    fileSecret('ns', 'keys.txt', Buffer.from('# comment\nfile-key\n\n')),
  ];
  const spec = {
    rules: [],
    tls: { secretName: 'tls' },
    auth: { jwt: { secretName: 'jwt' }, apiKey: { secretName: 'keys', header: 'X-Key' } },
    upstream: { protocol: 'wss', tls: { caSecretName: 'ca' } },
  } as never;
  const r = resolveRouteSecrets(spec, 'ns', secrets);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.tls, { cert: cert.cert, key: cert.key });
  assert.deepEqual(r.secrets.jwtKey, { material: { kind: 'hmac', secretBase64: b64(hmac) }, algorithms: ['HS256'] });
  assert.deepEqual(r.secrets.apiKeyHashes, [hashKey('alpha'), hashKey('beta')].sort());
  assert.equal(r.secrets.upstreamCa, cert.cert);
  const f = resolveRouteSecrets({ rules: [], auth: { apiKey: { file: 'keys.txt', header: 'X' } }, tls: { certFile: 'c.pem', keyFile: 'k.pem' } } as never, 'ns', secrets);
  assert.deepEqual(f.secrets.apiKeyHashes, [hashKey('file-key')]);
  assert.deepEqual(f.problems, ['tls.certFile: file c.pem not readable', 'tls.keyFile: file k.pem not readable']);
  const m = resolveRouteSecrets({ rules: [], auth: { jwt: { secretName: 'gone' } } } as never, 'other', secrets);
  assert.match(m.problems[0]!, /Secret gone/);
});

const rate = (rl: Record<string, unknown>) => compiled({ rateLimit: rl }).rateLimit.messages!;

test('message check: bytes count every data frame, continuations too; messages count first frames only', () => {
  const clock = new ManualClock(0);
  const closes: number[] = [];
  const close = messageCheck(rate({ bytesPerSecond: 100, onExceed: 'Close', direction: 'FromClient' }), clock, () => assert.fail('no throttle in Close mode'), () => closes.push(clock.now()))!;
  assert.equal(close(40, true), Verdict.Allow);
  assert.equal(close(40, false), Verdict.Allow);
  // 80 of 100 spent: the third fragment would make 120.
  assert.equal(close(40, false), Verdict.Close);
  assert.deepEqual(closes, [0]);
  clock.advance(200); // 20 bytes back
  assert.equal(close(40, false), Verdict.Allow);

  const msgs = messageCheck(rate({ messagesPerSecond: 2, burst: 2, onExceed: 'Close', direction: 'FromClient' }), clock, () => {}, () => {})!;
  // One message in twenty fragments is one message.
  assert.equal(msgs(1, true), Verdict.Allow);
  for (let i = 0; i < 19; i++) assert.equal(msgs(1, false), Verdict.Allow);
  assert.equal(msgs(1, true), Verdict.Allow);
  assert.equal(msgs(1, true), Verdict.Close);

  let waits: (() => number)[] = [];
  const throttle = messageCheck(rate({ bytesPerSecond: 100, onExceed: 'Throttle', direction: 'FromClient' }), clock, (w) => waits.push(w), () => assert.fail('no close in Throttle mode'))!;
  assert.equal(throttle(60, true), Verdict.Allow);
  assert.equal(throttle(60, false), Verdict.Throttle, 'a continuation that overdraws the byte bucket pauses the sender');
  assert.equal(waits.length, 1);
  assert.equal(waits[0](), 200);
  clock.advance(200);
  assert.equal(waits[0](), 0);
  waits = [];
  assert.equal(messageCheck(rate({ messagesPerSecond: 1, onExceed: 'Throttle', direction: 'FromClient' }), clock, (w) => waits.push(w), () => {})!(10_000, false), Verdict.Allow);
  assert.equal(waits.length, 0);
});
