// A list read in pages (`limit` and `continue`, as client-go's reflector reads it), as plain JSON. client-node
// reads a list in one response and turns every item into class instances (ObjectSerializer) in one go: at 5,000
// EndpointSlices that is one turn of the loop of over a second, every relist after a 410, on the loop that relays
// every frame. A page is parsed on its own, so each page costs its share, and the pages' round trips leave the
// loop free in between.
// Paging: https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks
import http from 'node:http';
import https from 'node:https';
import type { RawObject } from './kube-client.ts';

/**
 * Objects per page. client-go's pager asks for 500 (k8s.io/client-go/tools/pager, defaultPageSize), which suits
 * the server; here a page is parsed on the loop that relays every frame, and a page of 500 EndpointSlices held it
 * 5–10 ms (measured in bench/scale-k8s-churn.ts's relist phase). 100 keeps each page near a millisecond, for
 * five times the requests of a relist, which happens rarely.
 */
export const listPageSize = 100;

/** What a request needs from the kubeconfig: the agent (TLS material) and headers (credentials). */
export type RequestAuth = () => Promise<{ readonly agent?: http.Agent | undefined; readonly headers: Record<string, string> }>;

/** A GET that failed: the HTTP status (0: no answer) and the API's Status, when it sent one. */
export interface GetFailure {
  readonly kind: 'get-failure';
  readonly status: number;
  readonly reason?: string;
  readonly message: string;
}

interface ListPage {
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
  readonly items?: readonly RawObject[];
}

/**
 * Reads the list at `url` page by page, handing each page's items to `onPage` as it arrives. Resolves with the
 * list's resourceVersion (every page is of the same snapshot), to watch from. Rejects with a GetFailure; a
 * continue token that expired meanwhile is a 410, as a watch from a compacted version is, and the caller lists
 * again from the start.
 */
export async function listPaged(
  url: URL,
  auth: RequestAuth,
  signal: AbortSignal,
  pageTimeoutMs: number,
  turns: PageTurns,
  onPage: (items: readonly RawObject[]) => void,
): Promise<string> {
  let token: string | undefined;
  for (;;) {
    const page = new URL(url);
    page.searchParams.set('limit', String(listPageSize));
    if (token) page.searchParams.set('continue', token);
    const text = await getText(page, auth, AbortSignal.any([signal, AbortSignal.timeout(pageTimeoutMs)]));
    await turns.next();
    signal.throwIfAborted();
    const body = parse(text) as ListPage;
    onPage(body.items ?? []);
    token = body.metadata?.continue || undefined;
    if (!token) return body.metadata?.resourceVersion ?? '';
  }
}

export function isGetFailure(err: unknown): err is GetFailure {
  return (err as GetFailure | undefined)?.kind === 'get-failure';
}

/**
 * One list page parsed and handed on per turn of the loop, across every list of a client. Informers list
 * together (at startup, and all of them after a compaction), their pages arrive together, and parsed back to back
 * in one turn they add up to a stall that one page alone is not.
 */
export class PageTurns {
  #last: Promise<void> = Promise.resolve();

  /** Resolves in a turn of the loop of its own: after the turn of the page before it, and after that turn's I/O. */
  next(): Promise<void> {
    const turn = this.#last.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.#last = turn;
    return turn;
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw { kind: 'get-failure', status: 200, message: 'the list page is not JSON' } satisfies GetFailure;
  }
}

/** The body of a 200 answer, as text; any other answer is a GetFailure with the API's Status when it sent one. */
async function getText(url: URL, auth: RequestAuth, signal: AbortSignal): Promise<string> {
  const { agent, headers } = await auth();
  return new Promise((resolve, reject) => {
    const fail = (status: number, message: string, reason?: string) => reject({ kind: 'get-failure', status, message, ...(reason ? { reason } : {}) } satisfies GetFailure);
    const get = url.protocol === 'https:' ? https.get : http.get;
    const req = get(url, { headers: { ...headers, accept: 'application/json' }, signal, ...(agent ? { agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => fail(0, err.message));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const code = res.statusCode ?? 0;
        if (code === 200) return resolve(text);
        let status: { reason?: string; message?: string } | undefined;
        try {
          status = JSON.parse(text) as typeof status;
        } catch {
          status = undefined;
        }
        fail(code, status?.message ?? `HTTP ${code}`, status?.reason);
      });
    });
    req.on('error', (err) => fail(0, err.message));
  });
}
