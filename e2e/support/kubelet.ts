// The kubelet's part of a pod's life, played against a real API server (there is no kubelet in the test):
// create the Pod bound to a Node, start its container (a backend process on the pod IP), report it Running and
// Ready through the status subresource; on delete, run preStop, SIGTERM, wait for the process to exit at the
// end of its grace, then remove the Pod object. Order per the pod lifecycle docs:
// https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { KubeApi } from '../../test/support/kube-env.ts';

export interface KubeletOptions {
  readonly api: KubeApi;
  readonly node: string;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  /** preStop sleep before SIGTERM. */
  readonly preStopMs: number;
  readonly terminationGracePeriodSeconds: number;
}

export interface RunningPod {
  readonly name: string;
  readonly ip: string;
  readonly child: ChildProcess;
}

export interface Termination {
  readonly deletedAt: number;
  readonly sigtermAt: number;
  /** When the container process was seen to exit (its 'exit' event in this process). */
  readonly exitedAt: number;
  /** Connections the backend still had open when it exited. */
  readonly openAtExit: number;
  readonly removedAt: number;
}

const backendScript = join(import.meta.dirname, 'pod-backend.ts');

export class FakeKubelet {
  readonly #pods = new Set<ChildProcess>();

  constructor(private readonly o: KubeletOptions) {}

  async registerNode(): Promise<void> {
    await this.o.api.must('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: this.o.node } });
  }

  async runPod(name: string, ip: string): Promise<RunningPod> {
    const { api, namespace } = this.o;
    await api.must('POST', `/api/v1/namespaces/${namespace}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: this.o.labels },
      spec: {
        nodeName: this.o.node, terminationGracePeriodSeconds: this.o.terminationGracePeriodSeconds,
        containers: [{ name: 'app', image: 'chat:test', ports: [{ name: 'ws', containerPort: 8080 }] }],
      },
    });
    const graceLeftMs = this.o.terminationGracePeriodSeconds * 1000 - this.o.preStopMs;
    const child = spawn(process.execPath, ['--import', 'tsx', backendScript, name, ip, String(graceLeftMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.#pods.add(child);
    child.stdout!.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`backend ${name} exited ${code} before listening`)));
    });
    const now = new Date().toISOString();
    const cond = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
    await api.must('PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, {
      status: {
        phase: 'Running', hostIP: '10.244.0.1', podIP: ip, podIPs: [{ ip }], startTime: now,
        conditions: [cond('Initialized'), cond('PodScheduled'), cond('ContainersReady'), cond('Ready')],
        containerStatuses: [{ name: 'app', ready: true, started: true, restartCount: 0, image: 'chat:test', imageID: '', state: { running: { startedAt: now } } }],
      },
    }, 'application/merge-patch+json');
    return { name, ip, child };
  }

  /** `kubectl delete pod` with the pod's grace period, then the kubelet's side until the Pod object is gone. */
  async terminate(pod: RunningPod): Promise<Termination> {
    const { api, namespace } = this.o;
    const exit = new Promise<{ at: number; open: number }>((resolve) => {
      let last = '';
      pod.child.stdout!.on('data', (d: string) => (last += d));
      pod.child.once('exit', () => {
        const at = performance.now();
        const line = last.trim().split('\n').pop() ?? '{}';
        resolve({ at, open: Number((JSON.parse(line) as { open?: number }).open ?? -1) });
      });
    });
    await api.must('DELETE', `/api/v1/namespaces/${namespace}/pods/${pod.name}`, { gracePeriodSeconds: this.o.terminationGracePeriodSeconds });
    const deletedAt = performance.now();
    await new Promise((r) => setTimeout(r, this.o.preStopMs));
    const sigtermAt = performance.now();
    pod.child.kill('SIGTERM');
    const exited = await exit;
    this.#pods.delete(pod.child);
    // The container is gone: the kubelet removes the Pod object (a delete with grace 0).
    await api.must('DELETE', `/api/v1/namespaces/${namespace}/pods/${pod.name}`, { gracePeriodSeconds: 0 });
    return { deletedAt, sigtermAt, exitedAt: exited.at, openAtExit: exited.open, removedAt: performance.now() };
  }

  async killAll(): Promise<void> {
    for (const c of this.#pods) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    }
    this.#pods.clear();
  }
}
