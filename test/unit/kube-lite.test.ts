// Trimming of the routing-API objects (src/sources/kubernetes/lite.ts): what the server adds on every write
// (resourceVersion, managedFields, status) is dropped, so a status write by the leader signals no rebuild; the
// spec is kept whole, so a field wsgate does not support still reaches the translator and is refused. The
// published Service is trimmed to the addresses its load balancer got (Service status.loadBalancer.ingress,
// https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceStatus).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RawObject } from '../../src/kube/kube-client.ts';
import { gatewayClassLite, httpRouteLite, ingressLite, namespaceLite, publishedServiceLite, serviceLite } from '../../src/sources/kubernetes/lite.ts';

const meta = { name: 'chat', namespace: 'apps', uid: 'u1', generation: 3, resourceVersion: '41', creationTimestamp: '2026-01-01T00:00:00Z', managedFields: [{ manager: 'kubectl' }], labels: { team: 'a' } };

test('an HTTPRoute: metadata the translator reads, the spec whole (unsupported fields too), no status', () => {
  const spec = { parentRefs: [{ name: 'edge' }], rules: [{ filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/' } } }] }] };
  const raw: RawObject = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: meta, spec, status: { parents: [] } };
  assert.deepEqual(httpRouteLite(raw), {
    metadata: { name: 'chat', namespace: 'apps', uid: 'u1', generation: 3, creationTimestamp: '2026-01-01T00:00:00Z', labels: { team: 'a' } },
    spec,
  });
  const statusWrite: RawObject = { ...raw, metadata: { ...meta, resourceVersion: '42' }, status: { parents: [{ controllerName: 'wsgate.io/gateway-controller' }] } };
  assert.deepEqual(httpRouteLite(statusWrite), httpRouteLite(raw), 'a status write trims to the same object');
});

test('cluster-scoped kinds carry no namespace; a Namespace is its name and labels', () => {
  const gc = gatewayClassLite({ metadata: { name: 'wsgate', namespace: '', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } });
  assert.deepEqual(gc, { metadata: { name: 'wsgate', generation: 1 }, spec: { controllerName: 'wsgate.io/gateway-controller' } });
  assert.deepEqual(namespaceLite({ metadata: { name: 'apps', uid: 'x', labels: { env: 'prod' } }, status: { phase: 'Active' } }), { metadata: { name: 'apps', labels: { env: 'prod' } } });
});

test('an Ingress keeps its annotations (ingress-nginx mapping); a Service port keeps its appProtocol', () => {
  const ing = ingressLite({ metadata: { ...meta, annotations: { 'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600' } }, spec: { ingressClassName: 'wsgate' }, status: { loadBalancer: {} } });
  assert.deepEqual(ing.metadata.annotations, { 'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600' });
  assert.deepEqual(ing.spec, { ingressClassName: 'wsgate' });
  const svc = serviceLite({ metadata: meta, spec: { ports: [{ name: 'ws', port: 80, targetPort: 8080, protocol: 'TCP', appProtocol: 'kubernetes.io/wss' }] } });
  assert.deepEqual(svc.spec.ports, [{ name: 'ws', port: 80, targetPort: 8080, protocol: 'TCP', appProtocol: 'kubernetes.io/wss' }]);
});

test('the published Service: its load balancer\'s IPs and host names, else its external IPs', () => {
  const lb = publishedServiceLite({
    metadata: { name: 'wsgate', namespace: 'wsgate' },
    spec: { type: 'LoadBalancer', externalIPs: ['198.51.100.1'] },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }, { hostname: 'lb.example.com' }] } },
  });
  assert.deepEqual(lb, { metadata: { namespace: 'wsgate', name: 'wsgate' }, addresses: [{ type: 'IPAddress', value: '192.0.2.10' }, { type: 'Hostname', value: 'lb.example.com' }] });
  const ext = publishedServiceLite({ metadata: { name: 'wsgate', namespace: 'wsgate' }, spec: { externalIPs: ['198.51.100.1'] }, status: { loadBalancer: {} } });
  assert.deepEqual(ext.addresses, [{ type: 'IPAddress', value: '198.51.100.1' }]);
  assert.deepEqual(publishedServiceLite({ metadata: { name: 'wsgate', namespace: 'wsgate' }, spec: {} }).addresses, []);
});
