// Status bodies for Gateway API objects: wsgate's entries replace its own only, other controllers' entries and
// foreign Gateway conditions stay (the upstream CRDs make status.parents and status.ancestors atomic lists, so
// every writer sends the whole list: https://gateway-api.sigs.k8s.io/reference/spec/#routestatus), and a
// condition keeps its lastTransitionTime while its status is unchanged (metav1.Condition semantics).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayStatusBody, httpRouteStatusBody, policyStatusBody } from '../../src/status/gateway-api-status.ts';
import { apiCondition } from '../../src/dag/gateway/types.ts';

const me = 'wsgate.io/gateway-controller';
const gw = (name: string, sectionName?: string) => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'infra', name, ...(sectionName ? { sectionName } : {}) });

test('HTTPRoute parents: foreign entries kept, ours replaced, unchanged conditions keep their time', () => {
  const existing = {
    parents: [
      { parentRef: gw('theirs'), controllerName: 'example.com/other', conditions: [{ type: 'Accepted', status: 'True', lastTransitionTime: 't0' }] },
      { parentRef: gw('gw', 'http'), controllerName: me, conditions: [{ type: 'Accepted', status: 'True', lastTransitionTime: 't1' }, { type: 'ResolvedRefs', status: 'True', lastTransitionTime: 't1' }] },
      { parentRef: gw('gone'), controllerName: me, conditions: [] },
    ],
  };
  const body = httpRouteStatusBody(existing, [
    { parentRef: gw('gw', 'http'), controllerName: me, conditions: [apiCondition('Accepted', true, 'Accepted', 'ok', 2), apiCondition('ResolvedRefs', false, 'BackendNotFound', 'x', 2)] },
  ], [me], 't2');
  assert.deepEqual(body, {
    parents: [
      existing.parents[0],
      {
        parentRef: gw('gw', 'http'),
        controllerName: me,
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'ok', observedGeneration: 2, lastTransitionTime: 't1' },
          { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'x', observedGeneration: 2, lastTransitionTime: 't2' },
        ],
      },
    ],
  });
});

test('policy ancestors merge the same way', () => {
  const foreign = { ancestorRef: gw('theirs'), controllerName: 'example.com/other', conditions: [] };
  const body = policyStatusBody({ ancestors: [foreign] }, [{ ancestorRef: gw('gw'), controllerName: me, conditions: [apiCondition('Accepted', true, 'Accepted', 'policy accepted', 1)] }], [me], 't3');
  assert.deepEqual(body.ancestors.map((a) => [a.ancestorRef.name, a.controllerName, (a.conditions ?? []).map((c) => (c as { lastTransitionTime: string }).lastTransitionTime)]), [
    ['theirs', 'example.com/other', []],
    ['gw', me, ['t3']],
  ]);
});

test('policy ancestors of both wsgate controllers (Gateway API and Ingress) are wsgate\'s: replaced, not kept as foreign', () => {
  const ing = 'wsgate.io/ingress-controller';
  const ingRef = { group: 'networking.k8s.io', kind: 'Ingress', namespace: 'infra', name: 'chat' };
  const existing = {
    ancestors: [
      { ancestorRef: ingRef, controllerName: ing, conditions: [{ type: 'Accepted', status: 'True', lastTransitionTime: 't0' }] },
      { ancestorRef: gw('old'), controllerName: me, conditions: [] },
    ],
  };
  const body = policyStatusBody(existing, [{ ancestorRef: ingRef, controllerName: ing, conditions: [apiCondition('Accepted', true, 'Accepted', 'policy accepted', 1)] }], [me, ing], 't5');
  assert.deepEqual(body, { ancestors: [{ ancestorRef: ingRef, controllerName: ing, conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'policy accepted', observedGeneration: 1, lastTransitionTime: 't0' }] }] });
});

test('Gateway: foreign condition types kept, ours stamped, listeners keep their times', () => {
  const body = gatewayStatusBody(
    {
      conditions: [{ type: 'example.com/Audited', status: 'True', lastTransitionTime: 't0' }, { type: 'Accepted', status: 'True', lastTransitionTime: 't1' }],
      listeners: [{ name: 'http', conditions: [{ type: 'Programmed', status: 'False', lastTransitionTime: 't1' }] }],
    },
    {
      namespace: 'infra',
      name: 'gw',
      addresses: [{ type: 'IPAddress', value: '192.0.2.1' }],
      conditions: [apiCondition('Accepted', true, 'Accepted', 'gateway accepted', 3), apiCondition('Programmed', true, 'Programmed', 'gateway programmed', 3)],
      listeners: [{ name: 'http', supportedKinds: [], attachedRoutes: 2, conditions: [apiCondition('Programmed', true, 'Programmed', 'listener programmed', 3)] }],
    },
    't4',
  );
  assert.deepEqual(body.conditions.map((c) => [c.type, c.lastTransitionTime]), [['example.com/Audited', 't0'], ['Accepted', 't1'], ['Programmed', 't4']]);
  assert.deepEqual(body.listeners.map((l) => [l.name, l.attachedRoutes, l.conditions.map((c) => c.lastTransitionTime)]), [['http', 2, ['t4']]]);
  assert.deepEqual(body.addresses, [{ type: 'IPAddress', value: '192.0.2.1' }]);
});
