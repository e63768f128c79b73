// The EndpointSlices of one Service as the real EndpointSlice controller writes them, followed by a watch:
// endpoint states by pod name, and waiters woken on each event (no polling).
import type { KubeApi, WatchEvent } from '../../test/support/kube-env.ts';

type Endpoint = { targetRef?: { name?: string }; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean } };

export class SliceWatch {
  readonly #slices = new Map<string, Endpoint[]>();
  readonly #waiters = new Set<() => void>();
  readonly #handle: { stop(): void };

  constructor(api: KubeApi, namespace: string, service: string) {
    this.#handle = api.watch(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${service}`, (e: WatchEvent) => {
      const name = String((e.object['metadata'] as { name: string }).name);
      if (e.type === 'DELETED') this.#slices.delete(name);
      else if (e.type === 'ADDED' || e.type === 'MODIFIED') this.#slices.set(name, (e.object['endpoints'] as Endpoint[] | null) ?? []);
      for (const w of this.#waiters) w();
    });
  }

  /** pod name → "RSt"-style conditions (upper case true), as in a rollout recording. */
  states(): Map<string, string> {
    const out = new Map<string, string>();
    for (const eps of this.#slices.values()) {
      for (const ep of eps) {
        const c = ep.conditions ?? {};
        out.set(ep.targetRef?.name ?? '?', `${c.ready === false ? 'r' : 'R'}${c.serving === false ? 's' : 'S'}${c.terminating ? 'T' : 't'}`);
      }
    }
    return out;
  }

  /** Resolves at the first event after which `pred` holds; rejects after maxMs. Returns when (performance.now). */
  until(pred: (states: Map<string, string>) => boolean, what: string, maxMs = 30_000): Promise<number> {
    if (pred(this.states())) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (this.#waiters.delete(check), reject(new Error(`timed out waiting for ${what}; slices: ${[...this.states()].join(' ')}`))), maxMs);
      const check = (): void => {
        if (!pred(this.states())) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(performance.now());
      };
      this.#waiters.add(check);
    });
  }

  stop(): void {
    this.#handle.stop();
  }
}
