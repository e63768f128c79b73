// Test double: a fake Kubernetes API server on 127.0.0.1 (port 0) speaking real HTTP/JSON, so the real
// @kubernetes/client-node talks to it unchanged. Faithful where wsgate depends on the real server's behaviour
// (see store.ts, watch.ts, validation.ts for each rule and the one deliberate relaxation, loopback endpoint
// addresses); fault injection lives in faults.ts. Never used outside tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { discoveryDocument } from './discovery.ts';
import { ApiError, errors, statusBody } from './errors.ts';
import { Faults, type Verb } from './faults.ts';
import { apiVersionOf, builtinResources, resourceFromCrd, websocketRoutes, type KObject, type ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { ListPages } from './pages.ts';
import { Store } from './store.ts';
import { serveWatch, type ActiveWatch } from './watch.ts';

export interface FakeApiServerOptions {
  /** Events retained for watches (default 1000); older resourceVersions get 410 Gone. */
  readonly historyLimit?: number;
  /** How long one second of timeoutSeconds lasts, in ms (default 1000): tests shrink server-side watch timeouts. */
  readonly watchSecondMs?: number;
  /** Watch timeout when the client sends no timeoutSeconds (default 1800, the real --min-request-timeout). */
  readonly defaultWatchTimeoutSeconds?: number;
  /** Interval between bookmarks on watches that allow them (default 60 s, as the real watch cache). */
  readonly bookmarkIntervalMs?: number;
  /** How a watch from a compacted resourceVersion fails: an ERROR event in a 200 stream (default) or HTTP 410. */
  readonly goneAs?: 'event' | 'http';
  /** Bearer token every request must carry (default "fake-token"). */
  readonly token?: string;
  /** Register the WebSocketRoute type without a CRD object (default true). */
  readonly registerWebSocketRoutes?: boolean;
  readonly now?: () => Date;
  /** Serve HTTPS with this certificate (test/support/certs.ts, for 127.0.0.1); the kubeconfig then trusts it as CA. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The RBAC verb, or "discovery" / "unknown". */
  readonly verb: Verb | 'discovery' | 'unknown';
  readonly group: string;
  /** Plural, with "/status" for the subresource. */
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly contentType?: string;
  status: number;
}

interface Target {
  readonly res: ResourceType;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

const bodyLimit = 3 * 1024 * 1024;

/** Where the store keeps an object: its namespace, or '' for a cluster-scoped type (as a request path has it). */
const namespaceOf = (t: ResourceType, obj: KObject): string => (t.namespaced ? (obj.metadata.namespace ?? 'default') : '');

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > bodyLimit) reject(new ApiError(413, 'RequestEntityTooLarge', 'request is too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export class FakeApiServer {
  readonly faults: Faults;
  readonly requests: RequestRecord[] = [];
  private readonly store: Store;
  private readonly pages = new ListPages();
  private readonly types = new Map<string, ResourceType>();
  private readonly active = new Set<ActiveWatch>();
  private readonly sockets = new Set<Socket>();
  private readonly watchStarts = new Map<string, number>();
  private readonly watchWaiters = new Set<() => void>();
  private readonly bookmarks = new Map<string, number>();
  private readonly server: Server;
  private readonly opts: FakeApiServerOptions;
  private nextWatchId = 1;
  private port = 0;
  private tcpConnections = 0;
  private tlsHandshakes = 0;

  private constructor(opts: FakeApiServerOptions) {
    this.opts = opts;
    this.store = new Store({ historyLimit: opts.historyLimit ?? 1000, now: opts.now ?? (() => new Date()) });
    for (const t of builtinResources) this.register(t);
    if (opts.registerWebSocketRoutes !== false) this.register(websocketRoutes);
    this.faults = new Faults(() => this.active, () => this.store.compact(), () => {
      for (const s of this.sockets) s.destroy();
    });
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    this.server = opts.tls ? createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createServer(handler);
    this.server.on('connection', (s: Socket) => {
      this.tcpConnections++;
      if (this.faults.isDown()) return void s.destroy();
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    // Emitted once per completed TLS handshake, a resumed session included: what keep-alive saves.
    this.server.on('secureConnection', () => this.tlsHandshakes++);
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', () => resolve());
    });
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get url(): string {
    return `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  /** TCP connections accepted so far (refused ones during an outage included). */
  get connectionsAccepted(): number {
    return this.tcpConnections;
  }

  /** TLS handshakes completed so far (0 without the tls option). */
  get tlsSessions(): number {
    return this.tlsHandshakes;
  }

  /** A kubeconfig for this server (plain HTTP needs insecure-skip-tls-verify in client-node; TLS trusts the cert as CA). */
  kubeconfig(namespace = 'default'): string {
    const trust = this.opts.tls ? `    certificate-authority-data: ${Buffer.from(this.opts.tls.cert).toString('base64')}` : '    insecure-skip-tls-verify: true';
    return [
      'apiVersion: v1', 'kind: Config', 'current-context: fake',
      'clusters:', '- name: fake', '  cluster:', `    server: ${this.url}`, trust,
      'users:', '- name: fake', '  user:', `    token: ${this.opts.token ?? 'fake-token'}`,
      'contexts:', '- name: fake', '  context:', '    cluster: fake', '    user: fake', `    namespace: ${namespace}`, '',
    ].join('\n');
  }

  register(t: ResourceType): void {
    this.types.set(`${apiVersionOf(t)}/${t.plural}`, t);
  }

  /** The type of an object, by its apiVersion and kind. */
  typeOf(obj: { apiVersion?: string; kind?: string }): ResourceType {
    for (const t of this.types.values()) if (apiVersionOf(t) === obj.apiVersion && t.kind === obj.kind) return t;
    throw new Error(`fake apiserver: unknown type ${obj.apiVersion ?? '?'} ${obj.kind ?? '?'}`);
  }

  // Direct access for tests, through the same defaulting, validation and events as HTTP requests.
  create(obj: KObject): KObject {
    const t = this.typeOf(obj);
    return this.store.create(t, namespaceOf(t, obj), obj);
  }
  /** Unconditional unless obj carries metadata.resourceVersion (custom resources: pass it). */
  update(obj: KObject): KObject {
    const t = this.typeOf(obj);
    return this.store.update(t, namespaceOf(t, obj), obj.metadata.name ?? '', obj);
  }
  updateStatus(obj: KObject): KObject {
    const t = this.typeOf(obj);
    return this.store.update(t, namespaceOf(t, obj), obj.metadata.name ?? '', obj, { subresource: 'status' });
  }
  get(apiVersion: string, kind: string, namespace: string, name: string): KObject {
    return this.store.get(this.typeOf({ apiVersion, kind }), namespace, name);
  }
  tryGet(apiVersion: string, kind: string, namespace: string, name: string): KObject | undefined {
    try {
      return this.get(apiVersion, kind, namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }
  delete(apiVersion: string, kind: string, namespace: string, name: string): KObject {
    return this.store.delete(this.typeOf({ apiVersion, kind }), namespace, name);
  }
  resourceVersion(): number {
    return this.store.currentRv();
  }

  /** Watches started so far for `resource` (plural), or for all. */
  watchesStarted(resource?: string): number {
    return resource === undefined ? [...this.watchStarts.values()].reduce((a, b) => a + b, 0) : (this.watchStarts.get(resource) ?? 0);
  }

  /** Bookmarks sent so far on watches of `resource`. */
  bookmarksSent(resource: string): number {
    return this.bookmarks.get(resource) ?? 0;
  }

  activeWatches(resource?: string): number {
    return [...this.active].filter((w) => resource === undefined || w.resource === resource).length;
  }

  /** Resolves once more than `after` watches have started for `resource`. */
  async waitForWatch(resource: string, after: number): Promise<void> {
    while (this.watchesStarted(resource) <= after) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.watchWaiters.delete(wake);
          resolve();
        };
        this.watchWaiters.add(wake);
      });
    }
  }

  async close(): Promise<void> {
    for (const w of [...this.active]) w.drop();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private parseTarget(segs: string[]): Target | undefined {
    let apiVersion: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) [apiVersion, rest] = [segs[1]!, segs.slice(2)];
    else if (segs[0] === 'apis' && segs.length >= 4) [apiVersion, rest] = [`${segs[1]}/${segs[2]}`, segs.slice(3)];
    else return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) [namespace, rest] = [rest[1], rest.slice(2)];
    const res = this.types.get(`${apiVersion}/${rest[0]}`);
    if (!res || rest.length > 3) return undefined;
    if (!res.namespaced && namespace !== undefined) return undefined;
    return { res, namespace, name: rest[1], subresource: rest[2] };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const segs = url.pathname.split('/').filter(Boolean);
    const target = this.parseTarget(segs);
    const method = req.method ?? 'GET';
    const watching = ['1', 'true'].includes(url.searchParams.get('watch') ?? '');
    const verb: RequestRecord['verb'] = !target
      ? 'discovery'
      : method === 'GET'
        ? target.name === undefined ? (watching ? 'watch' : 'list') : 'get'
        : ({ POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, Verb>)[method] ?? 'unknown';
    const record: RequestRecord = {
      method, path: url.pathname, query: Object.fromEntries(url.searchParams), verb,
      group: target?.res.group ?? '', resource: target ? target.res.plural + (target.subresource ? `/${target.subresource}` : '') : '',
      ...(target?.namespace !== undefined ? { namespace: target.namespace } : {}),
      ...(target?.name !== undefined ? { name: target.name } : {}),
      ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
      status: 0,
    };
    this.requests.push(record);
    const reply = (code: number, body: unknown): void => {
      record.status = code;
      res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    try {
      if (req.headers.authorization !== `Bearer ${this.opts.token ?? 'fake-token'}`) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
      if (!target) {
        if (method === 'POST' && url.pathname === '/apis/apiextensions.k8s.io/v1/customresourcedefinitions') {
          const crd = JSON.parse(await readBody(req)) as Parameters<typeof resourceFromCrd>[0] & KObject;
          this.register(resourceFromCrd(crd));
          return reply(201, { ...crd, status: { conditions: [{ type: 'Established', status: 'True' }] } });
        }
        const doc = method === 'GET' ? discoveryDocument(url.pathname, [...this.types.values()], `127.0.0.1:${this.port}`) : undefined;
        if (doc === undefined) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        return reply(200, doc);
      }
      if (target.subresource !== undefined && (target.subresource !== 'status' || !target.res.hasStatus)) {
        throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      }
      const faultCode = this.faults.takeRequestFault(verb as Verb, record.resource, target.namespace);
      if (faultCode !== undefined) throw new ApiError(faultCode, faultCode === 500 ? 'InternalError' : faultCode === 403 ? 'Forbidden' : 'InjectedFault', `injected fault: ${faultCode}`);
      if (verb === 'watch') return this.watch(req, res, target, url, record);
      const ns = target.namespace ?? '';
      if (target.res.namespaced && target.namespace === undefined && verb !== 'list') throw errors.methodNotAllowed(method);
      const subresource = target.subresource === 'status' ? ('status' as const) : undefined;
      const fieldManager = url.searchParams.get('fieldManager') ?? undefined;
      const writeOpts = { ...(subresource ? { subresource } : {}), ...(fieldManager ? { fieldManager } : {}) };
      switch (verb) {
        case 'list': {
          const label = parseLabelSelector(url.searchParams.get('labelSelector'));
          const field = parseFieldSelector(url.searchParams.get('fieldSelector'));
          const limit = Number(url.searchParams.get('limit') ?? 0) || 0;
          const token = url.searchParams.get('continue');
          let page;
          if (token) page = this.pages.next(token, limit, this.store.oldestRv());
          else {
            const { items, rv } = this.store.list(target.res, target.namespace, (o) => label(o) && field(o));
            page = this.pages.first(items, rv, limit);
          }
          const items = page.items.map((i) => {
            if (target.res.custom) return i;
            const { apiVersion: _a, kind: _k, ...rest } = i;
            return rest;
          });
          const metadata = { resourceVersion: String(page.rv), ...(page.continue ? { continue: page.continue, remainingItemCount: page.remainingItemCount } : {}) };
          return reply(200, { kind: `${target.res.kind}List`, apiVersion: apiVersionOf(target.res), metadata, items });
        }
        case 'get':
          return reply(200, this.store.get(target.res, ns, target.name!));
        case 'create': {
          if (target.name !== undefined) throw errors.methodNotAllowed(method);
          return reply(201, this.store.create(target.res, ns, JSON.parse(await readBody(req)) as KObject, writeOpts));
        }
        case 'update':
          return reply(200, this.store.update(target.res, ns, target.name!, JSON.parse(await readBody(req)) as KObject, writeOpts));
        case 'patch': {
          const body = await readBody(req);
          const existed = this.exists(target.res, ns, target.name!);
          const out = this.store.patch(target.res, ns, target.name!, {
            ...writeOpts, contentType: req.headers['content-type'] ?? '', body, force: url.searchParams.get('force') === 'true',
          });
          return reply(existed ? 200 : 201, out);
        }
        case 'delete':
          return reply(200, this.store.delete(target.res, ns, target.name!));
        default:
          throw errors.methodNotAllowed(method);
      }
    } catch (err) {
      if (res.headersSent) return void res.destroy();
      if (err instanceof ApiError) return reply(err.code, err.toStatus());
      if (err instanceof SyntaxError) return reply(400, statusBody(400, 'BadRequest', `error decoding body: ${err.message}`));
      return reply(500, statusBody(500, 'InternalError', (err as Error).message));
    }
  }

  private exists(res: ResourceType, ns: string, name: string): boolean {
    try {
      this.store.get(res, ns, name);
      return true;
    } catch {
      return false;
    }
  }

  private watch(req: IncomingMessage, res: ServerResponse, target: Target, url: URL, record: RequestRecord): void {
    const plural = target.res.plural;
    this.watchStarts.set(plural, (this.watchStarts.get(plural) ?? 0) + 1);
    for (const wake of [...this.watchWaiters]) wake();
    record.status = 200;
    const id = this.nextWatchId++;
    const hang = this.faults.takeHang(plural);
    if (hang) {
      if (!hang.beforeHeaders) res.writeHead(200, { 'Content-Type': 'application/json' }).flushHeaders();
      const w: ActiveWatch = {
        id, resource: plural, stall: () => {}, closed: new Promise((r) => req.socket.once('close', () => r())),
        drop: () => req.socket.destroy(),
        end: () => void res.end(),
      };
      this.active.add(w);
      void w.closed.then(() => this.active.delete(w));
      return;
    }
    const label = parseLabelSelector(url.searchParams.get('labelSelector'));
    const field = parseFieldSelector(url.searchParams.get('fieldSelector'));
    const secondMs = this.opts.watchSecondMs ?? 1000;
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? this.opts.defaultWatchTimeoutSeconds ?? 1800);
    const w = serveWatch(req, res, {
      id, resource: target.res, namespace: target.namespace, selector: (o) => label(o) && field(o),
      resourceVersion: url.searchParams.get('resourceVersion') ?? '',
      allowBookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
      timeoutMs: timeoutSeconds * secondMs, bookmarkIntervalMs: this.opts.bookmarkIntervalMs ?? 60_000, goneAs: this.opts.goneAs ?? 'event',
      onBookmark: () => this.bookmarks.set(plural, (this.bookmarks.get(plural) ?? 0) + 1),
    }, this.store);
    this.active.add(w);
    void w.closed.then(() => this.active.delete(w));
    record.status = res.statusCode;
  }
}
