// Writes each route's conditions and endpoint counts to its /status by server-side apply (fieldManager "wsgate", force), only while
// this replica leads. A write whose content equals the last one applied is skipped; a condition keeps its
// lastTransitionTime while its status stays the same (the previous value comes from the last apply, or from
// the status the informer saw on the server). Winning leadership forgets what was applied and rewrites all,
// since the previous leader may have left anything behind.
import type { Logger } from 'pino';
import type { BackendStatus, RouteStatus } from '../model/snapshot.ts';
import { KubeApiError, type KubeClient } from '../kube/kube-client.ts';
import type { ObservedRouteStatus } from '../sources/kubernetes/source.ts';
import { QueuedStatusWriter, type StatusWriterQueueOptions } from './keyed-write-queue.ts';

export interface StatusWriterOptions extends StatusWriterQueueOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly fieldManager?: string;
  /** The status a route has on the server (KubernetesSource#observedStatus). */
  readonly observed?: (key: string) => ObservedRouteStatus | undefined;
  /** Wall time, for lastTransitionTime (default: the system's). */
  readonly now?: () => Date;
}

interface AppliedCondition {
  readonly type: string;
  readonly status: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

interface AppliedStatus {
  readonly observedGeneration: number;
  readonly conditions: readonly AppliedCondition[];
  readonly readyEndpoints?: number;
  readonly backends?: readonly BackendStatus[];
}

/** metav1.Time: RFC 3339 in whole seconds. */
function metaTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export class StatusWriter extends QueuedStatusWriter<RouteStatus, AppliedStatus> {
  private readonly o: StatusWriterOptions;
  private readonly fieldManager: string;
  private readonly now: () => Date;

  constructor(opts: StatusWriterOptions) {
    super(opts, opts.log.child({ component: 'status-writer' }), () => 'WebSocketRoute');
    this.o = opts;
    this.fieldManager = opts.fieldManager ?? 'wsgate';
    this.now = opts.now ?? (() => new Date());
  }

  /** The statuses of every current route (from the builder); routes not listed are forgotten. */
  update(statuses: readonly RouteStatus[]): void {
    this.setDesiredList(statuses, (s) => s.key);
  }

  protected async write(key: string, status: RouteStatus): Promise<boolean> {
    const [namespace, name] = splitKey(key);
    try {
      await this.sendChanged(key, this.statusBody(key, status), (body) => this.o.client.applyRouteStatus(namespace, name, body as unknown as Record<string, unknown>, this.fieldManager));
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return false; // deleted meanwhile: nothing to report on
      throw err;
    }
  }

  private statusBody(key: string, s: RouteStatus): AppliedStatus {
    const before = this.applied.get(key)?.body.conditions ?? this.o.observed?.(key)?.conditions ?? [];
    const now = metaTime(this.now());
    return {
      observedGeneration: s.generation,
      conditions: s.conditions.map((c) => {
        const prev = before.find((p) => p.type === c.type);
        return {
          type: c.type,
          status: c.status,
          observedGeneration: c.observedGeneration,
          lastTransitionTime: prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
          reason: c.reason,
          message: c.message,
        };
      }),
      // Left out when the route is not accepted: an apply without them removes what this manager wrote before.
      ...(s.readyEndpoints === undefined ? {} : { readyEndpoints: s.readyEndpoints }),
      ...(s.backends === undefined ? {} : { backends: s.backends }),
    };
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
