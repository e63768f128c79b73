// Every Kubernetes API call wsgate makes, as RBAC rules: the adapter may call nothing that is not listed here,
// and the chart and manifests/ grant exactly this (a test compares them).

export interface PermissionRule {
  readonly apiGroup: string;
  readonly resource: string;
  readonly verbs: readonly string[];
  /**
   * 'cluster': the watched objects, in a ClusterRole (all namespaces) or, with --watch-namespaces, in a Role in
   * each watched namespace; 'namespace': a Role in the release namespace only.
   */
  readonly scope: 'cluster' | 'namespace';
  readonly why: string;
}

export const requiredPermissions: readonly PermissionRule[] = [
  { apiGroup: 'wsgate.io', resource: 'websocketroutes', verbs: ['list', 'watch'], scope: 'cluster', why: 'the routes to serve' },
  { apiGroup: 'wsgate.io', resource: 'websocketroutes/status', verbs: ['patch'], scope: 'cluster', why: 'server-side apply of route conditions (leader only)' },
  { apiGroup: '', resource: 'services', verbs: ['list', 'watch'], scope: 'cluster', why: 'resolve backendRefs and port names' },
  { apiGroup: 'discovery.k8s.io', resource: 'endpointslices', verbs: ['list', 'watch'], scope: 'cluster', why: 'pod addresses and ready/serving/terminating state' },
  { apiGroup: '', resource: 'secrets', verbs: ['list', 'watch'], scope: 'cluster', why: 'TLS certificates, upstream CA bundles, JWT keys and API keys referenced by routes' },
  { apiGroup: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], scope: 'namespace', why: 'leader election for status writing' },
];
