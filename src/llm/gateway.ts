// The proxy's hook for rules with `llm`: after the route's admission checks (auth, origin, IP, rate limits)
// have passed, wsgate answers the upgrade itself and serves the socket with an LlmSession. Limits are kept per
// rule across snapshots while the rule's limits stay the same, so a config reload does not reset budgets.
// Provider connection pools (provider-pools.ts) follow the routing table: held while the table or a socket
// admitted under an older table uses them.
import type { IncomingMessage } from 'node:http';
import type { Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import { mapChanges } from '../model/chunked-map.ts';
import type { SnapshotHolder } from '../model/holder.ts';
import type { Route, Snapshot } from '../model/snapshot.ts';
import type { HandshakeContext } from '../proxy/hooks.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { Clock, ClockTimer } from '../util/clock.ts';
import { PrincipalLimits } from './limits.ts';
import { LlmMetrics } from './metrics.ts';
import type { LlmSessionObserver } from './observer.ts';
import { LLM_SUBPROTOCOL } from './protocol.ts';
import { ProviderPools } from './provider-pools.ts';
import type { LlmRoute } from './route.ts';
import { LlmSession } from './session.ts';

/** The schema's bound on maxMessageBytes: larger frames are refused by ws itself (1009); smaller ones over the
 *  route's own bound get a message_too_large error from the session. */
const MAX_FRAME = 16 * 1024 * 1024;

export interface LlmGatewayOptions {
  readonly clock: Clock;
  readonly registry: Registry;
  readonly log: Logger;
  /** How long close() waits for the clients to answer its close frames before it drops their sockets. */
  readonly closeTimeoutMs: number;
  /** The routing table: provider pools the table no longer names are closed (once no socket uses them). */
  readonly holder?: SnapshotHolder;
  /** Tracing: called once the upgrade is answered; undefined (not traced) makes the session observe nothing. */
  readonly observe?: (ctx: HandshakeContext) => LlmSessionObserver | undefined;
}

/** Who the limits count against: the principal the admission found (the route's JWT principal claim, or
 *  `apikey:` and the key's id), the same one every other per-principal budget counts, else the client address. */
export function principalOf(ctx: HandshakeContext): string {
  return ctx.principal ?? `ip:${ctx.clientIp}`;
}

export class LlmGateway {
  readonly #o: LlmGatewayOptions;
  readonly #metrics: LlmMetrics;
  readonly #wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME,
    handleProtocols: (offered) => (offered.has(LLM_SUBPROTOCOL) ? LLM_SUBPROTOCOL : false),
  });
  readonly #limits = new Map<string, { readonly config: string; readonly limits: PrincipalLimits }>();
  readonly #sessions = new Set<LlmSession>();
  readonly #emptyWaiters: (() => void)[] = [];
  readonly #pools = new ProviderPools();
  readonly #unsubscribe: () => void;
  #draining = false;

  constructor(o: LlmGatewayOptions) {
    this.#o = o;
    this.#metrics = new LlmMetrics(o.registry);
    const cur = o.holder?.current();
    if (cur) this.#pools.sync(llmRoutes(cur));
    this.#unsubscribe =
      o.holder?.onSwap((next, prev) => {
        if (!prev || llmChanged(next, prev)) this.#pools.sync(llmRoutes(next));
      }) ?? (() => {});
  }

  /** Provider connection pools open now. */
  get pools(): number {
    return this.#pools.size;
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  readonly handle = (ctx: HandshakeContext, head: Buffer): void => {
    const route = ctx.match.rule.llm;
    if (!route) return;
    const limits = this.#limitsFor(`${route.namespace}/${route.name}/${ctx.match.rule.index}`, route);
    // ws reads method, url and headers; the upgrade front's request carries them as IncomingMessage does.
    this.#wss.handleUpgrade(ctx.req as IncomingMessage, ctx.socket, head, (ws) => {
      const observer = this.#o.observe?.(ctx);
      const lease = this.#pools.lease(route);
      const session = new LlmSession(ws, principalOf(ctx), { route, clock: this.#o.clock, limits, metrics: this.#metrics, log: this.#o.log, http: lease, ...(observer ? { observer } : {}) });
      this.#sessions.add(session);
      ws.once('close', () => {
        lease.release();
        this.#forget(session);
      });
      if (this.#draining) session.drain();
      // The upgrade front hands sockets over paused (nothing is read until a reader listens); ws listens now.
      ctx.socket.resume();
    });
  };

  /** In-flight requests finish, new ones get `draining`, each socket closes with 1012 when it has none left.
   *  Resolves when every LLM socket has closed. */
  drain(): Promise<void> {
    this.#draining = true;
    for (const s of this.#sessions) s.drain();
    return this.#whenEmpty();
  }

  #whenEmpty(): Promise<void> {
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#emptyWaiters.push(resolve));
  }

  #forget(session: LlmSession): void {
    this.#sessions.delete(session);
    if (this.#sessions.size === 0) for (const w of this.#emptyWaiters.splice(0)) w();
  }

  /** Stops: sockets still open (past the drain window) are closed with their requests aborted (their spans are
   *  made as they close, before the tracer's last export), then every provider pool closes once its aborted
   *  requests have wound down. */
  async close(): Promise<void> {
    this.#unsubscribe();
    const { clock } = this.#o;
    for (const s of this.#sessions) s.close();
    let timer: ClockTimer | undefined;
    await Promise.race([this.#whenEmpty(), new Promise<void>((r) => (timer = clock.setTimeout(r, this.#o.closeTimeoutMs)))]);
    clock.clearTimeout(timer);
    for (const s of this.#sessions) s.terminate();
    for (const { limits } of this.#limits.values()) limits.close();
    this.#limits.clear();
    this.#wss.close();
    await this.#pools.close();
  }

  #limitsFor(key: string, route: LlmRoute): PrincipalLimits {
    const config = JSON.stringify(route.limits);
    const have = this.#limits.get(key);
    if (have && have.config === config) return have.limits;
    have?.limits.close();
    const limits = new PrincipalLimits(route.limits, this.#o.clock);
    this.#limits.set(key, { config, limits });
    return limits;
  }
}

function llmRoutes(s: Snapshot): LlmRoute[] {
  const out: LlmRoute[] = [];
  for (const r of s.routes.values()) for (const rule of r.rules) if (rule.llm) out.push(rule.llm);
  return out;
}

/** A route with an LLM rule came, went or changed: the pools follow the table only then, since walking every
 *  route of a large table on each swap is time the relay's loop does not have. */
function llmChanged(next: Snapshot, prev: Snapshot): boolean {
  const hasLlm = (r: Route | undefined) => r?.rules.some((rule) => rule.llm !== undefined) === true;
  return mapChanges(next.routes, prev.routes).some((c) => hasLlm(c.now) || hasLlm(c.before));
}
