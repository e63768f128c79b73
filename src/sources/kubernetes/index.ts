// The Kubernetes source's public surface. Wiring (main.ts):
//   const client = new KubeClient({ kubeconfig: { kind: 'in-cluster' } });
//   const source = new KubernetesSource({ client, watchNamespaces, log, onRestart: (r) => metrics.informerRestartsTotal.inc({ resource: r }) });
//   const writer = new StatusWriter({ client, log, clock, observed: (k) => source.observedStatus(k) });
//   const elector = new LeaderElector({ client, namespace, name: electionId, identity, log,
//     onStartedLeading: () => writer.setLeading(true), onStoppedLeading: () => writer.setLeading(false) });
//   controller: after each build, writer.update(statuses). Shutdown: elector.stop() (releases), writer.stop(), source.stop().
// With routingApis ({ gatewayApi, ingress, publishService }) the source also watches the Gateway API and Ingress;
// their statuses come from each build (Controller onRoutingApiStatuses), and what the server has now from
// source.observedRoutingStatus(kind, key).
export { KubeClient, KubeApiError, type KubeConfigInput, type WatchedResource } from '../../kube/kube-client.ts';
export { RequestPacer } from '../../kube/request-pacer.ts';
export { KubernetesSource, type KubernetesSourceOptions, type ObservedObjectStatus, type ObservedRouteStatus, type RoutingApisOptions, type StatusKind } from './source.ts';
export { defaultInformerTimings, type InformerState, type InformerTimings, type RestartReason } from './informer.ts';
export { defaultBackoffPolicy, type BackoffPolicy } from './backoff.ts';
export { LeaderElector, type LeaderElectorOptions } from '../../status/leader-elector.ts';
export { StatusWriter, type StatusWriterOptions } from '../../status/status-writer.ts';
export { RoutingApiStatusWriter, type RoutingApiStatusWriterOptions } from '../../status/routing-api-status-writer.ts';
export { requiredPermissions, type PermissionRule } from './permissions.ts';
