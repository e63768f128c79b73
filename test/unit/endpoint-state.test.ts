// EndpointSlice conditions → the published endpoint state, for every combination of set and unset conditions.
// The API's rules (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions and the
// EndpointConditions field docs in k8s.io/api discovery/v1 types.go): unset ready means ready; unset serving
// defers to ready; unset terminating means not terminating; ready is false on a terminating endpoint unless the
// Service sets publishNotReadyAddresses. A deleted Pod is terminating from the moment it is deleted
// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination), so terminating starts
// the drain whatever ready says; not ready without terminating is a readiness flap and keeps its connections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointState, staticBackend } from '../../src/dag/backends.ts';

const values = [true, false, undefined] as const;
const show = (v: boolean | undefined) => (v === undefined ? '-' : v ? 'T' : 'F');

test('every combination of ready/serving/terminating maps to one state (undefined: not published)', () => {
  const got: string[] = [];
  for (const ready of values) for (const serving of values) for (const terminating of values) {
    const c = { ...(ready === undefined ? {} : { ready }), ...(serving === undefined ? {} : { serving }), ...(terminating === undefined ? {} : { terminating }) };
    got.push(`ready=${show(ready)} serving=${show(serving)} terminating=${show(terminating)} -> ${endpointState(c) ?? 'Gone'}`);
  }
  assert.deepEqual(got, [
    // publishNotReadyAddresses: ready stays true while terminating; the pod is still being deleted.
    'ready=T serving=T terminating=T -> Draining',
    'ready=T serving=T terminating=F -> Active',
    'ready=T serving=T terminating=- -> Active',
    'ready=T serving=F terminating=T -> Gone',
    'ready=T serving=F terminating=F -> Active',
    'ready=T serving=F terminating=- -> Active',
    'ready=T serving=- terminating=T -> Draining',
    'ready=T serving=- terminating=F -> Active',
    'ready=T serving=- terminating=- -> Active',
    // The rollout: deleted and still passing readiness (serving), then failing it or removed.
    'ready=F serving=T terminating=T -> Draining',
    'ready=F serving=T terminating=F -> NotReady',
    'ready=F serving=T terminating=- -> NotReady',
    'ready=F serving=F terminating=T -> Gone',
    // The readiness flap: no new connections, open ones stay.
    'ready=F serving=F terminating=F -> NotReady',
    'ready=F serving=F terminating=- -> NotReady',
    'ready=F serving=- terminating=T -> Gone',
    'ready=F serving=- terminating=F -> NotReady',
    'ready=F serving=- terminating=- -> NotReady',
    'ready=- serving=T terminating=T -> Draining',
    'ready=- serving=T terminating=F -> Active',
    'ready=- serving=T terminating=- -> Active',
    'ready=- serving=F terminating=T -> Gone',
    'ready=- serving=F terminating=F -> Active',
    'ready=- serving=F terminating=- -> Active',
    'ready=- serving=- terminating=T -> Draining',
    'ready=- serving=- terminating=F -> Active',
    'ready=- serving=- terminating=- -> Active',
  ]);
  assert.equal(endpointState(undefined), 'Active', 'no conditions at all: ready');
});

test('static endpoints: drainingEndpoints are Draining (terminating) under the same key as when they were listed', () => {
  const before = staticBackend('static:default/chat/0/0', 1, ['127.0.0.1:8001', '127.0.0.1:8002']);
  const after = staticBackend('static:default/chat/0/0', 1, ['127.0.0.1:8001'], ['127.0.0.1:8002']);
  assert.deepEqual(before.endpoints.map((e) => `${e.key} ${e.state}`), ['static|127.0.0.1:8001 Active', 'static|127.0.0.1:8002 Active']);
  assert.deepEqual(after.endpoints.map((e) => `${e.key} ${e.state}`), ['static|127.0.0.1:8001 Active', 'static|127.0.0.1:8002 Draining']);
});
