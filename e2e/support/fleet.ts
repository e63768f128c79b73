// A fleet of real `ws` clients (default options) behind a "Service" of wsgate replicas: each client holds one
// session at a time, learns its backend from the greeting, and on 1012 (Service Restart) reconnects at once to
// a replica that is not shutting down. Every session's open and close are kept for the report.
import { WebSocket } from 'ws';

export interface Session {
  readonly client: number;
  readonly gateway: string;
  readonly backend: string;
  readonly ws: WebSocket;
  readonly openedAt: number;
  closed?: { code: number; at: number };
}

export class Fleet {
  readonly sessions: Session[] = [];
  /** Reconnects that failed (refused upgrade, connection error): a client left without a session. */
  readonly failures: string[] = [];
  readonly #current = new Map<number, Session>();
  #gateways: string[];
  #rr = 0;

  constructor(gateways: readonly string[]) {
    this.#gateways = [...gateways];
  }

  /** The replicas new connections go to (a terminating replica is taken out, as its Service endpoint would be). */
  setGateways(gateways: readonly string[]): void {
    this.#gateways = [...gateways];
  }

  current(client: number): Session | undefined {
    return this.#current.get(client);
  }

  open(): Session[] {
    return [...this.#current.values()].filter((s) => !s.closed);
  }

  /** n clients, `batch` handshakes at a time. */
  async connectMany(n: number, batch = 50): Promise<void> {
    for (let i = 0; i < n; i += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => this.connect(i + j)));
    }
  }

  async connect(client: number): Promise<Session> {
    const gateway = this.#gateways[this.#rr++ % this.#gateways.length]!;
    const ws = new WebSocket(`ws://${gateway}/chat`);
    const backend = await new Promise<string>((resolve, reject) => {
      ws.on('error', () => {});
      ws.once('message', (d: Buffer) => resolve(d.toString().replace('hello from ', '')));
      ws.once('close', (code: number) => reject(new Error(`closed ${code} before the greeting`)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    });
    const s: Session = { client, gateway, backend, ws, openedAt: performance.now() };
    this.sessions.push(s);
    this.#current.set(client, s);
    ws.once('close', (code: number) => {
      s.closed = { code, at: performance.now() };
      if (code === 1012) this.connect(client).catch((err: Error) => this.failures.push(`client ${client}: ${err.message}`));
    });
    return s;
  }

  /** Every client with an open session sends a message and must get it back; resolves to how many did. */
  async echoAll(): Promise<number> {
    const results = await Promise.all(this.open().map((s) => new Promise<boolean>((resolve) => {
      const text = `still here ${s.client}`;
      const onMessage = (d: Buffer) => d.toString() === text && (s.ws.off('message', onMessage), resolve(true));
      s.ws.on('message', onMessage);
      s.ws.once('close', () => resolve(false));
      s.ws.send(text);
    })));
    return results.filter(Boolean).length;
  }

  terminateAll(): void {
    for (const s of this.sessions) s.ws.terminate();
  }
}

/** Counts per close code, as an object for the JSON report. */
export function codeCounts(sessions: readonly Session[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sessions) {
    const k = s.closed ? String(s.closed.code) : 'open';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** How many of `times` fall in each tenth of `windowMs` from `start` (an 11th bucket holds any later). */
export function tenths(times: readonly number[], start: number, windowMs: number): number[] {
  const b = new Array<number>(11).fill(0);
  for (const t of times) b[Math.min(10, Math.max(0, Math.floor(((t - start) / windowMs) * 10)))]!++;
  return b;
}
