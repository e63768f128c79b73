// Extension points of the proxy, filled by policy/ (admission), health/ and the affinity work, so the
// handshake path stays one readable sequence and each concern lives in its own module.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { WsgateError } from '../errors.ts';
import type { Backend, Endpoint } from '../model/snapshot.ts';
import type { Pick, PickOptions } from './balance/balancer.ts';
import type { LiveConnection } from './connections.ts';
import type { Correlation } from './handshake/forward-headers.ts';
import type { Relay, RelayEnd } from './relay/relay.ts';
import type { RouteMatch } from './router.ts';
import type { UpgradeRequest } from './handshake/head.ts';
import type { UpstreamTls } from './upstream/dial.ts';

/**
 * One handshake in progress; admission checks may add forwarding changes and response headers. An upgrade's
 * request is what the upgrade front parsed (or Node's IncomingMessage when Node's parser took it); an HTTP
 * fallback request is always an IncomingMessage, whose body the fallback streams.
 */
export interface HandshakeContext<R extends UpgradeRequest = UpgradeRequest> {
  readonly req: R;
  readonly socket: Socket;
  readonly match: RouteMatch;
  /** From the socket, or from X-Forwarded-For when the socket is a trusted proxy. */
  clientIp: string;
  readonly secure: boolean;
  /** Tracing replaces the traceparent before each connect attempt with that attempt's span context. */
  correlation: Correlation;
  trustForwarded?: boolean;
  /** drop/extra: headers to strip/add upstream; path: the request target sent upstream when a check removed a
   *  credential from the query (default: req.url). */
  readonly forward: { drop: Set<string>; extra: string[]; path?: string };
  /** Extra headers on the 101 (rawHeaders form), e.g. Set-Cookie for affinity. */
  readonly responseHeaders: string[];
  /** Affinity and health shape the endpoint choice. */
  pick: Omit<PickOptions, 'exclude'>;
  upstreamTls?: UpstreamTls;
  /** Sec-WebSocket-Protocol for the 101 when the upstream selected none: the client offered a token through
   *  its subprotocol list (which the upstream never saw), and a client that offered protocols needs one back. */
  subprotocolFallback?: string;
  /** Verified token claims, for JwtClaim affinity and claim forwarding. */
  claims?: Readonly<Record<string, unknown>>;
  /** Who the credentials name (the JWT principal claim, or "apikey:" and the key id): per-principal budgets and
   *  revocation. */
  principal?: string;
}

/** Which connect attempt an upstreamResult reports (health). aborted: the client left before the upstream answered,
 *  so the outcome says nothing about the endpoint. */
export interface UpstreamAttemptInfo {
  readonly ctx: HandshakeContext;
  readonly backend: Backend;
  readonly aborted: boolean;
}

export type AdmissionCheck = (ctx: HandshakeContext) => WsgateError | undefined | Promise<WsgateError | undefined>;

export interface HttpFallbackContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly match: RouteMatch;
  readonly clientIp: string;
  /** The normalized request target when it differs from req.url: what goes upstream. */
  readonly path?: string;
}

export interface ProxyHooks {
  /** Run in order before an endpoint is chosen; the first error refuses the upgrade. */
  readonly admission?: readonly AdmissionCheck[];
  /** Before each connect attempt (health: pending handshakes per backend, the half-open probe). */
  readonly upstreamAttempt?: (ctx: HandshakeContext, pick: Pick) => void;
  /** Passive health: every connect/handshake outcome per endpoint, one per upstreamAttempt. */
  readonly upstreamResult?: (endpoint: Endpoint, ok: boolean, attempt?: UpstreamAttemptInfo) => void;
  /** After the 101: heartbeats, rate limits. */
  readonly established?: (ctx: HandshakeContext, conn: LiveConnection, relay: Relay) => void;
  /** The relay has ended (both sockets closed): heartbeats stop watching the connection. */
  readonly ended?: (conn: LiveConnection, end: RelayEnd) => void;
  /** Rules with `llm`: after admission, wsgate answers the upgrade itself and serves the socket (src/llm). */
  readonly llm?: (ctx: HandshakeContext, head: Buffer) => void;
  /** Non-upgrade requests on routes with httpFallback.enabled. */
  readonly httpFallback?: (ctx: HttpFallbackContext) => void;
}
