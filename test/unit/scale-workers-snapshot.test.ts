// `--workers`: the primary sends each published snapshot to its workers over cluster IPC with 'advanced'
// serialization, which is the structured clone of v8.serialize
// (https://nodejs.org/api/child_process.html#advanced-serialization). A class's private fields do not survive it,
// so the primary sends the endpoints (an EndpointTable) as a plain Map (forWorkers in src/workers/primary.ts),
// and the routes (a ChunkedMap, whose fields are own) arrive as a plain object that the worker makes a map again.
// The worker's snapshot must read exactly as the primary's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { createBuilder } from '../../src/dag/build.ts';
import { endpointTableOf, routeTableOf } from '../../src/dag/incremental.ts';
import type { RouteObject } from '../../src/dag/input.ts';
import { ChunkedMap } from '../../src/model/chunked-map.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import type { SnapshotContent } from '../../src/model/snapshot.ts';
import { fromPrimary } from '../../src/workers/worker.ts';

const route = (i: number): RouteObject => ({
  apiVersion: 'wsgate.io/v1alpha1',
  kind: 'WebSocketRoute',
  metadata: { namespace: 'default', name: `r${String(i).padStart(3, '0')}`, generation: 1 },
  spec: { hostnames: [`r${i}.example`], rules: [{ backendRefs: [{ endpoints: [`127.0.0.${1 + (i % 200)}:${1000 + i}`, `127.0.1.1:${1000 + i}`] }] }] },
});

test('workers: the snapshot a worker takes from the primary reads as the primary\'s (routes and endpoints)', () => {
  const built = createBuilder({ className: 'wsgate', allowStaticEndpoints: true, mode: 'standalone' })({ routes: [...Array(300).keys()].map(route), services: [], endpointSlices: [], secrets: [] });
  // As the build thread's result is on the primary: routes a ChunkedMap (several chunks), endpoints an EndpointTable.
  const content: SnapshotContent = Object.freeze({ ...built.content, routes: routeTableOf(built), endpoints: endpointTableOf(built) });
  const primary = new SnapshotHolder().publish(content);
  assert.ok(primary.routes instanceof ChunkedMap && primary.routes.chunks.length > 1);
  // What forWorkers sends, through the clone the IPC channel makes.
  const { generation: _g, ...sent } = primary;
  const arrived = deserialize(serialize({ ...sent, endpoints: new Map(sent.endpoints) })) as SnapshotContent;
  const worker = new SnapshotHolder().publish(fromPrimary(arrived));
  assert.ok(worker.routes instanceof ChunkedMap);
  assert.deepEqual([...worker.routes.keys()], [...primary.routes.keys()]);
  assert.deepEqual(JSON.stringify([...worker.routes.values()]), JSON.stringify([...primary.routes.values()]));
  assert.equal(worker.routes.get('default/r123')?.name, 'r123');
  assert.equal(worker.routes.size, 300);
  assert.deepEqual([...worker.endpoints], [...primary.endpoints]);
  assert.ok(worker.endpoints.has('static|127.0.1.1:1042'));
  assert.equal(worker.hash, primary.hash);
  assert.ok(Object.isFrozen(worker) && Object.isFrozen(worker.routes));
});
