// The chart rendered by the real helm binary, with defaults and with every toggle; each object parsed and
// checked against the code it deploys: RBAC == requiredPermissions, the args parse with the real flag parser,
// probes hit the admin server's paths, the HPA metric is the gauge /metrics serves, the grace period covers
// the shutdown sequence, and never an HPA and a ScaledObject together.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { render, helm, templateArgs, chartDir, type K8sObject, type RenderOptions } from '../support/helm.ts';
import { requiredPermissions } from '../../src/sources/kubernetes/permissions.ts';
import { loadConfig } from '../../src/config/config.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { crdFile, policyCrdFile } from '../../scripts/gen-crd.ts';

const NS = 'wsgate';
const monitoringAPI = ['monitoring.coreos.com/v1'];

const variants = {
  defaults: {},
  hpa: { values: { autoscaling: { mode: 'hpa', minReplicas: 3, maxReplicas: 30, targetConnectionsPerPod: 2000 } } },
  keda: { values: { autoscaling: { mode: 'keda' } } },
  kedaAuth: { values: { autoscaling: { mode: 'keda', keda: { query: 'sum(x)', authenticationRef: { name: 'prom', kind: 'ClusterTriggerAuthentication' } } } } },
  none: { values: { autoscaling: { mode: 'none' }, replicaCount: 4 } },
  serviceMonitor: { values: { metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' } } } }, apiVersions: monitoringAPI },
  serviceMonitorNoAPI: { values: { metrics: { serviceMonitor: { enabled: true } } } },
  serviceMonitorForced: { values: { metrics: { serviceMonitor: { enabled: true }, skipCapabilityCheck: true } } },
  podMonitor: { values: { metrics: { podMonitor: { enabled: true } } }, apiVersions: monitoringAPI },
  podMonitorNoAPI: { values: { metrics: { podMonitor: { enabled: true } } } },
  metricsService: { values: { metrics: { service: { enabled: true }, scrapeAnnotations: true } } },
  dashboard: { values: { dashboard: { enabled: true, namespace: 'monitoring', annotations: { grafana_folder: 'wsgate' } } } },
  crdsOff: { values: { crds: { install: false } } },
  crdsNoKeep: { values: { crds: { keep: false } } },
  pdbOff: { values: { podDisruptionBudget: { enabled: false } } },
  pdbMinAvailable: { values: { podDisruptionBudget: { minAvailable: 2, maxUnavailable: null, unhealthyPodEvictionPolicy: 'AlwaysAllow' } } },
  etpLocal: { values: { service: { externalTrafficPolicy: 'Local', loadBalancerSourceRanges: ['10.0.0.0/8'] } } },
  clusterIP: { values: { service: { type: 'ClusterIP' } } },
  nodePort: { values: { service: { type: 'NodePort', nodePorts: { http: 30080 } } } },
  tls: { values: { tls: { enabled: true, defaultCertificate: { secretName: 'default-cert' } } } },
  watchNamespace: { values: { controller: { watchNamespace: 'apps' } } },
  namespaces: { values: { rbac: { scope: 'Namespaces', namespaces: ['apps', 'web'] } } },
  noLeaderElection: { values: { controller: { leaderElection: { enabled: false } } } },
  noRoutingApis: { values: { controller: { gatewayApi: { enabled: false }, ingress: { enabled: false } } } },
  namespacesNoRoutingApis: { values: { rbac: { scope: 'Namespaces', namespaces: ['apps'] }, controller: { gatewayApi: { enabled: false }, ingress: { enabled: false } } } },
  namespacesNoIngress: { values: { rbac: { scope: 'Namespaces', namespaces: ['apps'] }, controller: { ingress: { enabled: false } } } },
  noIngress: { values: { controller: { ingress: { enabled: false } } } },
  noPreStop: { values: { preStopSleepSeconds: 0 } },
  explicitGrace: { values: { terminationGracePeriodSeconds: 300, controller: { drainSeconds: 120 } } },
  flags: { values: { controller: { allowStaticEndpoints: true, trustedProxies: ['10.0.0.0/8', '192.168.0.0/16'], workers: 'auto', logLevel: 'debug', extraArgs: ['--max-header-bytes=32768'], extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=384' }] } } },
  affinitySecret: { values: { controller: { affinitySecret: { existingSecret: 'wsgate-affinity' } } } },
  tracing: { values: { tracing: { otlpEndpoint: 'http://otel-collector.observability:4318', sampleRatio: 0.05 } } },
  noRbac: { values: { rbac: { create: false }, serviceAccount: { create: false, name: 'existing' } } },
  customSpread: { values: { topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { a: 'b' } } }] } },
  digest: { values: { image: { digest: 'sha256:' + 'a'.repeat(64) } } },
  fullname: { values: { fullnameOverride: 'edge' }, releaseName: 'r1' },
  kube129NoPreStop: { values: { preStopSleepSeconds: 0 }, kubeVersion: '1.29.0' },
} satisfies Record<string, RenderOptions>;

type Variant = keyof typeof variants;
const rendered = new Map<Variant, K8sObject[]>();

before(async () => {
  await Promise.all(
    (Object.keys(variants) as Variant[]).map(async (name) => {
      rendered.set(name, await render({ namespace: NS, ...variants[name] }));
    }),
  );
});

const objs = (v: Variant) => rendered.get(v)!;
const all = (v: Variant, kind: string) => objs(v).filter((o) => o.kind === kind);
/** `name` may be "name|namespace" for objects that exist once per namespace. */
function one(v: Variant, kind: string, name?: string): K8sObject {
  const [n, ns] = name?.split('|') ?? [];
  const found = all(v, kind).filter((o) => (n === undefined || o.metadata.name === n) && (ns === undefined || o.metadata.namespace === ns));
  assert.equal(found.length, 1, `${v}: expected one ${kind}${name ? ' ' + name : ''}, got ${found.length}`);
  return found[0];
}
const none = (v: Variant, kind: string) => assert.equal(all(v, kind).length, 0, `${v}: no ${kind} expected`);
const container = (v: Variant) => {
  const d = one(v, 'Deployment');
  assert.equal(d.spec.template.spec.containers.length, 1, 'one container');
  return d.spec.template.spec.containers[0];
};
const podEnv = { POD_NAME: 'wsgate-abc', POD_NAMESPACE: NS };

describe('every rendering', () => {
  test('parses, and never has both an HPA and a ScaledObject', () => {
    for (const v of Object.keys(variants) as Variant[]) {
      const kinds = objs(v).map((o) => o.kind);
      assert.ok(!(kinds.includes('HorizontalPodAutoscaler') && kinds.includes('ScaledObject')), `${v}: HPA and ScaledObject`);
      for (const o of objs(v)) {
        assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${v}: malformed object`);
        const clusterScoped = ['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind);
        assert.equal(o.metadata.namespace === undefined, clusterScoped, `${v}: ${o.kind}/${o.metadata.name} namespace`);
      }
    }
  });

  test('the Deployment: probes on the admin port, security contexts, downward API, args the CLI accepts', () => {
    for (const v of Object.keys(variants) as Variant[]) {
      const c = container(v);
      const pod = one(v, 'Deployment').spec.template.spec;
      const admin = c.ports.find((p: { name: string }) => p.name === 'admin');
      const http = c.ports.find((p: { name: string }) => p.name === 'http');
      assert.equal(admin.containerPort, 9090, `${v}: admin port`);
      assert.equal(http.containerPort, 8080, `${v}: http port`);
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'admin' }, `${v}: liveness`);
      assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'admin' }, `${v}: readiness`);
      assert.deepEqual(c.startupProbe.httpGet, { path: '/healthz', port: 'admin' }, `${v}: startup`);

      assert.equal(pod.securityContext.runAsNonRoot, true, `${v}: pod runAsNonRoot`);
      assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
      assert.equal(c.securityContext.runAsNonRoot, true);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      assert.equal(c.securityContext.seccompProfile.type, 'RuntimeDefault');
      assert.ok(c.resources.requests.cpu && c.resources.requests.memory, `${v}: resource requests`);

      const env = Object.fromEntries(c.env.map((e: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
      assert.equal(env.POD_NAME, 'metadata.name', `${v}: POD_NAME`);
      assert.equal(env.POD_NAMESPACE, 'metadata.namespace', `${v}: POD_NAMESPACE`);

      assert.equal(c.command, undefined, `${v}: the image entrypoint (node /app/dist/cli.js) is used`);
      const config = loadConfig(c.args, podEnv);
      assert.equal(config.mode, 'kubernetes', `${v}: --kubernetes`);
      assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
      assert.deepEqual(config.adminListen, { host: '0.0.0.0', port: 9090 });
      assert.equal(config.leaseNamespace || NS, NS, `${v}: the Lease lives in the release namespace (where the Role is)`);
    }
  });

  test('grace period > preStop sleep + shutdown delay + drain window, as the process will read them', () => {
    for (const v of Object.keys(variants) as Variant[]) {
      const pod = one(v, 'Deployment').spec.template.spec;
      const c = container(v);
      const config = loadConfig(c.args, podEnv);
      const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
      const needed = preStop + config.shutdownDelayMs / 1000 + config.drainMs / 1000;
      assert.ok(pod.terminationGracePeriodSeconds > needed, `${v}: grace ${pod.terminationGracePeriodSeconds} <= ${needed}`);
      if (c.lifecycle) assert.deepEqual(Object.keys(c.lifecycle.preStop), ['sleep'], `${v}: no exec hook (the image has no shell)`);
    }
  });

  test('RBAC equals requiredPermissions (scope cluster → ClusterRole or a Role per watched namespace, namespace → Role in the release namespace)', () => {
    const key = (g: string, r: string, verbs: readonly string[]) => `${g}|${r}|${[...verbs].sort().join(',')}`;
    // Rules of a routing API are granted only while the process watches it (--watch-gateway-api, --watch-ingress).
    const expect = (scopes: readonly string[], on: { gatewayApi: boolean; ingress: boolean } = { gatewayApi: true, ingress: true }) =>
      requiredPermissions.filter((p) => scopes.includes(p.scope) && (p.api === undefined || on[p.api])).map((p) => key(p.apiGroup, p.resource, p.verbs)).sort();
    const rulesOf = (o: K8sObject) =>
      (o.rules as { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[])
        .flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => key(g, res, r.verbs))))
        .sort();
    for (const v of Object.keys(variants) as Variant[]) {
      if (v === 'noRbac') continue;
      const fullname = v === 'fullname' ? 'edge' : 'wsgate';
      const sa = one(v, 'Deployment').spec.template.spec.serviceAccountName;
      // What the process will watch decides where the read rules go: a Role in each of those namespaces, or a ClusterRole.
      const config = loadConfig(container(v).args, podEnv);
      const watched = config.watchNamespaces;
      const on = { gatewayApi: config.watchGatewayApi, ingress: config.watchIngress };
      const readRoles = watched.length > 0 ? all(v, 'Role').filter((r) => r.metadata.name === fullname) : [one(v, 'ClusterRole')];
      if (watched.length > 0) {
        assert.deepEqual(readRoles.map((r) => r.metadata.namespace).sort(), [...watched].sort(), `${v}: a Role in each watched namespace`);
        // Kinds that are not namespaced (GatewayClass, IngressClass, Namespace) only a ClusterRole can grant.
        const clusterResources = expect(['clusterResource'], on);
        const roles = all(v, 'ClusterRole');
        assert.deepEqual(roles.map((r) => r.metadata.name), clusterResources.length > 0 ? [`${fullname}-cluster-resources`] : []);
        for (const r of roles) assert.deepEqual(rulesOf(r), clusterResources, `${v}: the cluster-resource rules`);
        assert.deepEqual(all(v, 'ClusterRoleBinding').map((b) => [b.metadata.name, b.roleRef.name, b.subjects]), roles.map((r) => [r.metadata.name, r.metadata.name, [{ kind: 'ServiceAccount', name: sa, namespace: NS }]]));
      }
      for (const role of readRoles) {
        assert.deepEqual(rulesOf(role), expect(watched.length > 0 ? ['cluster'] : ['cluster', 'clusterResource'], on), `${v}: cluster-scope rules`);
        const binding: K8sObject = watched.length > 0
          ? one(v, 'RoleBinding', fullname + '|' + role.metadata.namespace)
          : one(v, 'ClusterRoleBinding');
        assert.equal(binding.metadata.namespace, role.metadata.namespace);
        assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: role.kind, name: role.metadata.name });
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: NS }]);
      }

      if (v === 'noLeaderElection') {
        assert.equal(all(v, 'Role').length, 0, 'no Lease Role without leader election');
        continue;
      }
      const leaseRole = one(v, 'Role', `${fullname}-leader-election`);
      assert.equal(leaseRole.metadata.namespace, NS, 'Lease permissions only in the release namespace');
      assert.deepEqual(rulesOf(leaseRole), expect(['namespace']), `${v}: namespace-scope rules`);
      const leaseBinding = one(v, 'RoleBinding', `${fullname}-leader-election`);
      assert.equal(leaseBinding.metadata.namespace, NS);
      assert.deepEqual(leaseBinding.roleRef.name, leaseRole.metadata.name);
      assert.deepEqual(leaseBinding.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: NS }]);
    }
    // Nothing broader than asked for, anywhere.
    for (const o of objs('defaults').filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const r of o.rules) {
        assert.ok(!r.verbs.includes('*') && !r.resources.includes('*') && !r.apiGroups.includes('*'), 'no wildcards');
      }
    }
  });
});

describe('rbac.scope', () => {
  test('Cluster (default): one ClusterRole, so the token can list and watch Secrets in every namespace', () => {
    const role = one('defaults', 'ClusterRole');
    assert.ok(role.rules.some((r: { resources: string[] }) => r.resources.includes('secrets')));
    assert.deepEqual(loadConfig(container('defaults').args, podEnv).watchNamespaces, []);
  });

  test('Namespaces: cluster-wide only the kinds that are not namespaced; Roles in the listed namespaces (plus the Lease Role), and wsgate watches just those', () => {
    const kinds = objs('namespaces').filter((o) => /Role/.test(o.kind)).map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'ClusterRole/undefined/wsgate-cluster-resources', 'ClusterRoleBinding/undefined/wsgate-cluster-resources',
      'Role/apps/wsgate', 'Role/web/wsgate', 'Role/wsgate/wsgate-leader-election',
      'RoleBinding/apps/wsgate', 'RoleBinding/web/wsgate', 'RoleBinding/wsgate/wsgate-leader-election',
    ]);
    const args = container('namespaces').args as string[];
    assert.ok(args.includes('--watch-namespaces=apps,web'), args.join(' '));
    const config = loadConfig(args, podEnv);
    assert.equal(config.leaseNamespace, NS, 'the Lease stays in the release namespace');
  });
});

describe('defaults', () => {
  test('the objects of a plain install', () => {
    const kinds = objs('defaults').map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'ClusterRole/wsgate',
      'ClusterRoleBinding/wsgate',
      'CustomResourceDefinition/websocketpolicies.wsgate.io',
      'CustomResourceDefinition/websocketroutes.wsgate.io',
      'Deployment/wsgate',
      'PodDisruptionBudget/wsgate',
      'Role/wsgate-leader-election',
      'RoleBinding/wsgate-leader-election',
      'Service/wsgate',
      'ServiceAccount/wsgate',
    ]);
  });

  test('Deployment: replicas, image, args, preStop sleep, rolling update, spread', () => {
    const d = one('defaults', 'Deployment');
    const podLabels = d.spec.template.metadata.labels;
    assert.equal(podLabels['helm.sh/chart'], undefined, 'no chart version in pod labels: a chart upgrade alone must not roll (and drain) pods');
    assert.equal(podLabels['app.kubernetes.io/version'], undefined);
    for (const [k, val] of Object.entries(d.spec.selector.matchLabels)) assert.equal(podLabels[k], val);
    assert.equal(d.spec.replicas, 2);
    const c = container('defaults');
    assert.match(c.image, /^ghcr\.io\/wsgate\/wsgate:\d+\.\d+\.\d+/);
    assert.deepEqual(c.args, [
      '--kubernetes', '--class=wsgate', '--watch-gateway-api', '--watch-ingress', '--publish-service=wsgate/wsgate', '--listen=0.0.0.0:8080', '--admin-listen=0.0.0.0:9090', '--log-level=info', '--kube-api-qps=20', '--kube-api-burst=30',
      '--shutdown-delay-seconds=5', '--drain-seconds=30', '--leader-election', '--lease-name=wsgate-leader', '--workers=1',
    ]);
    assert.deepEqual(c.lifecycle, { preStop: { sleep: { seconds: 5 } } });
    assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 5 + 5 + 30 + 10);
    assert.deepEqual(d.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
    const spread = d.spec.template.spec.topologySpreadConstraints;
    assert.deepEqual(spread.map((s: { topologyKey: string }) => s.topologyKey), ['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const s of spread) assert.deepEqual(s.labelSelector.matchLabels, d.spec.selector.matchLabels);
    assert.ok(d.spec.template.spec.volumes.some((v: { name: string; emptyDir?: unknown }) => v.name === 'tmp' && v.emptyDir), '/tmp is writable');
    const config = loadConfig(c.args, podEnv);
    assert.equal(config.className, 'wsgate');
    assert.equal(config.leaderElection, true);
    assert.equal(config.leaseName, 'wsgate-leader');
    assert.equal(config.allowStaticEndpoints, false);
    assert.deepEqual(config.watchNamespaces, []);
  });

  test('Service: LoadBalancer, http → the http container port, no admin port exposed', () => {
    const s = one('defaults', 'Service');
    assert.equal(s.spec.type, 'LoadBalancer');
    assert.equal(s.spec.externalTrafficPolicy, undefined);
    assert.deepEqual(s.spec.ports.map((p: { name: string; port: number; targetPort: string }) => [p.name, p.port, p.targetPort]), [['http', 80, 'http']]);
    assert.deepEqual(s.spec.selector, one('defaults', 'Deployment').spec.selector.matchLabels);
  });

  test('PDB: maxUnavailable 1 over the pods', () => {
    const p = one('defaults', 'PodDisruptionBudget');
    assert.equal(p.spec.maxUnavailable, 1);
    assert.equal(p.spec.minAvailable, undefined);
    assert.deepEqual(p.spec.selector.matchLabels, one('defaults', 'Deployment').spec.selector.matchLabels);
  });

  test('the CRDs (WebSocketRoute, WebSocketPolicy) are the ones in crds/, with the keep policy', () => {
    for (const [name, file] of [['websocketroutes.wsgate.io', crdFile], ['websocketpolicies.wsgate.io', policyCrdFile]] as const) {
      const crd = one('defaults', 'CustomResourceDefinition', name);
      assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
      const fromFile = load(readFileSync(file, 'utf8')) as K8sObject;
      const { labels, annotations: _annotations, ...meta } = crd.metadata;
      // Helm's labels added, the CRD's own kept.
      const own = Object.fromEntries(Object.entries(labels ?? {}).filter(([k]) => !k.startsWith('app.kubernetes.io/') && k !== 'helm.sh/chart'));
      assert.deepEqual({ ...crd, metadata: { ...meta, ...(Object.keys(own).length > 0 ? { labels: own } : {}) } }, fromFile);
    }
  });
});

describe('autoscaling', () => {
  test('hpa: autoscaling/v2 on the Pods metric wsgate_connections_active, slow scale-down, no replicas field', () => {
    const h = one('hpa', 'HorizontalPodAutoscaler');
    none('hpa', 'ScaledObject');
    assert.equal(h.apiVersion, 'autoscaling/v2');
    assert.deepEqual(h.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: one('hpa', 'Deployment').metadata.name });
    assert.equal(h.spec.minReplicas, 3);
    assert.equal(h.spec.maxReplicas, 30);
    assert.equal(h.spec.metrics.length, 1);
    const m = h.spec.metrics[0];
    assert.equal(m.type, 'Pods');
    assert.equal(m.pods.metric.name, 'wsgate_connections_active');
    assert.deepEqual(m.pods.target, { type: 'AverageValue', averageValue: '2000' });
    assert.equal(h.spec.behavior.scaleDown.stabilizationWindowSeconds, 600);
    assert.deepEqual(h.spec.behavior.scaleDown.policies, [{ type: 'Pods', value: 1, periodSeconds: 300 }]);
    assert.equal(one('hpa', 'Deployment').spec.replicas, undefined, 'the HPA owns replicas');
  });

  test('the HPA metric is a gauge that /metrics serves, under that exact name', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const served = await metrics.registry.getMetricsAsJSON();
    const name = one('hpa', 'HorizontalPodAutoscaler').spec.metrics[0].pods.metric.name;
    const found = served.find((m) => m.name === name);
    assert.ok(found, `${name} is not served`);
    assert.equal(String(found.type), 'gauge');
  });

  test('keda: a ScaledObject with a prometheus trigger (AverageValue), the same slow scale-down, no HPA', () => {
    const s = one('keda', 'ScaledObject');
    none('keda', 'HorizontalPodAutoscaler');
    assert.equal(s.apiVersion, 'keda.sh/v1alpha1');
    assert.equal(s.spec.scaleTargetRef.name, one('keda', 'Deployment').metadata.name);
    assert.equal(s.spec.minReplicaCount, 2);
    assert.equal(s.spec.maxReplicaCount, 10);
    assert.equal(s.spec.triggers.length, 1);
    const t = s.spec.triggers[0];
    assert.equal(t.type, 'prometheus');
    assert.equal(t.metricType, 'AverageValue');
    assert.equal(t.metadata.threshold, '5000');
    assert.equal(t.metadata.query, `sum(wsgate_connections_active{namespace="${NS}",pod=~"wsgate-.*"})`);
    assert.match(t.metadata.serverAddress, /^http/);
    assert.equal(t.authenticationRef, undefined);
    assert.equal(s.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds, 600);
    assert.equal(one('keda', 'Deployment').spec.replicas, undefined);
    const a = one('kedaAuth', 'ScaledObject').spec.triggers[0];
    assert.equal(a.metadata.query, 'sum(x)');
    assert.deepEqual(a.authenticationRef, { name: 'prom', kind: 'ClusterTriggerAuthentication' });
  });

  test('none: neither, fixed replicas', () => {
    none('none', 'HorizontalPodAutoscaler');
    none('none', 'ScaledObject');
    none('defaults', 'HorizontalPodAutoscaler');
    none('defaults', 'ScaledObject');
    assert.equal(one('none', 'Deployment').spec.replicas, 4);
  });
});

describe('monitoring', () => {
  test('ServiceMonitor only with the API (or forced), selecting the metrics Service on the admin port', () => {
    const sm = one('serviceMonitor', 'ServiceMonitor');
    const svc = one('serviceMonitor', 'Service', 'wsgate-metrics');
    assert.equal(sm.metadata.labels?.release, 'kps');
    for (const [k, val] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], val, `Service label ${k}`);
    assert.notEqual(one('serviceMonitor', 'Service', 'wsgate').metadata.labels?.['app.kubernetes.io/component'], 'metrics', 'the traffic Service is not scraped');
    assert.deepEqual(svc.spec.ports.map((p: { targetPort: string }) => p.targetPort), ['admin']);
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.equal(sm.spec.endpoints[0].port, 'admin');
    assert.equal(sm.spec.endpoints[0].path, '/metrics');
    assert.equal(sm.spec.endpoints[0].honorLabels, false, 'namespace/pod must be the target labels for the HPA');
    none('serviceMonitorNoAPI', 'ServiceMonitor');
    assert.equal(all('serviceMonitorNoAPI', 'Service').length, 1, 'no metrics Service without a monitor');
    one('serviceMonitorForced', 'ServiceMonitor');
    none('defaults', 'ServiceMonitor');
    none('defaults', 'PodMonitor');
  });

  test('PodMonitor only with the API, on the admin port', () => {
    const pm = one('podMonitor', 'PodMonitor');
    assert.deepEqual(pm.spec.selector.matchLabels, one('podMonitor', 'Deployment').spec.selector.matchLabels);
    assert.equal(pm.spec.podMetricsEndpoints[0].port, 'admin');
    assert.equal(pm.spec.podMetricsEndpoints[0].honorLabels, false);
    none('podMonitorNoAPI', 'PodMonitor');
  });

  test('metrics Service and scrape annotations on request', () => {
    one('metricsService', 'Service', 'wsgate-metrics');
    const ann = one('metricsService', 'Deployment').spec.template.metadata.annotations;
    assert.equal(ann['prometheus.io/scrape'], 'true');
    assert.equal(ann['prometheus.io/port'], '9090');
  });

  test('dashboard ConfigMap: labelled for the Grafana sidecar, panels for every required signal, only served metrics', async () => {
    none('defaults', 'ConfigMap');
    const cm = one('dashboard', 'ConfigMap');
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    assert.equal(cm.metadata.namespace, 'monitoring');
    assert.equal(cm.metadata.annotations?.grafana_folder, 'wsgate');
    const dash = JSON.parse(cm.data['wsgate.json']) as { panels: { title: string; type: string; targets?: { expr: string }[] }[] };
    const exprs = (re: RegExp) => dash.panels.filter((p) => re.test(p.title)).flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const has = (title: RegExp, expr: RegExp) => assert.ok(exprs(title).some((e) => expr.test(e)), `no panel ${title} with ${expr}`);
    has(/active connections per route/i, /wsgate_connections_active\b.*/);
    assert.ok(exprs(/active connections per route/i).some((e) => /by \([^)]*route/.test(e)), 'grouped by route');
    has(/messages/i, /rate\(wsgate_messages_total/);
    has(/bytes/i, /rate\(wsgate_bytes_total/);
    has(/handshake latency/i, /histogram_quantile\(0\.5, .*wsgate_handshake_duration_seconds_bucket/);
    has(/handshake latency/i, /histogram_quantile\(0\.99, .*wsgate_handshake_duration_seconds_bucket/);
    has(/closes by code/i, /by \(code\).*wsgate_closes_total/);
    has(/rejections by reason/i, /by \(reason\).*wsgate_rejections_total/);
    has(/drain/i, /wsgate_drain_closes_total/);
    // Every metric the dashboard reads is one the process serves.
    const served = new Set((await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    for (const p of dash.panels) {
      for (const t of p.targets ?? []) {
        for (const [name] of t.expr.matchAll(/wsgate_[a-z_]+/g)) {
          const base = name.replace(/_(bucket|sum|count)$/, '');
          assert.ok(served.has(base), `panel "${p.title}" reads ${name}, which /metrics does not serve`);
        }
      }
    }
  });
});

describe('toggles', () => {
  test('crds.install false: no CRDs; crds.keep false: no keep policy on either', () => {
    none('crdsOff', 'CustomResourceDefinition');
    assert.deepEqual(all('crdsNoKeep', 'CustomResourceDefinition').map((c) => [c.metadata.name, c.metadata.annotations]), [
      ['websocketpolicies.wsgate.io', undefined],
      ['websocketroutes.wsgate.io', undefined],
    ]);
  });

  test('PodDisruptionBudget off, or with minAvailable', () => {
    none('pdbOff', 'PodDisruptionBudget');
    const p = one('pdbMinAvailable', 'PodDisruptionBudget');
    assert.equal(p.spec.minAvailable, 2);
    assert.equal(p.spec.maxUnavailable, undefined);
    assert.equal(p.spec.unhealthyPodEvictionPolicy, 'AlwaysAllow');
  });

  test('Service: externalTrafficPolicy, ClusterIP, NodePort', () => {
    const s = one('etpLocal', 'Service');
    assert.equal(s.spec.externalTrafficPolicy, 'Local');
    assert.deepEqual(s.spec.loadBalancerSourceRanges, ['10.0.0.0/8']);
    assert.equal(one('clusterIP', 'Service').spec.type, 'ClusterIP');
    const np = one('nodePort', 'Service');
    assert.equal(np.spec.type, 'NodePort');
    assert.equal(np.spec.ports[0].nodePort, 30080);
  });

  test('tls: wss listener, https port, default certificate mounted read-only', () => {
    const c = container('tls');
    const config = loadConfig(c.args, podEnv);
    assert.deepEqual(config.tlsListen, { host: '0.0.0.0', port: 8443 });
    assert.equal(config.defaultCertFile, '/etc/wsgate/tls/tls.crt');
    assert.equal(config.defaultKeyFile, '/etc/wsgate/tls/tls.key');
    assert.ok(c.ports.some((p: { name: string; containerPort: number }) => p.name === 'https' && p.containerPort === 8443));
    const mount = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/etc/wsgate/tls');
    assert.equal(mount.readOnly, true);
    const vol = one('tls', 'Deployment').spec.template.spec.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.equal(vol.secret.secretName, 'default-cert');
    const svc = one('tls', 'Service');
    assert.deepEqual(svc.spec.ports.map((p: { name: string; port: number; targetPort: string }) => [p.name, p.port, p.targetPort]), [['http', 80, 'http'], ['https', 443, 'https']]);
    assert.equal(loadConfig(container('defaults').args, podEnv).tlsListen, undefined, 'TLS is off by default');
  });

  test('controller flags reach the process', () => {
    const config = loadConfig(container('flags').args, podEnv);
    assert.equal(config.allowStaticEndpoints, true);
    assert.deepEqual(config.trustedProxies, ['10.0.0.0/8', '192.168.0.0/16']);
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.maxHeaderBytes, 32768);
    assert.ok(config.workers >= 1);
    assert.ok(container('flags').env.some((e: { name: string; value?: string }) => e.name === 'NODE_OPTIONS' && e.value === '--max-old-space-size=384'));
    assert.deepEqual(loadConfig(container('watchNamespace').args, podEnv).watchNamespaces, ['apps']);
    assert.deepEqual(loadConfig(container('namespaces').args, podEnv).watchNamespaces, ['apps', 'web']);
    assert.equal(loadConfig(container('noLeaderElection').args, podEnv).leaderElection, false);
  });

  test('tracing: off by default; the endpoint and the ratio reach the process', () => {
    assert.equal(loadConfig(container('defaults').args, podEnv).tracing, undefined);
    const t = loadConfig(container('tracing').args, podEnv).tracing;
    assert.deepEqual([t?.url, t?.sampleRatio], ['http://otel-collector.observability:4318/v1/traces', 0.05]);
  });

  test('affinity secret: from a Secret as WSGATE_AFFINITY_SECRET (the flag\'s env var), never in the args', () => {
    const c = container('affinitySecret');
    const e = c.env.find((x: { name: string }) => x.name === 'WSGATE_AFFINITY_SECRET');
    assert.deepEqual(e.valueFrom.secretKeyRef, { name: 'wsgate-affinity', key: 'affinity-secret' });
    assert.ok(!c.args.some((a: string) => a.startsWith('--affinity-secret')));
    assert.equal(loadConfig(c.args, { ...podEnv, WSGATE_AFFINITY_SECRET: 'k'.repeat(64) }).affinitySecret, 'k'.repeat(64));
    assert.ok(!container('defaults').env.some((x: { name: string }) => x.name === 'WSGATE_AFFINITY_SECRET'));
  });

  test('preStop sleep 0 removes the hook (and works before Kubernetes 1.30); an explicit grace period is kept', () => {
    assert.equal(container('noPreStop').lifecycle, undefined);
    assert.equal(container('kube129NoPreStop').lifecycle, undefined);
    assert.equal(one('noPreStop', 'Deployment').spec.template.spec.terminationGracePeriodSeconds, 0 + 5 + 30 + 10);
    assert.equal(one('explicitGrace', 'Deployment').spec.template.spec.terminationGracePeriodSeconds, 300);
  });

  test('no RBAC and an existing ServiceAccount', () => {
    for (const k of ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount']) none('noRbac', k);
    assert.equal(one('noRbac', 'Deployment').spec.template.spec.serviceAccountName, 'existing');
  });

  test('custom topology spread replaces the default; digest pins the image; fullnameOverride names objects', () => {
    const spread = one('customSpread', 'Deployment').spec.template.spec.topologySpreadConstraints;
    assert.equal(spread.length, 1);
    assert.equal(spread[0].whenUnsatisfiable, 'DoNotSchedule');
    assert.equal(container('digest').image, `ghcr.io/wsgate/wsgate@sha256:${'a'.repeat(64)}`);
    assert.equal(one('fullname', 'Deployment').metadata.name, 'edge');
    assert.equal(one('fullname', 'Deployment').spec.selector.matchLabels['app.kubernetes.io/instance'], 'r1');
  });
});

describe('refused values', () => {
  const refused: [string, Record<string, unknown> | { kubeVersion: string }, RegExp][] = [
    ['grace period too small', { terminationGracePeriodSeconds: 40 }, /terminationGracePeriodSeconds \(40\) must be greater than .*= 40/],
    ['grace period too small for a long drain', { terminationGracePeriodSeconds: 100, controller: { drainSeconds: 120 } }, /must be greater than/],
    ['autoscaling mode both', { autoscaling: { mode: 'both' } }, /autoscaling\/mode/],
    ['unknown top-level value', { replicas: 3 }, /additional properties|replicas/i],
    ['unknown nested value', { controller: { class: 'x' } }, /additional properties|class/i],
    ['bad log level', { controller: { logLevel: 'verbose' } }, /logLevel/],
    ['negative drain', { controller: { drainSeconds: -1 } }, /drainSeconds/],
    ['zero API rate', { controller: { kubeApi: { qps: 0 } } }, /kubeApi/],
    ['string replicaCount', { replicaCount: 'two' }, /replicaCount/],
    ['both monitors', { metrics: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } } }, /not both/],
    ['min > max replicas', { autoscaling: { mode: 'hpa', minReplicas: 5, maxReplicas: 2 } }, /minReplicas/],
    ['both PDB bounds', { podDisruptionBudget: { minAvailable: 1, maxUnavailable: 1 } }, /not both/],
    ['externalTrafficPolicy on ClusterIP', { service: { type: 'ClusterIP', externalTrafficPolicy: 'Local' } }, /externalTrafficPolicy/],
    ['default certificate without TLS', { tls: { defaultCertificate: { secretName: 'x' } } }, /tls.enabled/],
    ['preStop sleep on Kubernetes 1.29', { kubeVersion: '1.29.0' }, /needs Kubernetes 1.30/],
    ['rbac.scope Namespaces without namespaces', { rbac: { scope: 'Namespaces' } }, /rbac\/namespaces/],
    ['rbac.scope Namespaces with an empty list', { rbac: { scope: 'Namespaces', namespaces: [] } }, /rbac\/namespaces/],
    ['rbac.namespaces with a bad name', { rbac: { scope: 'Namespaces', namespaces: ['Apps'] } }, /rbac\/namespaces/],
    ['rbac.scope unknown', { rbac: { scope: 'Namespace' } }, /rbac\/scope/],
    ['rbac.namespaces and controller.watchNamespace', { rbac: { scope: 'Namespaces', namespaces: ['a'] }, controller: { watchNamespace: 'b' } }, /not both/],
  ];
  const results = new Map<string, Awaited<ReturnType<typeof helm>>>();
  before(async () => {
    await Promise.all(
      refused.map(async ([name, values]) => {
        const opts: RenderOptions = 'kubeVersion' in values ? { kubeVersion: values.kubeVersion as string } : { values };
        results.set(name, await helm(templateArgs(opts)));
      }),
    );
  });
  for (const [name, , message] of refused) {
    test(name, () => {
      const r = results.get(name)!;
      assert.notEqual(r.code, 0, `${name}: helm template succeeded`);
      assert.match(r.stderr, message);
    });
  }
});

test('helm lint --strict passes with defaults and with the toggles that change templates', async () => {
  const linted: Variant[] = ['defaults', 'hpa', 'keda', 'serviceMonitor', 'podMonitor', 'dashboard', 'tls', 'watchNamespace', 'namespaces', 'crdsOff'];
  const results = await Promise.all(
    linted.map(async (v) => {
      const opts = variants[v] as RenderOptions;
      const args = templateArgs({ ...opts, namespace: NS });
      const valuesIdx = args.indexOf('--values');
      const lintArgs = ['lint', chartDir, '--strict', '--namespace', NS];
      if (valuesIdx >= 0) lintArgs.push('--values', args[valuesIdx + 1]);
      return [v, await helm(lintArgs)] as const;
    }),
  );
  for (const [v, r] of results) assert.equal(r.code, 0, `${v}: helm lint --strict failed:\n${r.stdout}${r.stderr}`);
  const bad = await helm(['lint', chartDir, '--set', 'autoscaling.mode=both']);
  assert.notEqual(bad.code, 0, 'helm lint must reject a value the schema refuses');
  assert.ok(readFileSync(join(chartDir, 'values.schema.json'), 'utf8').length > 0);
});
