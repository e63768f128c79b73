// Time from an EndpointSlice change to the build result in hand, behind an HTTPRoute (through one Gateway) and
// behind a WebSocketRoute, at 1,000 of each and 2,000 Services of 10 endpoints (a benchmark, not a test).
// Measured through the build-thread engine the controller uses (ThreadBuilder): the change is noted, sent to
// the thread, built there (in full or incrementally) and the result taken over piece by piece on this loop.
// Each change takes one endpoint of one Service out of ready (or back), so the route's status changes too.
// At the end the engine's result is checked against createRoutingBuilder's full build of the same objects.
// Run alone: node --import tsx bench/routing-scale.ts [--routes N] [--changes N]
// Stops by itself: after the changes, or after 5 minutes whatever happens.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ThreadBuilder } from '../src/controller/thread-builder.ts';
import type { GatewayClassLite, GatewayLite, HTTPRouteLite } from '../src/dag/gateway/types.ts';
import type { BuildOptions, EndpointSliceLite, RouteObject, ServiceLite } from '../src/dag/input.ts';
import { createRoutingBuilder, type RoutingBuildResult } from '../src/dag/routing-apis.ts';
import { RoutingMapSource } from '../test/support/routing-map-source.ts';
import { median, percentile } from './report.ts';

const { values: args } = parseArgs({ options: { routes: { type: 'string', default: '1000' }, changes: { type: 'string', default: '20' } } });
const routes = Number(args.routes);
const changes = Number(args.changes);
const endpointsPerService = 10;
const ns = 'apps';
const options: BuildOptions = { className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' };

const giveUp = setTimeout(() => {
  console.error('routing-scale: gave up after 5 minutes');
  process.exit(2);
}, 300_000);
giveUp.unref();

const meta = (name: string) => ({ namespace: ns, name, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z' });
const wsRoute = (i: number): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: meta(`ws${i}`),
  spec: { hostnames: [`ws${i}.example`], rules: [{ backendRefs: [{ name: `ws${i}`, port: 80 }] }] },
});
const httpRoute = (i: number): HTTPRouteLite => ({
  metadata: meta(`hr${i}`),
  spec: { parentRefs: [{ name: 'edge' }], hostnames: [`hr${i}.example`], rules: [{ backendRefs: [{ name: `hr${i}`, port: 80 }] }] },
});
const service = (name: string): ServiceLite => ({ metadata: { namespace: ns, name }, spec: { ports: [{ name: 'ws', port: 80, appProtocol: 'kubernetes.io/ws' }] } });
const slice = (name: string, svcIndex: number, notReady: number | undefined): EndpointSliceLite => ({
  metadata: { namespace: ns, name: `${name}-x`, labels: { 'kubernetes.io/service-name': name } },
  addressType: 'IPv4',
  ports: [{ name: 'ws', port: 8080 }],
  endpoints: Array.from({ length: endpointsPerService }, (_, e) => ({
    addresses: [`10.${name.startsWith('hr') ? 1 : 2}.${Math.floor(svcIndex / 25)}.${(svcIndex % 25) * 10 + e + 1}`],
    conditions: { ready: e !== notReady },
  })),
});
const gatewayClass: GatewayClassLite = { metadata: { name: 'wsgate', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } };
const gateway: GatewayLite = { metadata: meta('edge'), spec: { gatewayClassName: 'wsgate', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } };


const source = new RoutingMapSource({ gatewayApi: true, ingress: false });
source.set('gatewayclasses', '/wsgate', gatewayClass);
source.set('gateways', `${ns}/edge`, gateway);
for (let i = 0; i < routes; i++) {
  source.set('websocketroutes', `${ns}/ws${i}`, wsRoute(i));
  source.set('httproutes', `${ns}/hr${i}`, httpRoute(i));
  for (const name of [`ws${i}`, `hr${i}`]) {
    source.set('services', `${ns}/${name}`, service(name));
    source.set('endpointslices', `${ns}/${name}-x`, slice(name, i, undefined));
  }
}

const thread = new ThreadBuilder(options);
let last: RoutingBuildResult;
try {
  let t0 = performance.now();
  last = await thread.build(source);
  const firstMs = performance.now() - t0;
  assert.equal(last.content.routes.size, 2 * routes, 'every route is served');
  assert.equal(last.routingApis?.httpRoutes.length, routes);
  console.log(`first build (all objects sent, full build): ${firstMs.toFixed(0)} ms; ${last.content.routes.size} routes, ${last.content.endpoints.size} endpoints`);

  // Each change takes endpoint `step % 10` of one Service out of ready, the next one of that Service puts
  // another out; Services are visited in a stride so that no two changes in a row touch the same one.
  let step = 0;
  const change = async (prefix: 'hr' | 'ws'): Promise<number> => {
    const i = (step * 37) % routes;
    const name = `${prefix}${i}`;
    const note = source.set('endpointslices', `${ns}/${name}-x`, slice(name, i, step % endpointsPerService));
    step++;
    t0 = performance.now();
    thread.note(note);
    last = await thread.build(source);
    return performance.now() - t0;
  };
  const timed = async (prefix: 'hr' | 'ws') => {
    await change(prefix); // warm: the first of a kind after a different kind is not the figure asked for
    const ms: number[] = [];
    for (let k = 0; k < changes; k++) ms.push(await change(prefix));
    return ms;
  };
  const behindHttp = await timed('hr');
  const behindWs = await timed('ws');
  const row = (label: string, ms: number[]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return `| ${label} | ${ms.length} | ${median(ms).toFixed(1)} | ${percentile(sorted, 90).toFixed(1)} | ${sorted[0]!.toFixed(1)} – ${sorted.at(-1)!.toFixed(1)} |`;
  };
  console.log(`\n${routes} HTTPRoutes + ${routes} WebSocketRoutes, ${2 * routes} Services x ${endpointsPerService} endpoints; slice change -> result in hand (ThreadBuilder), ms`);
  console.log('| change behind | changes | median | p90 | range |');
  console.log('| --- | --- | --- | --- | --- |');
  console.log(row('HTTPRoute', behindHttp));
  console.log(row('WebSocketRoute', behindWs));

  // The engine's last result against a full build of the same objects: what was timed was the right answer.
  const full = createRoutingBuilder(options)(source.current());
  assert.equal(last.content.hash, full.content.hash);
  assert.deepEqual([...last.content.endpoints.keys()], [...full.content.endpoints.keys()]);
  assert.deepEqual(last.statuses, full.statuses);
  assert.deepEqual(last.routingApis, full.routingApis);
  console.log('\nlast result equals a full build (hash, endpoint keys, statuses, routing-API statuses)');
} finally {
  await thread.close();
}
