// Snapshots for health unit tests, from the real builder and static routes (no proxy, no sockets).
import { createBuilder } from '../../src/build/build.ts';
import type { RouteObject } from '../../src/build/input.ts';
import { SnapshotHolder } from '../../src/snapshot/holder.ts';

const builder = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' });

export function route(name: string, spec: Record<string, unknown>): RouteObject {
  return {
    apiVersion: 'wsgate.io/v1alpha1',
    kind: 'WebSocketRoute',
    metadata: { name, namespace: 'default', generation: 1, creationTimestamp: new Date(0).toISOString() },
    spec,
  };
}

/** A holder with the routes published; publish() swaps in new ones. */
export function holderWith(routes: readonly RouteObject[]): { holder: SnapshotHolder; publish(rs: readonly RouteObject[]): void } {
  const holder = new SnapshotHolder();
  const publish = (rs: readonly RouteObject[]) => {
    const r = builder({ routes: rs, services: [], endpointSlices: [], secrets: [] });
    for (const s of r.statuses) {
      const acc = s.conditions.find((c) => c.type === 'Accepted');
      if (acc?.status !== 'True') throw new Error(`test route ${s.key} not accepted: ${acc?.message}`);
    }
    holder.publish(r.content);
  };
  publish(routes);
  return { holder, publish };
}
