// The Kubernetes source's public surface. Wiring (main.ts):
//   const client = new KubeClient({ kubeconfig: { kind: 'in-cluster' } });
//   const source = new KubernetesSource({ client, watchNamespaces, log, onRestart: (r) => metrics.informerRestartsTotal.inc({ resource: r }) });
//   const writer = new StatusWriter({ client, log, clock, observed: (k) => source.observedStatus(k) });
//   const elector = new LeaderElector({ client, namespace, name: electionId, identity, log,
//     onStartedLeading: () => writer.setLeading(true), onStoppedLeading: () => writer.setLeading(false) });
//   controller: after each build, writer.update(statuses). Shutdown: elector.stop() (releases), writer.stop(), source.stop().
export { KubeClient, KubeApiError, type KubeConfigInput, type WatchedResource } from '../../kube/kube-client.ts';
export { KubernetesSource, type KubernetesSourceOptions, type ObservedRouteStatus } from './source.ts';
export { defaultInformerTimings, type InformerState, type InformerTimings, type RestartReason } from './informer.ts';
export { defaultBackoffPolicy, type BackoffPolicy } from './backoff.ts';
export { LeaderElector, type LeaderElectorOptions } from '../../status/leader-elector.ts';
export { StatusWriter, type StatusWriterOptions } from '../../status/status-writer.ts';
export { requiredPermissions, type PermissionRule } from './permissions.ts';
