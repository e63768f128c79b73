// Test double: one WATCH stream, newline-delimited JSON events as the real API server sends them. From
// resourceVersion "" or "0": synthetic ADDED for every current object, then live events. From N: the retained
// events after N, or 410 Gone (an ERROR event carrying a Status, like the watch cache, or HTTP 410) when N is
// older than the retained history. Label selectors turn an object that starts or stops matching into ADDED /
// DELETED. Bookmarks when asked for, periodically and just before the server-side timeout closes the stream.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { statusBody } from './errors.ts';
import { apiVersionOf, type KObject, type ResourceType } from './resources.ts';
import type { Selector } from './selectors.ts';
import type { Store, StoreEvent } from './store.ts';

export interface WatchRequest {
  readonly id: number;
  readonly resource: ResourceType;
  readonly namespace: string | undefined;
  readonly selector: Selector;
  readonly resourceVersion: string;
  readonly allowBookmarks: boolean;
  /** After this the server ends the stream cleanly, as for timeoutSeconds. */
  readonly timeoutMs: number;
  readonly bookmarkIntervalMs: number;
  readonly goneAs: 'event' | 'http';
  readonly onBookmark: () => void;
}

/** A live stream, as the fault injector sees it. */
export interface ActiveWatch {
  readonly id: number;
  readonly resource: string;
  /** Destroys the socket mid-stream, without a final chunk. */
  drop(): void;
  /** Keeps the connection open and sends nothing more, ever. */
  stall(): void;
  /** Ends the stream cleanly, as a server-side timeout does (no bookmark). */
  end(): void;
  readonly closed: Promise<void>;
}

export function serveWatch(req: IncomingMessage, res: ServerResponse, w: WatchRequest, store: Store): ActiveWatch {
  let stalled = false;
  let ended = false;
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe = (): void => {};
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const cleanup = (): void => {
    if (ended) return;
    ended = true;
    // The connection outlives the watch when the client keeps it alive: leave no listener on it.
    req.socket.off('close', cleanup);
    for (const t of timers) clearTimeout(t);
    unsubscribe();
    resolveClosed();
  };
  req.socket.once('close', cleanup);
  res.once('close', cleanup);

  const send = (type: string, object: unknown): void => {
    if (stalled || ended || res.writableEnded || res.destroyed) return;
    res.write(JSON.stringify({ type, object }) + '\n');
  };
  const inScope = (o: KObject): boolean => w.namespace === undefined || o.metadata.namespace === w.namespace;
  const bookmark = (): void => {
    if (!stalled && !res.writableEnded) w.onBookmark();
    send('BOOKMARK', { kind: w.resource.kind, apiVersion: apiVersionOf(w.resource), metadata: { resourceVersion: String(store.currentRv()) } });
  };

  let lastSent = 0;
  const deliver = (e: StoreEvent): void => {
    if (e.resource !== w.resource || e.rv <= lastSent) return;
    lastSent = e.rv;
    const now = inScope(e.object) && w.selector(e.object);
    if (e.type === 'MODIFIED' && e.previous) {
      const before = inScope(e.previous) && w.selector(e.previous);
      if (before && now) send('MODIFIED', e.object);
      else if (before) send('DELETED', e.object);
      else if (now) send('ADDED', e.object);
    } else if (now) send(e.type, e.object);
  };

  const rvParam = w.resourceVersion;
  let backlog: StoreEvent[];
  if (rvParam === '' || rvParam === '0') {
    const { items, rv } = store.list(w.resource, w.namespace, w.selector);
    backlog = [];
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    for (const item of items) send('ADDED', item);
    lastSent = rv;
  } else {
    const from = Number(rvParam);
    const events = Number.isInteger(from) ? store.since(from) : undefined;
    if (events === undefined) {
      const message = Number.isInteger(from)
        ? `too old resource version: ${rvParam} (${store.oldestRv()})`
        : `invalid resource version: ${JSON.stringify(rvParam)}`;
      const status = statusBody(410, 'Expired', message);
      if (w.goneAs === 'http' || !Number.isInteger(from)) {
        res.writeHead(Number.isInteger(from) ? 410 : 400, { 'Content-Type': 'application/json' }).end(JSON.stringify(status));
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ type: 'ERROR', object: status }) + '\n');
      }
      cleanup();
      return { id: w.id, resource: w.resource.plural, drop: () => {}, stall: () => {}, end: () => {}, closed };
    }
    backlog = events;
    lastSent = from;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  }
  res.flushHeaders();
  for (const e of backlog) deliver(e);
  unsubscribe = store.subscribe(deliver);

  if (w.allowBookmarks && w.bookmarkIntervalMs > 0) {
    const tick = (): void => {
      bookmark();
      timers.push(setTimeout(tick, w.bookmarkIntervalMs).unref());
    };
    timers.push(setTimeout(tick, w.bookmarkIntervalMs).unref());
  }
  timers.push(
    setTimeout(() => {
      if (stalled || res.writableEnded) return;
      if (w.allowBookmarks) bookmark();
      res.end();
    }, w.timeoutMs).unref(),
  );

  return {
    id: w.id,
    resource: w.resource.plural,
    drop: () => {
      req.socket.destroy();
      cleanup();
    },
    stall: () => {
      stalled = true;
    },
    end: () => {
      res.end();
    },
    closed,
  };
}
