// Every command-line flag, its environment variable and default: the one table that --help, the parser and
// the README's reference are made from.

export interface FlagSpec {
  readonly name: string;
  readonly type: 'string' | 'boolean' | 'number';
  readonly default: string | boolean | number;
  readonly help: string;
}

export const flags = [
  { name: 'config', type: 'string', default: '', help: 'Standalone mode: a YAML file, or a folder of them, with WebSocketRoute documents (watched for changes).' },
  { name: 'kubernetes', type: 'boolean', default: false, help: 'Kubernetes mode: watch WebSocketRoutes, Services, EndpointSlices and Secrets (in-cluster config, or --kubeconfig / KUBECONFIG).' },
  { name: 'kubeconfig', type: 'string', default: '', help: 'Path to a kubeconfig file (Kubernetes mode; default: KUBECONFIG, then in-cluster).' },
  { name: 'listen', type: 'string', default: '0.0.0.0:8080', help: 'HOST:PORT for client traffic (ws:// and HTTP fallback).' },
  { name: 'tls-listen', type: 'string', default: '', help: 'HOST:PORT for TLS client traffic (wss://); empty: off.' },
  { name: 'default-cert-file', type: 'string', default: '', help: 'PEM certificate served when no route certificate matches the SNI name.' },
  { name: 'default-key-file', type: 'string', default: '', help: 'PEM private key of --default-cert-file.' },
  { name: 'admin-listen', type: 'string', default: '0.0.0.0:9090', help: 'HOST:PORT for /metrics, /healthz, /readyz and /debug/snapshot (debug only to loopback peers, see --debug-endpoints).' },
  { name: 'debug-endpoints', type: 'boolean', default: false, help: 'Serve /debug/* (backend addresses, route names) on the admin port to any peer, not only loopback ones (kubectl port-forward); a warning is logged when the admin port is not on loopback.' },
  { name: 'log-level', type: 'string', default: 'info', help: 'fatal, error, warn, info, debug, trace or silent.' },
  { name: 'class', type: 'string', default: 'wsgate', help: 'The spec.className this installation serves (routes without className are served too).' },
  { name: 'watch-namespaces', type: 'string', default: '', help: 'Kubernetes mode: comma-separated namespaces to watch, each with its own list/watch (namespaced RBAC is enough); empty: all namespaces (needs cluster-wide RBAC).' },
  { name: 'watch-namespace', type: 'string', default: '', help: 'Kubernetes mode: one namespace to watch; the same as --watch-namespaces with one name.' },
  { name: 'watch-gateway-api', type: 'boolean', default: true, help: 'Kubernetes mode: serve the Gateway API (GatewayClass, Gateway, HTTPRoute, ReferenceGrant; gateway.networking.k8s.io/v1). When its CRDs are not installed it is off, with one log line.' },
  { name: 'watch-ingress', type: 'boolean', default: true, help: 'Kubernetes mode: serve Ingresses (networking.k8s.io/v1) of an IngressClass with controller wsgate.io/ingress-controller.' },
  { name: 'publish-service', type: 'string', default: '', help: 'Kubernetes mode: NAMESPACE/NAME of the Service wsgate runs behind; its load-balancer addresses become Gateway status.addresses and Ingress status.loadBalancer. Empty: none published.' },
  { name: 'allow-static-endpoints', type: 'boolean', default: false, help: 'Kubernetes mode: accept backendRefs[].endpoints (always allowed in standalone mode).' },
  { name: 'leader-election', type: 'boolean', default: true, help: 'Kubernetes mode: elect one replica to write route status (all replicas serve traffic).' },
  { name: 'lease-name', type: 'string', default: 'wsgate-leader', help: 'Name of the coordination.k8s.io Lease used for leader election.' },
  { name: 'lease-namespace', type: 'string', default: '', help: 'Namespace of the Lease (default: POD_NAMESPACE, then "default").' },
  { name: 'pod-name', type: 'string', default: '', help: 'Leader election identity (default: POD_NAME, then the host name).' },
  { name: 'lease-duration-seconds', type: 'number', default: 15, help: 'Leader election: a Lease not renewed for this long may be taken over by another replica.' },
  { name: 'lease-renew-deadline-seconds', type: 'number', default: 10, help: 'Leader election: a leader that could not renew for this long stops writing status (less than --lease-duration-seconds).' },
  { name: 'lease-retry-period-seconds', type: 'number', default: 2, help: 'Leader election: interval between acquire and renew attempts (less than --lease-renew-deadline-seconds).' },
  { name: 'informer-watchdog-seconds', type: 'number', default: 330, help: 'Kubernetes mode: restart a watch that delivered nothing (event, bookmark, reconnect) for this long; below 330 the server-side watch timeout is shortened to fit.' },
  { name: 'shutdown-delay-seconds', type: 'number', default: 5, help: 'On SIGTERM: keep accepting new upgrades this long (endpoint propagation) while /readyz fails.' },
  { name: 'drain-seconds', type: 'number', default: 30, help: 'On SIGTERM: pace close 1012 to open connections over this window, then exit.' },
  { name: 'workers', type: 'string', default: '1', help: 'Processes sharing the listening port: a number, or "auto" for one per core.' },
  { name: 'affinity-secret', type: 'string', default: '', help: 'Key that signs session-affinity cookies. Give every replica the same value (from one Secret), or a cookie set by one replica is not honoured by another; empty: derived from --class, with a warning.' },
  { name: 'trusted-proxies', type: 'string', default: '', help: 'Comma-separated CIDRs whose X-Forwarded-For is believed for the client address.' },
  { name: 'handshake-timeout-seconds', type: 'number', default: 10, help: 'A client must send its whole handshake within this time (408 otherwise).' },
  { name: 'max-header-bytes', type: 'number', default: 16384, help: 'Largest request header block accepted (431 otherwise).' },
  { name: 'max-handshakes-in-flight', type: 'number', default: 10000, help: 'Upgrades being forwarded at once before new ones get 503.' },
  { name: 'max-connections', type: 'number', default: 0, help: 'Client connections open at once before new ones get 503 overloaded; 0: derived from the open-file limit (RLIMIT_NOFILE less a reserve of 256, halved: each relayed connection holds two descriptors).' },
  { name: 'kube-api-qps', type: 'number', default: 20, help: "Status writes and Events the leader sends the API server per second, on average (client-side, as client-go's QPS; kube-controller-manager's default). Lists, watches and the leader Lease are not counted." },
  { name: 'kube-api-burst', type: 'number', default: 30, help: 'Status writes and Events that may go at once above --kube-api-qps after a quiet spell (client-go\'s Burst).' },
  { name: 'build-holdoff-ms', type: 'number', default: 100, help: 'Coalesce configuration changes for this long before rebuilding the routing table.' },
  { name: 'build-max-holdoff-ms', type: 'number', default: 1000, help: 'Rebuild at least this often while changes keep coming.' },
  { name: 'otlp-endpoint', type: 'string', default: '', help: 'Export traces over OTLP/HTTP to this collector base URL (spans go to URL/v1/traces); empty: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT, else tracing is off. See docs/tracing.md.' },
  { name: 'trace-sample-ratio', type: 'number', default: 1, help: 'Share of handshakes without a sampled client traceparent that are traced, 0 to 1 (parent-based: a client traceparent decides for its own); unset: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, else 1.' },
  { name: 'redis-url', type: 'string', default: '', help: 'redis://HOST:PORT or rediss://HOST:PORT (TLS): connection limits, connection rates and revocation become cluster-wide, shared by every replica through this Redis (one primary; not Redis Cluster). Empty: every limit is per process.' },
  { name: 'redis-username', type: 'string', default: '', help: 'Redis ACL user (overrides one in --redis-url).' },
  { name: 'redis-password', type: 'string', default: '', help: 'Redis ACL password (overrides one in --redis-url); give it through WSGATE_REDIS_PASSWORD from a Secret.' },
  { name: 'redis-tls-ca-file', type: 'string', default: '', help: 'PEM CA bundle that signs the Redis server certificate (rediss://); empty: the system roots.' },
  { name: 'redis-timeout-ms', type: 'number', default: 200, help: 'Longest wait for Redis on a handshake; past it, or while Redis is unreachable, --redis-failure-mode applies.' },
  { name: 'redis-failure-mode', type: 'string', default: 'Open', help: 'When Redis is unreachable or slow: Open checks the limits against this replica alone; Closed refuses handshakes that need a cluster-wide limit with 503 limits_unavailable.' },
  { name: 'redis-lease-ttl-seconds', type: 'number', default: 30, help: 'Connection counts are leases renewed every third of this; a replica that dies without cleanup frees its slots within it.' },
  { name: 'redis-key-prefix', type: 'string', default: 'wsgate:', help: 'Prefix of every Redis key and channel (several installations may share one Redis).' },
  { name: 'build-thread', type: 'boolean', default: true, help: 'Build the routing table (and read the route file) in a worker thread, so a full build never holds up open connections; false: build on the main thread.' },
] as const satisfies readonly FlagSpec[];

/** The options of `wsgate revoke` (with the redis-* flags above). */
export const revokeFlags = [
  { name: 'principal', type: 'string', default: '', help: 'The principal whose connections close with 1008 and whose handshakes are refused: a JWT claim value, or apikey:ID.' },
  { name: 'route', type: 'string', default: '', help: 'Only this route, as namespace/name; empty: every route.' },
  { name: 'reason', type: 'string', default: 'access revoked', help: 'Close reason and refusal message (at most 123 bytes reach the close frame).' },
  { name: 'ttl-seconds', type: 'number', default: 3600, help: 'How long handshakes stay refused.' },
  { name: 'clear', type: 'boolean', default: false, help: 'End an earlier revocation of the principal (and route) instead.' },
] as const satisfies readonly FlagSpec[];

export function envName(flag: string): string {
  return 'WSGATE_' + flag.toUpperCase().replaceAll('-', '_');
}
