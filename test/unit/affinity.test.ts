// Affinity as pure choices: the signed cookie, key extraction per type, fallback to a fresh pick when the
// session's endpoint is Draining or gone, and the admission hook that puts the cookie on the 101.
import assert from 'node:assert/strict';
import { systemClock } from '../../src/util/clock.ts';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Backend, Endpoint, EndpointState, Route } from '../../src/model/snapshot.ts';
import { Affinity, sessionKey, usesAffinity } from '../../src/proxy/balance/affinity/affinity.ts';
import { TrustedProxies } from '../../src/proxy/balance/affinity/client-ip.ts';
import { CookieSigner, readCookie, setCookieValue } from '../../src/proxy/balance/affinity/cookie.ts';
import { affinityHooks } from '../../src/proxy/balance/affinity/index.ts';
import { BalancerState, pickEndpoint, type Pick } from '../../src/proxy/balance/balancer.ts';
import type { HandshakeContext } from '../../src/proxy/hooks.ts';
import { WsgateError } from '../../src/errors.ts';
import { compiledRoute } from '../support/compiled-route.ts';

const log = pino({ level: 'silent' });

function ep(i: number, state: EndpointState = 'Active', svc = 'chat'): Endpoint {
  const host = `10.1.0.${i}`;
  return { key: `svc:default/${svc}|${host}:8080`, address: `${host}:8080`, host, port: 8080, state };
}

function backend(eps: Endpoint[], id = 'svc:default/chat:8080', weight = 1): Backend {
  return { id, weight, resolved: true, endpoints: eps };
}

function route(spec: Record<string, unknown>, backends: Backend[]): Route {
  return compiledRoute(spec, backends);
}

function req(o: { headers?: Record<string, string | string[]>; url?: string; peer?: string } = {}): IncomingMessage {
  return { headers: o.headers ?? {}, url: o.url ?? '/ws', socket: { remoteAddress: o.peer ?? '192.0.2.10' } } as unknown as IncomingMessage;
}

const cookieSpec = { sessionAffinity: { type: 'Cookie', cookie: { name: 'wsgate-affinity', ttlSeconds: 3600, path: '/', secure: false } } };

function pickWith(r: Route, a: Affinity, rq: IncomingMessage, state: BalancerState, clientIp = '192.0.2.10'): { pick: Pick; cookie: string | undefined } {
  const c = a.choose({ route: r, req: rq, clientIp, secure: false });
  const pick = pickEndpoint(r.rules[0], r.balance.policy, state, { hashPick: c.hashPick, random: () => c.random(r.rules[0]) });
  assert.ok(!(pick instanceof WsgateError));
  return { pick, cookie: c.setCookie(pick.endpoint) };
}

function cookieValue(setCookie: string | undefined): string {
  assert.ok(setCookie);
  return setCookie.split(';')[0].split('=')[1];
}

test('cookie: a fresh pick sets a signed cookie; presenting it returns to the same endpoint on any replica', () => {
  const eps = [ep(1), ep(2), ep(3)];
  const r = route(cookieSpec, [backend(eps)]);
  const stateA = new BalancerState();
  const replicaA = new Affinity({ signer: new CookieSigner('s3cret'), balancer: stateA });
  const stateB = new BalancerState();
  const replicaB = new Affinity({ signer: new CookieSigner('s3cret'), balancer: stateB });
  const first = pickWith(r, replicaA, req(), stateA);
  assert.match(first.cookie ?? '', /^wsgate-affinity=[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
  assert.ok(!first.cookie!.includes(first.pick.endpoint.host), 'the cookie does not reveal the pod address');
  const v = cookieValue(first.cookie);
  for (let i = 0; i < 20; i++) {
    // Load elsewhere does not move a session: the cookie wins over balancing.
    stateB.acquire(first.pick.endpoint.key);
    const again = pickWith(r, replicaB, req({ headers: { cookie: `other=1; wsgate-affinity=${v}` } }), stateB);
    assert.equal(again.pick.endpoint.key, first.pick.endpoint.key);
    // Sliding expiry: the same value again, with a fresh Max-Age.
    assert.equal(again.cookie, first.cookie, 'the cookie is renewed, naming the same endpoint');
  }
});

test('cookie: forged, foreign-secret or truncated values are not honoured', () => {
  const eps = [ep(1), ep(2), ep(3)];
  const r = route(cookieSpec, [backend(eps)]);
  const state = new BalancerState();
  const a = new Affinity({ signer: new CookieSigner('s3cret'), balancer: state });
  const other = new CookieSigner('another-secret');
  // Pin every endpoint but the least loaded one so a fresh pick is predictable: ep(1) is least loaded.
  state.acquire(eps[1].key);
  state.acquire(eps[2].key);
  for (const forged of [other.idFor(eps[2]), 'A'.repeat(22), 'svc:default/chat|10.1.0.3:8080', new CookieSigner('s3cret').idFor(eps[2]).slice(0, 21)]) {
    const p = pickWith(r, a, req({ headers: { cookie: `wsgate-affinity=${forged}` } }), state);
    assert.equal(p.pick.endpoint.key, eps[0].key, forged);
    assert.equal(cookieValue(p.cookie), new CookieSigner('s3cret').idFor(eps[0]));
  }
});

test('cookie: a Draining endpoint (others Active) or a gone one gets a fresh pick and a fresh cookie', () => {
  const signer = new CookieSigner('k');
  const state = new BalancerState();
  const a = new Affinity({ signer, balancer: state });
  const old = ep(1);
  const headers = { cookie: `wsgate-affinity=${signer.idFor(old)}` };
  const draining = route(cookieSpec, [backend([{ ...old, state: 'Draining' }, ep(2), ep(3)])]);
  const p1 = pickWith(draining, a, req({ headers }), state);
  assert.notEqual(p1.pick.endpoint.key, old.key);
  assert.equal(cookieValue(p1.cookie), signer.idFor(p1.pick.endpoint));
  const gone = route(cookieSpec, [backend([ep(2), ep(3)])]);
  const p2 = pickWith(gone, a, req({ headers }), state);
  assert.notEqual(p2.pick.endpoint.key, old.key);
  assert.ok(p2.cookie);
  // Draining with nothing Active left: it still takes connections, so the session stays.
  const onlyDraining = route(cookieSpec, [backend([{ ...old, state: 'Draining' }, ep(2, 'Draining')])]);
  const p3 = pickWith(onlyDraining, a, req({ headers }), state);
  assert.equal(p3.pick.endpoint.key, old.key);
  assert.equal(cookieValue(p3.cookie), headers.cookie.split('=')[1], 'the same session, its expiry renewed');
});

test('cookie: with several weighted backends the session keeps its backend too', () => {
  const signer = new CookieSigner('k');
  const state = new BalancerState();
  const a = new Affinity({ signer, balancer: state });
  const canary = ep(9, 'Active', 'canary');
  const r = route(cookieSpec, [backend([ep(1), ep(2)], 'svc:default/chat:8080', 9), backend([canary], 'svc:default/canary:8080', 1)]);
  for (let i = 0; i < 50; i++) {
    const p = pickWith(r, a, req({ headers: { cookie: `wsgate-affinity=${signer.idFor(canary)}` } }), state);
    assert.equal(p.pick.endpoint.key, canary.key);
  }
});

test('cookie attributes: ttl 0 is a session cookie, secure when asked, an unsafe path falls back to /', () => {
  assert.equal(setCookieValue({ name: 'a', ttlSeconds: 0, path: '/chat', secure: true, sameSite: 'Lax' }, 'v'), 'a=v; Path=/chat; HttpOnly; SameSite=Lax; Secure');
  assert.equal(setCookieValue({ name: 'a', ttlSeconds: 5, path: '/x\r\nSet-Cookie: evil=1', secure: false, sameSite: 'Lax' }, 'v'), 'a=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=5');
  assert.equal(setCookieValue({ name: 'a', ttlSeconds: 5, path: '/x; Domain=evil', secure: false, sameSite: 'Lax' }, 'v'), 'a=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=5');
  // SameSite=None without Secure is rejected by browsers (RFC 6265bis §5.6.7; Chrome since M80), so None forces it.
  assert.equal(setCookieValue({ name: 'a', ttlSeconds: 5, path: '/', secure: false, sameSite: 'None' }, 'v'), 'a=v; Path=/; HttpOnly; SameSite=None; Max-Age=5; Secure');
  assert.equal(setCookieValue({ name: 'a', ttlSeconds: 5, path: '/', secure: false, sameSite: 'Strict' }, 'v'), 'a=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=5');
  assert.equal(readCookie('a=1; b="2"; c=3', 'b'), '2');
  assert.equal(readCookie(['a=1', 'b=2'], 'b'), '2');
  assert.equal(readCookie('ab=1', 'a'), undefined);
  assert.equal(CookieSigner.fromClassName('wsgate').idFor(ep(1)), CookieSigner.fromClassName('wsgate').idFor(ep(1)));
  assert.notEqual(CookieSigner.fromClassName('wsgate').idFor(ep(1)), CookieSigner.fromClassName('other').idFor(ep(1)));
});

test('keys per type: Header, QueryParam, ClientIP, JwtClaim; none when absent', () => {
  const b = [backend([ep(1)])];
  const k = (spec: Record<string, unknown>, o: Parameters<typeof req>[0] = {}, claims?: Record<string, unknown>) =>
    sessionKey({ route: route(spec, b), req: req(o), clientIp: '198.51.100.7', secure: false, ...(claims ? { claims } : {}) });
  assert.equal(k({ sessionAffinity: { type: 'Header', header: { name: 'X-User' } } }, { headers: { 'x-user': 'alice' } }), 'h:alice');
  assert.equal(k({ sessionAffinity: { type: 'Header', header: { name: 'X-User' } } }), undefined);
  assert.equal(k({ sessionAffinity: { type: 'QueryParam', queryParam: { name: 'sid' } } }, { url: '/ws?a=1&sid=abc%20d' }), 'q:abc d');
  assert.equal(k({ sessionAffinity: { type: 'QueryParam', queryParam: { name: 'sid' } } }, { url: '/ws' }), undefined);
  assert.equal(k({ sessionAffinity: { type: 'ClientIP' } }), 'ip:198.51.100.7');
  assert.equal(k({ sessionAffinity: { type: 'JwtClaim', jwtClaim: { name: 'sub' } } }, {}, { sub: 'user-1' }), 'j:user-1');
  assert.equal(k({ sessionAffinity: { type: 'JwtClaim', jwtClaim: { name: 'tenant' } } }, {}, { tenant: { id: 4 } }), 'j:{"id":4}');
  assert.equal(k({ sessionAffinity: { type: 'JwtClaim', jwtClaim: { name: 'sub' } } }), undefined, 'no verified token: the policy decides');
  assert.equal(k({ loadBalancer: { policy: 'ConsistentHash' } }), 'ip:198.51.100.7');
  assert.equal(usesAffinity(route({}, b)), false);
  assert.equal(usesAffinity(route({ loadBalancer: { policy: 'ConsistentHash' } }, b)), true);
});

test('a key maps to the same endpoint on independent replicas, and a missing key leaves it to the policy', () => {
  const eps = [ep(1), ep(2), ep(3), ep(4)];
  const spec = { sessionAffinity: { type: 'Header', header: { name: 'x-user' } }, loadBalancer: { policy: 'LeastConnections', boundedLoadFactor: 1.25 } };
  const r = route(spec, [backend(eps), backend([ep(5), ep(6)], 'svc:default/b:8080', 2)]);
  const s1 = new BalancerState();
  const s2 = new BalancerState();
  const a1 = new Affinity({ signer: new CookieSigner('x'), balancer: s1 });
  const a2 = new Affinity({ signer: new CookieSigner('y'), balancer: s2 });
  for (let i = 0; i < 300; i++) {
    const rq = req({ headers: { 'x-user': `u${i % 40}` } });
    const p1 = pickWith(r, a1, rq, s1).pick;
    const p2 = pickWith(r, a2, rq, s2).pick;
    assert.equal(p1.endpoint.key, p2.endpoint.key);
    s1.acquire(p1.endpoint.key);
    s2.acquire(p2.endpoint.key);
  }
  // Without the header: least connections among the candidates (the emptiest endpoint of the chosen backend).
  const c = a1.choose({ route: r, req: req(), clientIp: '1.2.3.4', secure: false });
  assert.equal(c.hashPick(eps, r.rules[0].backends[0]), undefined);
});

test('hash affinity is strict unless boundedLoadFactor is set: load never moves a key, the factor lets it spill', () => {
  const eps = [ep(1), ep(2), ep(3)];
  const strict = route({ sessionAffinity: { type: 'Header', header: { name: 'x-user' } } }, [backend(eps)]);
  const bounded = route({ sessionAffinity: { type: 'Header', header: { name: 'x-user' } }, loadBalancer: { policy: 'LeastConnections', boundedLoadFactor: 1.25 } }, [backend(eps)]);
  const state = new BalancerState();
  const a = new Affinity({ signer: new CookieSigner('x'), balancer: state });
  const rq = req({ headers: { 'x-user': 'hot' } });
  const home = pickWith(strict, a, rq, state).pick.endpoint.key;
  // One hot key holds 50 connections: strict keeps it home every time.
  for (let i = 0; i < 50; i++) {
    assert.equal(pickWith(strict, a, rq, state).pick.endpoint.key, home);
    state.acquire(home);
  }
  // With bounded load the same key now spills to its next endpoint.
  assert.notEqual(pickWith(bounded, a, rq, state).pick.endpoint.key, home);
});

test('trusted proxies: X-Forwarded-For is believed only from a trusted peer, nearest untrusted hop wins', () => {
  const t = new TrustedProxies(['10.0.0.0/8', '::1']);
  assert.deepEqual(t.resolve(req({ peer: '203.0.113.5', headers: { 'x-forwarded-for': '1.1.1.1' } })), { clientIp: '203.0.113.5', trustForwarded: false });
  assert.deepEqual(t.resolve(req({ peer: '::ffff:10.2.3.4', headers: { 'x-forwarded-for': '198.51.100.1, 10.9.9.9' } })), { clientIp: '198.51.100.1', trustForwarded: true });
  assert.deepEqual(t.resolve(req({ peer: '::1', headers: { 'x-forwarded-for': 'spoofed, 192.0.2.1' } })), { clientIp: '192.0.2.1', trustForwarded: true });
  // The upgrade path's rule exactly: a malformed hop ends the chain at the nearest trusted hop before it.
  assert.deepEqual(t.resolve(req({ peer: '10.0.0.2', headers: { 'x-forwarded-for': '6.6.6.6, garbage, 10.2.2.2' } })), { clientIp: '10.2.2.2', trustForwarded: true });
  assert.deepEqual(new TrustedProxies([]).resolve(req({ peer: '10.0.0.1', headers: { 'x-forwarded-for': '1.1.1.1' } })), { clientIp: '10.0.0.1', trustForwarded: false });
});

test('admission hook: the 101 carries exactly one Set-Cookie naming the endpoint that finally answered', () => {
  const state = new BalancerState();
  const hooks = affinityHooks({ secret: 'k', className: 'wsgate', log, balancer: state, clock: systemClock() });
  const eps = [ep(1), ep(2)];
  const r = route(cookieSpec, [backend(eps)]);
  const ctx = {
    req: req(),
    socket: { remoteAddress: '192.0.2.10' } as unknown as Socket,
    match: { route: r, rule: r.rules[0] },
    clientIp: '192.0.2.10',
    secure: false,
    forward: { drop: new Set<string>(), extra: [] },
    responseHeaders: ['X-Other', '1'],
    pick: {},
  } as unknown as HandshakeContext;
  assert.equal(hooks.admission[0](ctx), undefined);
  const first = pickEndpoint(r.rules[0], 'LeastConnections', state, { ...ctx.pick });
  assert.ok(!(first instanceof WsgateError));
  // The first endpoint failed to connect; the proxy retries without it.
  const second = pickEndpoint(r.rules[0], 'LeastConnections', state, { ...ctx.pick, exclude: new Set([first.endpoint.key]) });
  assert.ok(!(second instanceof WsgateError));
  assert.notEqual(first.endpoint.key, second.endpoint.key);
  const cookies = ctx.responseHeaders.filter((_, i) => i % 2 === 0 && ctx.responseHeaders[i] === 'Set-Cookie').length;
  assert.equal(cookies, 1);
  assert.equal(ctx.responseHeaders[0], 'X-Other');
  assert.ok(ctx.responseHeaders.includes(setCookieValue({ name: 'wsgate-affinity', ttlSeconds: 3600, path: '/', secure: false, sameSite: 'Lax' }, new CookieSigner('k').idFor(second.endpoint))));
  hooks.close();

  // A route without affinity is left alone.
  const plain = route({}, [backend(eps)]);
  const ctx2 = { ...ctx, match: { route: plain, rule: plain.rules[0] }, pick: {} } as unknown as HandshakeContext;
  hooks.admission[0](ctx2);
  assert.deepEqual(ctx2.pick, {});
});
