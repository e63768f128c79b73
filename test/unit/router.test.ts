// Route matching on a built snapshot: host precedence, segment-aware prefixes, headers, ports and case.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBuilder } from '../../src/dag/build.ts';
import type { RouteObject } from '../../src/dag/input.ts';
import { matchRoute, normalizeHost, pathMatches } from '../../src/proxy/router.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';

const route = (name: string, age: number, spec: unknown): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: { name, namespace: 'default', creationTimestamp: new Date(age * 1000).toISOString() },
  spec,
});
const ep = (p: number) => [{ endpoints: [`127.0.0.1:${p}`] }];

const holder = new SnapshotHolder();
holder.publish(
  createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({
    routes: [
      route('any', 1, { rules: [{ backendRefs: ep(1) }] }),
      route('wild', 2, { hostnames: ['*.example.com'], rules: [{ matches: [{ path: { value: '/ws' } }], backendRefs: ep(2) }] }),
      route('exact', 3, {
        hostnames: ['chat.example.com'],
        rules: [
          { matches: [{ path: { value: '/ws' } }], backendRefs: ep(3) },
          { matches: [{ path: { value: '/ws' }, headers: [{ name: 'X-Api-Version', value: '2' }] }], backendRefs: ep(4) },
          { matches: [{ path: { type: 'Exact', value: '/ws/exact' } }], backendRefs: ep(5) },
        ],
      }),
      route('younger-same-prefix', 4, { hostnames: ['chat.example.com'], rules: [{ matches: [{ path: { value: '/other' } }], backendRefs: ep(6) }] }),
    ],
    services: [],
    endpointSlices: [],
    secrets: [],
  }).content,
);
const snap = holder.current()!;

function target(host: string, path: string, headers: Record<string, string> = {}): string | undefined {
  const m = matchRoute(snap, host, path, (n) => headers[n]);
  return m && `${m.route.name}#${m.rule.index}`;
}

test('exact host beats wildcard beats any', () => {
  assert.equal(target('chat.example.com', '/ws'), 'exact#0');
  assert.equal(target('Chat.Example.COM:8080', '/ws/room'), 'exact#0');
  assert.equal(target('chat.example.com.', '/ws'), 'exact#0');
  assert.equal(target('other.example.com', '/ws'), 'wild#0');
  assert.equal(target('deep.other.example.com', '/ws/x'), 'wild#0');
  assert.equal(target('example.com', '/ws'), 'any#0');
  assert.equal(target('chat.example.com', '/elsewhere'), 'any#0', 'no exact-host match falls through to any-host routes');
});

test('prefix is segment-aware and headers make a match more specific', () => {
  assert.equal(target('other.example.com', '/wsx'), 'any#0');
  assert.equal(target('chat.example.com', '/ws', { 'x-api-version': '2' }), 'exact#1');
  assert.equal(target('chat.example.com', '/ws', { 'x-api-version': '3' }), 'exact#0');
  assert.equal(target('chat.example.com', '/ws/exact'), 'exact#2');
  assert.equal(target('chat.example.com', '/ws/exact/more'), 'exact#0');
  assert.equal(target('chat.example.com', '/other/1'), 'younger-same-prefix#0');
});

test('pathMatches and normalizeHost', () => {
  const p = (path: string) => ({ pathType: 'PathPrefix' as const, path });
  assert.equal(pathMatches(p('/ws'), '/ws'), true);
  assert.equal(pathMatches(p('/ws'), '/ws/'), true);
  assert.equal(pathMatches(p('/ws'), '/wsx'), false);
  assert.equal(pathMatches(p('/'), '/anything'), true);
  assert.equal(normalizeHost('[::1]:8080'), '[::1]');
  assert.equal(normalizeHost('A.B:1'), 'a.b');
});
