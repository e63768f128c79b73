// Every Kubernetes API call wsgate makes, as RBAC rules: the adapter may call nothing that is not listed here,
// and the chart and manifests/ grant exactly this (a test compares them).

export interface PermissionRule {
  readonly apiGroup: string;
  readonly resource: string;
  readonly verbs: readonly string[];
  /**
   * 'cluster': the watched objects, in a ClusterRole (all namespaces) or, with --watch-namespaces, in a Role in
   * each watched namespace; 'clusterResource': objects that are not namespaced (GatewayClass, IngressClass,
   * Namespace), which only a ClusterRole can grant, whatever is watched; 'namespace': a Role in the release
   * namespace only.
   */
  readonly scope: 'cluster' | 'clusterResource' | 'namespace';
  readonly why: string;
  /** Needed only while that routing API is watched (--watch-gateway-api, --watch-ingress; the chart's
   *  controller.gatewayApi.enabled, controller.ingress.enabled); absent: always. */
  readonly api?: 'gatewayApi' | 'ingress';
}

export const requiredPermissions: readonly PermissionRule[] = [
  { apiGroup: 'wsgate.io', resource: 'websocketroutes', verbs: ['list', 'watch'], scope: 'cluster', why: 'the routes to serve' },
  { apiGroup: 'wsgate.io', resource: 'websocketroutes/status', verbs: ['patch'], scope: 'cluster', why: 'server-side apply of route conditions (leader only)' },
  { apiGroup: '', resource: 'services', verbs: ['list', 'watch'], scope: 'cluster', why: 'resolve backendRefs and port names' },
  { apiGroup: 'discovery.k8s.io', resource: 'endpointslices', verbs: ['list', 'watch'], scope: 'cluster', why: 'pod addresses and ready/serving/terminating state' },
  { apiGroup: '', resource: 'secrets', verbs: ['list', 'watch'], scope: 'cluster', why: 'TLS certificates, upstream CA bundles, JWT keys and API keys referenced by routes' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'gateways', verbs: ['list', 'watch'], scope: 'cluster', why: 'the Gateways of wsgate\'s GatewayClasses and their listeners', api: 'gatewayApi' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'httproutes', verbs: ['list', 'watch'], scope: 'cluster', why: 'the HTTPRoutes attached to those Gateways', api: 'gatewayApi' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'referencegrants', verbs: ['list', 'watch'], scope: 'cluster', why: 'cross-namespace backendRefs and certificateRefs', api: 'gatewayApi' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'gateways/status', verbs: ['patch'], scope: 'cluster', why: 'Gateway conditions, addresses and listener statuses (leader only)', api: 'gatewayApi' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'httproutes/status', verbs: ['patch'], scope: 'cluster', why: 'HTTPRoute parent statuses (leader only)', api: 'gatewayApi' },
  { apiGroup: 'wsgate.io', resource: 'websocketpolicies', verbs: ['list', 'watch'], scope: 'cluster', why: 'WebSocket behaviour attached to Gateways, HTTPRoutes and Ingresses' },
  { apiGroup: 'wsgate.io', resource: 'websocketpolicies/status', verbs: ['patch'], scope: 'cluster', why: 'WebSocketPolicy ancestor statuses (leader only)' },
  { apiGroup: 'networking.k8s.io', resource: 'ingresses', verbs: ['list', 'watch'], scope: 'cluster', why: 'the Ingresses of the wsgate IngressClass', api: 'ingress' },
  { apiGroup: 'networking.k8s.io', resource: 'ingresses/status', verbs: ['patch'], scope: 'cluster', why: 'Ingress status.loadBalancer (leader only)', api: 'ingress' },
  { apiGroup: '', resource: 'events', verbs: ['create'], scope: 'cluster', why: 'Events on Ingresses for ignored annotations (leader only)' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'gatewayclasses', verbs: ['list', 'watch'], scope: 'clusterResource', why: 'the GatewayClasses of controller wsgate.io/gateway-controller', api: 'gatewayApi' },
  { apiGroup: 'gateway.networking.k8s.io', resource: 'gatewayclasses/status', verbs: ['patch'], scope: 'clusterResource', why: 'GatewayClass conditions (leader only)', api: 'gatewayApi' },
  { apiGroup: '', resource: 'namespaces', verbs: ['list', 'watch'], scope: 'clusterResource', why: 'namespace labels for Gateway allowedRoutes selectors', api: 'gatewayApi' },
  { apiGroup: 'networking.k8s.io', resource: 'ingressclasses', verbs: ['list', 'watch'], scope: 'clusterResource', why: 'which IngressClasses are wsgate\'s, and the default one', api: 'ingress' },
  { apiGroup: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], scope: 'namespace', why: 'leader election for status writing' },
];
