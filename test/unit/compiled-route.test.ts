// The compiled route model from YAML fixtures (test/fixtures/compile/*): every policy of every route compared
// whole with a golden expected.yaml; WSGATE_UPDATE_GOLDEN=1 rewrites them (review the diff!). And the model
// crosses to --workers processes: node:cluster with serialization 'advanced' sends messages with the HTML
// structured clone algorithm (https://nodejs.org/api/child_process.html#advanced-serialization), which is
// v8.serialize, so the whole snapshot must survive v8.serialize/deserialize unchanged, and a policy must work
// on the copy.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPrivateKey } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import * as yaml from 'js-yaml';
import { SignJWT } from 'jose';
import { createBuilder } from '../../src/dag/build.ts';
import type { Route, SnapshotContent } from '../../src/model/snapshot.ts';
import { ClientIpFilter } from '../../src/policy/client-ip.ts';
import { JwtPolicy } from '../../src/policy/jwt.ts';
import { loadBuildCase } from '../support/build-fixtures.ts';
import { buildView } from '../support/snapshot-view.ts';

const dir = join(import.meta.dirname, '../fixtures/compile');
const update = process.env.WSGATE_UPDATE_GOLDEN === '1';

/** A route's policies as plain data; undefined ("off") shown as null so that it is visible in the golden. */
function policiesView(route: Route): unknown {
  const { rules: _r, namespace: _n, name: _m, generation: _g, ...policies } = route;
  return JSON.parse(JSON.stringify(policies, (_k, v: unknown) => (v === undefined ? null : v)));
}

function build(name: string): { content: SnapshotContent; view: unknown } {
  const { options, input } = loadBuildCase(join(dir, name));
  const result = createBuilder(options)(input);
  const view = {
    routes: [...result.content.routes.values()].map(policiesView),
    statuses: (buildView(result) as { statuses: unknown }).statuses,
  };
  return { content: result.content, view };
}

for (const name of readdirSync(dir).sort()) {
  test(`compile fixture: ${name}`, () => {
    const { view } = build(name);
    const goldenPath = join(dir, name, 'expected.yaml');
    if (update) writeFileSync(goldenPath, yaml.dump(view, { lineWidth: 200, noRefs: true }));
    assert.deepEqual(view, yaml.load(readFileSync(goldenPath, 'utf8')));
  });

  test(`compile fixture: ${name}: the snapshot survives the structured clone to a worker`, () => {
    const { content } = build(name);
    assert.deepEqual(deserialize(serialize(content)), content);
  });
}

test('policies work on a structured-cloned route: JWT keys and CIDR sets are made from the copied material', async () => {
  const { content } = build('policies');
  const copy = deserialize(serialize(content)) as SnapshotContent;
  const jwtRoute = copy.routes.get('a/jwt-hmac')!;
  const auth = jwtRoute.auth.jwt!;
  const secret = new TextEncoder().encode('an HMAC secret of at least 32 bytes, for tests');
  const now = new Date('2030-01-01T00:00:00Z');
  const token = await new SignJWT({ sub: 'alice', role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://issuer.example.com')
    .setAudience('chat')
    .sign(secret);
  const p = new JwtPolicy({ now: () => now });
  const edits = { drop: new Set<string>(), extra: [] as string[] };
  assert.equal(await p.check(auth, { url: `/ws?access_token=${token}`, headers: {} }, edits), undefined);
  assert.deepEqual(edits.extra, ['X-User', 'alice']);

  const f = new ClientIpFilter();
  const ips = copy.routes.get('a/everything')!.clientIps;
  assert.deepEqual(['10.1.2.3', '10.9.0.1', '2001:db8::1', '192.0.2.1'].map((ip) => f.check(ips, ip)?.reason ?? 'admitted'), [
    'admitted',
    'client_ip_not_allowed',
    'admitted',
    'client_ip_not_allowed',
  ]);
});

test('every static key form verifies, on the frozen snapshot and on its structured clone', async () => {
  const { content } = build('policies');
  const copy = deserialize(serialize(content)) as SnapshotContent;
  // The private half of the fixture's EC key (ec.pub, the certificate ca.pem and jwks.json are its public half).
  const signing = createPrivateKey(readFileSync(join(dir, 'policies', 'jwt-signing.key')));
  const token = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('1h').sign(signing);
  const p = new JwtPolicy();
  const results: string[] = [];
  for (const snapshot of [content, copy])
    for (const key of ['a/jwt-cert', 'a/jwt-pem', 'a/jwt-jwks'] as const) {
      const err = await p.check(snapshot.routes.get(key)!.auth.jwt!, { url: '/', headers: { authorization: `Bearer ${token}` } }, { drop: new Set(), extra: [] });
      results.push(`${key} ${err?.reason ?? 'admitted'}`);
    }
  assert.deepEqual(results, [...Array(2)].flatMap(() => ['a/jwt-cert admitted', 'a/jwt-pem admitted', 'a/jwt-jwks admitted']));
});
