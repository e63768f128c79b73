// A real Kubernetes control plane for tests, the envtest pattern (controller-runtime's pkg/envtest,
// https://book.kubebuilder.io/reference/envtest): etcd and kube-apiserver — and kube-controller-manager when a
// test needs EndpointSlices built from Pods — on free loopback ports, with certificates made per run. The
// binaries come from $WSGATE_KUBE_BIN (default: shared/kube/bin beside the repository) and etcd from PATH;
// where they are absent, kubeEnvMissing() says why and the tests skip.
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeApi } from './kube-env/api.ts';
import { makePki, type Pki } from './kube-env/pki.ts';
import { freePort, startProcess, waitReady, type Managed } from './kube-env/process.ts';

export { KubeApi, pathOf, type ApiObject, type ApiResponse, type WatchEvent } from './kube-env/api.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** $WSGATE_KUBE_BIN, else the first shared/kube/bin found beside the repository or one of its parents. */
export function kubeBinDir(): string {
  const fromEnv = process.env['WSGATE_KUBE_BIN'];
  if (fromEnv) return fromEnv;
  for (let d = join(repoRoot, '..'); ; d = dirname(d)) {
    const candidate = join(d, 'shared', 'kube', 'bin');
    if (existsSync(candidate) || dirname(d) === d) return candidate;
  }
}

function onPath(name: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '').split(delimiter)) {
    const p = join(d, name);
    if (d && existsSync(p) && statSync(p).isFile()) return p;
  }
  return undefined;
}

/** Why a real control plane cannot start here, or undefined when it can. */
export function kubeEnvMissing(opts: { controllerManager?: boolean } = {}): string | undefined {
  const bin = kubeBinDir();
  const need = ['kube-apiserver', ...(opts.controllerManager ? ['kube-controller-manager'] : [])];
  const missing = need.filter((b) => !existsSync(join(bin, b)));
  if (missing.length) return `no ${missing.join(', ')} in ${bin} (set WSGATE_KUBE_BIN to a folder with the Kubernetes 1.28 binaries)`;
  if (!onPath('etcd')) return 'no etcd on PATH (apt-get install etcd-server)';
  if (!onPath('openssl')) return 'no openssl on PATH';
  return undefined;
}

export interface KubeEnv {
  readonly url: string;
  /** As cluster admin (system:masters). */
  readonly api: KubeApi;
  readonly pki: Pki;
  /** A kubeconfig (YAML) for the admin certificate. */
  readonly adminKubeconfig: string;
  /** A kubeconfig (YAML) holding a bearer token, e.g. a ServiceAccount's from tokenFor(). */
  kubeconfigWithToken(token: string, namespace?: string): string;
  /** A ServiceAccount token from the TokenRequest API, what `kubectl create token` asks for. */
  tokenFor(namespace: string, serviceAccount: string, expirationSeconds?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface KubeEnvOptions {
  /** Also run kube-controller-manager (EndpointSlices from Pods, garbage collection, ...). */
  readonly controllerManager?: boolean;
  /** Bound on each component becoming ready; a loaded 2-core machine needs tens of seconds. */
  readonly startTimeoutMs?: number;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(url: string, caPem: string, user: Record<string, string>, namespace = 'default'): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'test',
    clusters: [{ name: 'test', cluster: { server: url, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: 'test', user }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', namespace } }],
  });
}

export async function startKubeEnv(opts: KubeEnvOptions = {}): Promise<KubeEnv> {
  const missing = kubeEnvMissing(opts);
  if (missing) throw new Error(missing);
  const bin = kubeBinDir();
  const timeout = opts.startTimeoutMs ?? 90_000;
  const dir = mkdtempSync(join(tmpdir(), 'wsgate-kube-env-'));
  const procs: Managed[] = [];
  const apis: KubeApi[] = [];
  const stop = async (): Promise<void> => {
    for (const a of apis) a.close();
    // Reverse order: the controller-manager and the apiserver go before the store they use.
    for (const p of procs.reverse()) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pki = makePki(dir);
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = startProcess('etcd', 'etcd', [
      '--data-dir', join(dir, 'etcd'), '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `default=http://127.0.0.1:${peerPort}`, '--unsafe-no-fsync', '--log-level', 'warn',
    ], join(dir, 'etcd.log'));
    procs.push(etcd);
    await waitReady(etcd, async () => (await fetch(`${etcdUrl}/health`)).ok, timeout);

    const apiserver = startProcess('kube-apiserver', join(bin, 'kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver')}`, `--tls-cert-file=${pki.serverCert}`, `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`, `--service-account-key-file=${pki.saPub}`, `--service-account-signing-key-file=${pki.saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local', '--authorization-mode=Node,RBAC',
      '--service-cluster-ip-range=10.96.0.0/16', '--endpoint-reconciler-type=none', '--profiling=false',
      // Pods here have no ServiceAccount to mount (no kubelet); the tests create the accounts they use.
      '--disable-admission-plugins=ServiceAccount',
    ], join(dir, 'apiserver.log'));
    procs.push(apiserver);
    const url = `https://127.0.0.1:${apiPort}`;
    const api = new KubeApi(url, { ca: pki.caPem, cert: pki.admin.certPem, key: pki.admin.keyPem });
    apis.push(api);
    await waitReady(apiserver, async () => (await api.request('GET', '/readyz')).status === 200, timeout);

    if (opts.controllerManager) {
      const kcmConfig = join(dir, 'kcm.kubeconfig');
      writeFileSync(kcmConfig, kubeconfig(url, pki.caPem, { 'client-certificate-data': b64(pki.controllerManager.certPem), 'client-key-data': b64(pki.controllerManager.keyPem) }));
      const kcmPort = await freePort();
      const kcm = startProcess('kube-controller-manager', join(bin, 'kube-controller-manager'), [
        `--kubeconfig=${kcmConfig}`, `--authentication-kubeconfig=${kcmConfig}`, `--authorization-kubeconfig=${kcmConfig}`,
        '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`, `--cert-dir=${join(dir, 'kcm')}`, '--leader-elect=false',
        '--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle-controller,-node-route-controller',
        `--root-ca-file=${pki.caCert}`, `--service-account-private-key-file=${pki.saKey}`, '--use-service-account-credentials=true',
        '--service-cluster-ip-range=10.96.0.0/16', `--flex-volume-plugin-dir=${join(dir, 'kcm', 'flexvolume')}`, '--profiling=false',
      ], join(dir, 'kcm.log'));
      procs.push(kcm);
      // Ready once its own /healthz answers (it serves with a self-signed certificate it made at start).
      await waitReady(kcm, async () => (await insecureGet(`https://127.0.0.1:${kcmPort}/healthz`)) === 200, timeout);
    }

    const adminKubeconfig = kubeconfig(url, pki.caPem, { 'client-certificate-data': b64(pki.admin.certPem), 'client-key-data': b64(pki.admin.keyPem) });
    return {
      url,
      api,
      pki,
      adminKubeconfig,
      kubeconfigWithToken: (token, namespace) => kubeconfig(url, pki.caPem, { token }, namespace),
      async tokenFor(namespace, serviceAccount, expirationSeconds = 3600) {
        const r = await api.must('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
          apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds },
        });
        return String((r['status'] as { token: string }).token);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The controller-manager serves its health endpoint with a self-signed certificate made at start. */
function insecureGet(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}
