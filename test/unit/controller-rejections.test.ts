// A refused route is logged once, when it is refused or its reason changes, not again with every table built
// after it; the published line counts the refused routes of the current table.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import type { BuildInput, EndpointSliceLite, RouteObject, ServiceLite } from '../../src/dag/input.ts';
import { startController } from '../support/controller-harness.ts';

const ns = 'apps';
const route = (name: string, generation: number, backendRef: Record<string, unknown>): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: { namespace: ns, name, generation, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { hostnames: [`${name}.example`], rules: [{ backendRefs: [backendRef] }] },
});
const service: ServiceLite = { metadata: { namespace: ns, name: 'chat' }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 8080, protocol: 'TCP' }] } };
const slice = (addrs: readonly string[]): EndpointSliceLite => ({
  metadata: { namespace: ns, name: 'chat-x', labels: { 'kubernetes.io/service-name': 'chat' } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port: 8080, protocol: 'TCP' }],
  endpoints: addrs.map((a) => ({ addresses: [a], conditions: { ready: true }, targetRef: { name: `pod-${a}` } })),
});

test('controller: a refused route is warned about once per reason; the published line counts refusals', () => {
  const lines: { msg: string; route?: string; reason?: string; rejected?: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as (typeof lines)[number]);
      done();
    },
  });
  const seen = () => lines.splice(0).filter((l) => l.msg === 'route not accepted' || l.msg === 'routing table published').map((l) => (l.msg === 'route not accepted' ? `refused ${l.route} ${l.reason}` : `published rejected=${l.rejected}`));
  const chat = route('chat', 1, { name: 'chat', port: 80 });
  // Kubernetes mode without --allow-static-endpoints: a route naming addresses itself is refused.
  const pinned = route('pinned', 1, { endpoints: ['10.0.0.9:8080'] });
  const base: BuildInput = { routes: [chat, pinned], services: [service], endpointSlices: [slice(['10.0.0.1'])], secrets: [] };
  const { source, controller } = startController(base, pino({ level: 'info' }, sink));
  try {
    assert.deepEqual(seen(), ['refused apps/pinned StaticEndpointsNotAllowed', 'published rejected=1']);
    // Tables built after it, for changes elsewhere, say nothing more of it.
    const moved = slice(['10.0.0.2']);
    source.emit({ ...base, endpointSlices: [moved] }, { kind: 'endpointslices', key: `${ns}/chat-x`, before: base.endpointSlices[0], after: moved });
    const moved2 = slice(['10.0.0.3']);
    source.emit({ ...base, endpointSlices: [moved2] }, { kind: 'endpointslices', key: `${ns}/chat-x`, before: moved, after: moved2 });
    assert.deepEqual(seen(), ['published rejected=1', 'published rejected=1']);
    // Refused for another reason: said again (the table itself is the same, so none is published).
    const invalid = route('pinned', 2, { name: 'chat', port: 80, weight: -1 });
    const withInvalid = { ...base, routes: [chat, invalid], endpointSlices: [moved2] };
    source.emit(withInvalid, { kind: 'websocketroutes', key: `${ns}/pinned`, before: pinned, after: invalid });
    assert.deepEqual(seen(), ['refused apps/pinned InvalidSpec']);
    // Fixed: no longer counted.
    const fixed = route('pinned', 3, { name: 'chat', port: 80 });
    source.emit({ ...withInvalid, routes: [chat, fixed] }, { kind: 'websocketroutes', key: `${ns}/pinned`, before: invalid, after: fixed });
    assert.deepEqual(seen(), ['published rejected=0']);
  } finally {
    controller.stop();
  }
});
