// The rolling-update scenario, run INSIDE a network namespace the test made (pod addresses 10.244.0.x on a
// veth; the API server's loopback is the namespace's own): etcd, kube-apiserver, kube-controller-manager,
// backend "pods" (one process each), two wsgate replicas with the chart's ServiceAccount token, and 1,000
// real ws clients. Pods are rolled one at a time as a Deployment and the kubelet would do it, then one wsgate
// replica is scaled in. It prints one JSON report on stdout (last line); the test asserts on it.
// argv: drain window in seconds.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { loopbackListen, startCli, type CliProcess } from '../../test/support/cli-process.ts';
import { startKubeEnv, type KubeEnv } from '../../test/support/kube-env.ts';
import { waitUntil } from '../../test/support/wait.ts';
import { codeCounts, Fleet, tenths } from './fleet.ts';
import { FakeKubelet, type RunningPod } from './kubelet.ts';
import { SliceWatch } from './slice-watch.ts';

const windowSeconds = Number(process.argv[2] ?? 4);
const clients = Number(process.argv[3] ?? 1000);
const windowMs = windowSeconds * 1000;
const root = join(import.meta.dirname, '..', '..');
const log = (msg: string): boolean => process.stderr.write(`# scenario ${(performance.now() / 1000).toFixed(1)}s: ${msg}\n`);

const docs = (file: string): Record<string, unknown>[] =>
  (yaml.loadAll(readFileSync(join(root, file), 'utf8')) as unknown[]).filter((d): d is Record<string, unknown> => d !== null && typeof d === 'object');

let env: KubeEnv | undefined;
let kubelet: FakeKubelet | undefined;
let fleet: Fleet | undefined;
let watch: SliceWatch | undefined;
const gates: CliProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'wsgate-rolling-'));

async function cleanup(): Promise<void> {
  fleet?.terminateAll();
  watch?.stop();
  for (const g of gates) if (g.child.exitCode === null && g.child.signalCode === null) g.child.kill('SIGKILL');
  await kubelet?.killAll();
  await env?.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.once('SIGTERM', () => void cleanup().then(() => process.exit(143)));

/** A metric sample from a replica's /metrics (0 when absent). */
async function metric(admin: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Bounded poll of a replica's own view (setup only; assertions are made on events and counts); a replica not
 *  answering yet counts as not there yet. */
function poll(what: string, pred: () => Promise<boolean>, maxMs = 30_000): Promise<void> {
  return waitUntil(() => pred().catch(() => false), what, maxMs, 100);
}

export interface RollReport {
  pod: string;
  replacement: string;
  clients: number;
  codes: Record<string, number>;
  /** Sessions on the rolled pod closed (any code) before its process exited. */
  closedBeforeExit: number;
  openAtExit: number;
  /** 1012s, and the reconnects that follow them, per tenth of the drain window from the first close (11th: later). */
  closeTenths: number[];
  reconnectTenths: number[];
  closeSpanMs: number;
  /** Order of what happened, each as ms from the delete. */
  timeline: Record<string, number>;
}

async function main(): Promise<void> {
  env = await startKubeEnv({ controllerManager: true });
  const api = env.api;
  log('control plane up');
  for (const crd of docs('crds/wsgate.io_websocketroutes.yaml')) await api.must('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  await api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wsgate' } });
  for (const obj of docs('manifests/rbac.yaml')) await api.apply(obj as never);
  const kubeconfig = join(dir, 'wsgate.kubeconfig');
  writeFileSync(kubeconfig, env.kubeconfigWithToken(await env.tokenFor('wsgate', 'wsgate'), 'wsgate'));

  // The pods: a grace period that covers preStop (at least the drain window) plus a little.
  const preStopMs = windowMs + 1000;
  kubelet = new FakeKubelet({ api, node: 'node-1', namespace: 'default', labels: { app: 'chat' }, preStopMs, terminationGracePeriodSeconds: windowSeconds + 3 });
  await kubelet.registerNode();
  await api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'chat', namespace: 'default' }, spec: { selector: { app: 'chat' }, ports: [{ name: 'ws', port: 80, targetPort: 8080 }] } });
  watch = new SliceWatch(api, 'default', 'chat');
  const pods: RunningPod[] = [];
  for (const [i, ip] of ['10.244.0.11', '10.244.0.12', '10.244.0.13'].entries()) pods.push(await kubelet.runPod(`chat-v1-${i}`, ip));
  await watch.until((s) => pods.every((p) => s.get(p.name) === 'RSt'), 'three ready endpoints built by the controller');
  log('pods ready in the slice');
  // The CRD must be served before the route is created (Established).
  await poll('CRD served', async () => (await api.request('GET', '/apis/wsgate.io/v1alpha1/namespaces/default/websocketroutes')).status === 200);
  await api.apply({
    apiVersion: 'wsgate.io/v1alpha1', kind: 'WebSocketRoute', metadata: { name: 'chat', namespace: 'default' },
    spec: { drain: { windowSeconds }, rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/chat' } }], backendRefs: [{ name: 'chat', port: 80 }] }] },
  });

  for (const name of ['gw-a', 'gw-b']) {
    gates.push(await startCli([
      '--kubernetes', '--kubeconfig', kubeconfig, ...loopbackListen, '--pod-name', name,
      '--lease-namespace', 'wsgate', '--build-holdoff-ms', '10', '--shutdown-delay-seconds', '0.5', '--drain-seconds', String(windowSeconds),
    ]));
  }
  for (const g of gates) {
    await poll(`${g.listen} ready with 3 Active endpoints`, async () => (await fetch(`http://${g.admin}/readyz`)).status === 200
      && (await metric(g.admin, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Active' })) === 3);
  }
  log('wsgate replicas ready');

  fleet = new Fleet(gates.map((g) => g.listen));
  await fleet.connectMany(clients);
  log(`${clients} clients connected`);

  const rolls: RollReport[] = [];
  for (let i = 0; i < 3; i++) {
    // Deployment (maxSurge 1, maxUnavailable 0): the replacement first, Ready, then the old pod is deleted.
    const old = pods[i]!;
    const replacement = await kubelet.runPod(`chat-v2-${i}`, `10.244.0.${14 + i}`);
    pods.push(replacement);
    await watch.until((s) => s.get(replacement.name) === 'RSt', `${replacement.name} ready in the slice`);
    for (const g of gates) await poll(`${g.listen} sees the replacement`, async () => (await metric(g.admin, 'wsgate_endpoints', { namespace: 'default', route: 'chat', state: 'Active' })) === 4);
    const onOld = fleet.open().filter((s) => s.backend === old.name);
    let terminatingAt = 0;
    const seenTerminating = watch.until((s) => s.get(old.name)?.endsWith('T') === true, `${old.name} terminating`).then((t) => (terminatingAt = t));
    let removedFromSliceAt = 0;
    const seenRemoved = watch.until((s) => !s.has(old.name), `${old.name} removed from the slice`, 60_000).then((t) => (removedFromSliceAt = t));
    const term = await kubelet.terminate(old);
    await Promise.all([seenTerminating, seenRemoved]);
    // What the proxy does about a pod whose process is gone arrives a moment later; a session still open after
    // that is a silent drop (reported as "open").
    await poll(`${old.name}'s sessions closed`, async () => onOld.every((s) => s.closed), 5000).catch(() => {});
    const closes = onOld.filter((s) => s.closed).map((s) => s.closed!.at);
    const first = Math.min(...closes);
    const reconnects = fleet.sessions.filter((s) => onOld.some((o) => o.client === s.client) && s.openedAt > first && !onOld.includes(s)).map((s) => s.openedAt);
    const rel = (t: number): number => Math.round(t - term.deletedAt);
    rolls.push({
      pod: old.name, replacement: replacement.name, clients: onOld.length, codes: codeCounts(onOld),
      closedBeforeExit: onOld.filter((s) => s.closed && s.closed.at < term.exitedAt).length, openAtExit: term.openAtExit,
      closeTenths: tenths(closes, first, windowMs), reconnectTenths: tenths(reconnects, first, windowMs), closeSpanMs: Math.round(Math.max(...closes) - first),
      timeline: { terminatingInSlice: rel(terminatingAt), firstClose: rel(first), lastClose: rel(Math.max(...closes)), sigterm: rel(term.sigtermAt), exited: rel(term.exitedAt), podRemoved: rel(term.removedAt), removedFromSlice: rel(removedFromSliceAt) },
    });
    log(`rolled ${old.name}: ${JSON.stringify(rolls.at(-1))}`);
  }

  // Scale-in of wsgate: SIGTERM one replica; its clients get paced 1012 and reconnect to the other.
  const [keep, gone] = [gates[0]!, gates[1]!];
  fleet.setGateways([keep.listen]);
  const onGone = fleet.open().filter((s) => s.gateway === gone.listen);
  const sigtermAt = performance.now();
  const [exitCode] = await gone.stop();
  const exitedAt = performance.now();
  await poll('every session on the stopped replica closed', async () => onGone.every((s) => s.closed), 5000).catch(() => {});
  const closes = onGone.filter((s) => s.closed).map((s) => s.closed!.at);
  const first = Math.min(...closes);
  const reconnects = fleet.sessions.filter((s) => onGone.some((o) => o.client === s.client) && s.openedAt > first && !onGone.includes(s)).map((s) => s.openedAt);
  const scaleIn = {
    clients: onGone.length, codes: codeCounts(onGone), exitCode, closedBeforeExit: onGone.filter((s) => s.closed && s.closed.at < exitedAt).length,
    closeTenths: tenths(closes, first, windowMs), reconnectTenths: tenths(reconnects, first, windowMs), closeSpanMs: Math.round(Math.max(...closes) - first),
    timeline: { firstClose: Math.round(first - sigtermAt), lastClose: Math.round(Math.max(...closes) - sigtermAt), exited: Math.round(exitedAt - sigtermAt) },
  };
  log(`scale-in: ${JSON.stringify(scaleIn)}`);

  // Every client still has a session, and it works.
  await poll('reconnects settled', async () => fleet!.open().length + fleet!.failures.length >= clients, 20_000).catch(() => {});
  const open = fleet.open();
  const echoed = await fleet.echoAll();
  const report = {
    clients, windowSeconds, sessions: fleet.sessions.length, closeCodes: codeCounts(fleet.sessions.filter((s) => s.closed)),
    openAtEnd: open.length, echoedAtEnd: echoed, failures: fleet.failures.slice(0, 10), failureCount: fleet.failures.length,
    openOnGateways: [...new Set(open.map((s) => s.gateway))].length, rolls, scaleIn,
    // Log lines of either replica that tell of a refused API call (the chart's RBAC not granting enough).
    forbiddenLogLines: gates.flatMap((g) => `${g.stdout()}\n${g.stderr()}`.split('\n')).filter((l) => /forbidden|HTTP 403|"(status|code)":403\b/i.test(l)).length,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

try {
  await main();
  await cleanup();
  process.exit(0);
} catch (err) {
  process.stderr.write(`scenario failed: ${(err as Error).stack ?? String(err)}\n`);
  await cleanup();
  process.exit(1);
}
