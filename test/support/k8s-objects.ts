// Kubernetes objects the rollout tests apply to the fake API server: a Service's one-pod EndpointSlice on
// loopback, with the conditions that make its endpoint Active, Draining or Gone.
export type EndpointConditions = { ready: boolean; serving: boolean; terminating: boolean };

export const activeConditions: EndpointConditions = { ready: true, serving: true, terminating: false };

export function podSlice(service: string, pod: { name: string; port: number }, conditions: EndpointConditions): Record<string, unknown> {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-${pod.name}`, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'ws', port: pod.port, protocol: 'TCP' }],
    endpoints: [{ addresses: ['127.0.0.1'], conditions, targetRef: { kind: 'Pod', name: `${service}-${pod.name}` } }],
  };
}
