// A minimal HTTPS client for the test's own calls to the real API server (admin certificate or a bearer
// token): raw status and body, so tests can assert on 403s and on the server's validation messages, and a
// streaming watch. wsgate's own calls go through its client (src/kube/kube-client.ts).
import https from 'node:https';

export interface Credentials {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** Any API object the tests send: what pathOf() needs, plus the rest of its fields. */
export interface ApiObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name?: string; readonly namespace?: string; readonly [k: string]: unknown };
  readonly [field: string]: unknown;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: Record<string, unknown> };

/** The REST path of an object's collection or of the object itself, for the kinds the tests use. */
export function pathOf(obj: ApiObject, named = true): string {
  const plural: Record<string, string> = {
    Namespace: 'namespaces', ServiceAccount: 'serviceaccounts', Service: 'services', Pod: 'pods', Node: 'nodes', Secret: 'secrets',
    ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings', Role: 'roles', RoleBinding: 'rolebindings',
    CustomResourceDefinition: 'customresourcedefinitions', WebSocketRoute: 'websocketroutes', EndpointSlice: 'endpointslices', Lease: 'leases',
  };
  const p = plural[obj.kind];
  if (!p) throw new Error(`pathOf: unknown kind ${obj.kind}`);
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = obj.metadata.namespace && !['Namespace', 'Node', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition'].includes(obj.kind) ? `/namespaces/${obj.metadata.namespace}` : '';
  return `${base}${ns}/${p}${named && obj.metadata.name ? `/${obj.metadata.name}` : ''}`;
}

export class KubeApi {
  readonly #agent: https.Agent;

  constructor(readonly url: string, private readonly creds: Credentials) {
    this.#agent = new https.Agent({ ca: creds.ca, cert: creds.cert, key: creds.key, keepAlive: true });
  }

  /** The same server with other credentials (a ServiceAccount token). */
  withToken(token: string): KubeApi {
    return new KubeApi(this.url, { ca: this.creds.ca, token });
  }

  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(`${this.url}${path}`, {
        method,
        agent: this.#agent,
        headers: {
          accept: 'application/json',
          ...(this.creds.token ? { authorization: `Bearer ${this.creds.token}` } : {}),
          ...(payload !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: parseBody(text) });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like request(), but a status outside 2xx throws with the server's message. */
  async must(method: string, path: string, body?: unknown, contentType?: string): Promise<Record<string, unknown>> {
    const r = await this.request(method, path, body, contentType);
    if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path}: ${r.status} ${String(r.body['message'] ?? JSON.stringify(r.body))}`);
    return r.body;
  }

  /** Server-side apply, as `kubectl apply --server-side --force-conflicts` sends it. */
  apply(obj: ApiObject, fieldManager = 'wsgate-test'): Promise<Record<string, unknown>> {
    return this.must('PATCH', `${pathOf(obj)}?fieldManager=${fieldManager}&force=true`, obj, 'application/apply-patch+yaml');
  }

  /** A watch from `resourceVersion` (or from now): events go to `onEvent` until stop(). */
  watch(collectionPath: string, onEvent: (e: WatchEvent) => void, resourceVersion?: string): { stop(): void; ended: Promise<void> } {
    const sep = collectionPath.includes('?') ? '&' : '?';
    let req: ReturnType<typeof https.request> | undefined;
    const ended = new Promise<void>((resolve) => {
      req = https.request(`${this.url}${collectionPath}${sep}watch=1${resourceVersion ? `&resourceVersion=${resourceVersion}` : ''}`, {
        agent: new https.Agent({ ca: this.creds.ca, cert: this.creds.cert, key: this.creds.key }),
        headers: this.creds.token ? { authorization: `Bearer ${this.creds.token}` } : {},
      }, (res) => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim()) onEvent(JSON.parse(line) as WatchEvent);
          }
        });
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
    return { stop: () => req?.destroy(), ended };
  }

  close(): void {
    this.#agent.destroy();
  }
}

function parseBody(text: string): Record<string, unknown> {
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return { text };
  }
}
