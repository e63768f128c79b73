// The in-repo fake API server in a process of its own, for benches that must not share wsgate's event loop
// (bench/scale-k8s-churn.ts). Seeded with `routes` WebSocketRoutes, each with its own Service and one
// EndpointSlice of `per` endpoints; route 0's slice is the live echo backend. Driven over IPC: it answers
// `status` with how many route status PATCHes it has served, applies `update` (a new address in the last slot of
// slice i), and `relist` (the same change made while the watches are silent, then the history compacted and the
// watches ended: every informer relists). It exits when the parent goes away.
import { FakeApiServer, type KObject } from '../test/support/fake-apiserver/index.ts';

export type ToFake = { readonly t: 'status' } | { readonly t: 'update' | 'relist'; readonly i: number; readonly version: number };
export type FromFake = { readonly t: 'ready'; readonly kubeconfig: string } | { readonly t: 'status'; readonly patches: number };

const ns = 'bench';

function slice(i: number, per: number, echoPort: number, version: number): KObject {
  const eps =
    i === 0
      ? [{ addresses: ['127.0.0.1'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: 'live' } }]
      : Array.from({ length: per }, (_, j) => ({
          addresses: [j === per - 1 && version > 0 ? `10.200.${(version >> 8) & 255}.${version & 255}` : `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`],
          conditions: { ready: true, serving: true, terminating: false },
          targetRef: { kind: 'Pod', name: `svc-${i}-pod-${j}-${j === per - 1 ? version : 0}` },
        }));
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: ns, name: `svc-${i}-abcde`, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    addressType: 'IPv4',
    ports: [{ name: 'ws', port: i === 0 ? echoPort : 8080, protocol: 'TCP' }],
    endpoints: eps,
  };
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('fake-apiserver-child.ts is started by a bench (needs an IPC channel)');
  const send = process.send.bind(process);
  const [routes, per, echoPort] = process.argv.slice(2).map(Number) as [number, number, number];
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 10_000, historyLimit: 1_000_000 });
  for (let i = 0; i < routes; i++) {
    fake.create({ apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name: `svc-${i}` }, spec: { ports: [{ name: 'ws', port: 80, targetPort: 8080 }] } });
    fake.create(slice(i, per, echoPort, 0));
    fake.create({
      apiVersion: 'wsgate.io/v1alpha1',
      kind: 'WebSocketRoute',
      metadata: { namespace: ns, name: `route-${i}` },
      spec: { hostnames: [`r${i}.bench.example`], rules: [{ backendRefs: [{ name: `svc-${i}`, port: 80 }] }] },
    });
  }
  process.on('message', (m: ToFake) => {
    if (m.t === 'status') send({ t: 'status', patches: fake.requests.filter((r) => r.verb === 'patch' && r.resource === 'websocketroutes/status').length } satisfies FromFake);
    else if (m.t === 'update') fake.update(slice(m.i, per, echoPort, m.version));
    else {
      // What a watch cut during an etcd compaction looks like: the change is missed by the (silent) watches, the
      // history is gone, and every informer's next watch gets 410 and relists all its objects.
      fake.faults.stallWatches();
      fake.update(slice(m.i, per, echoPort, m.version));
      fake.faults.compact();
      fake.faults.endWatches();
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready', kubeconfig: fake.kubeconfig() } satisfies FromFake);
}

await main();
