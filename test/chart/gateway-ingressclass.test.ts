// The chart's IngressClass: none by default; ingressClass.create renders one for wsgate's Ingress controller,
// and ingressClass.default marks it the cluster default with the annotation Kubernetes reads
// (https://kubernetes.io/docs/concepts/services-networking/ingress/#default-ingress-class).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { render } from '../support/helm.ts';

const classes = async (values?: Record<string, unknown>) => (await render(values ? { values } : {})).filter((o) => o.kind === 'IngressClass');

test('no IngressClass by default; create and default render it whole', async () => {
  assert.deepEqual(await classes(), []);
  const [plain] = await classes({ ingressClass: { create: true, name: 'websockets', default: false } });
  assert.deepEqual(
    { apiVersion: plain?.apiVersion, name: plain?.metadata.name, annotations: plain?.metadata.annotations, spec: plain?.['spec'] },
    { apiVersion: 'networking.k8s.io/v1', name: 'websockets', annotations: undefined, spec: { controller: 'wsgate.io/ingress-controller' } },
  );
  const [def] = await classes({ ingressClass: { create: true, name: 'wsgate', default: true } });
  assert.deepEqual(def?.metadata.annotations, { 'ingressclass.kubernetes.io/is-default-class': 'true' });
});
