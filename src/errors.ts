// Every failure wsgate puts on the wire, with its meaning before the upgrade (HTTP status + wsgate-reason)
// and after it (close code). The README's status and close-code tables are the contract; proxy/handshake/refusal.ts and the relay are the only places
// that turn these into bytes.

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  /** A compressed message that does not inflate (RFC 6455 §7.4.1: data inconsistent with its type). */
  InvalidPayload: 1007,
  NoStatus: 1005,
  Abnormal: 1006,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  /** "Bad gateway": the upstream failed abnormally. */
  UpstreamFailed: 1014,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

export interface WireError {
  /** Stable machine-readable reason: the wsgate-reason header and the `reason` metric label. */
  readonly reason: string;
  readonly httpStatus: number;
  readonly closeCode: number;
}

export class WsgateError extends Error implements WireError {
  readonly reason: string;
  readonly httpStatus: number;
  readonly closeCode: number;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    reason: string,
    httpStatus: number,
    closeCode: number,
    message: string,
    opts: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'WsgateError';
    this.reason = reason;
    this.httpStatus = httpStatus;
    this.closeCode = closeCode;
    this.headers = opts.headers ?? {};
  }
}

const make =
  (reason: string, status: number, close: number, defaultMessage: string) =>
  (message = defaultMessage, opts?: { headers?: Record<string, string>; cause?: unknown }) =>
    new WsgateError(reason, status, close, message, opts);

/** The catalogue: one constructor per failure. */
export const Errors = {
  badHandshake: make('bad_handshake', 400, CloseCode.ProtocolError, 'malformed WebSocket handshake'),
  smuggling: make('request_smuggling', 400, CloseCode.ProtocolError, 'upgrade request with a body'),
  badHost: make('bad_host', 400, CloseCode.ProtocolError, 'missing, duplicate or malformed Host'),
  badPath: make('bad_path', 400, CloseCode.ProtocolError, 'request path refused'),
  ambiguousCredentials: make('ambiguous_credentials', 400, CloseCode.PolicyViolation, 'more than one distinct credential'),
  unauthorized: make('unauthorized', 401, CloseCode.PolicyViolation, 'authentication required'),
  forbiddenOrigin: make('origin_not_allowed', 403, CloseCode.PolicyViolation, 'origin not allowed'),
  forbiddenIP: make('client_ip_not_allowed', 403, CloseCode.PolicyViolation, 'client address not allowed'),
  forbiddenClaims: make('claims_not_allowed', 403, CloseCode.PolicyViolation, 'token claims not allowed'),
  noRoute: make('no_route', 404, CloseCode.PolicyViolation, 'no route matches'),
  handshakeTimeout: make('handshake_timeout', 408, CloseCode.ProtocolError, 'handshake took too long'),
  headersTooLarge: make('headers_too_large', 431, CloseCode.ProtocolError, 'request headers too large'),
  upgradeRequired: make('upgrade_required', 426, CloseCode.ProtocolError, 'WebSocket upgrade required'),
  badVersion: make('unsupported_version', 426, CloseCode.ProtocolError, 'unsupported Sec-WebSocket-Version'),
  rateLimited: make('rate_limited', 429, CloseCode.PolicyViolation, 'too many connections'),
  connectionLimit: make('connection_limit', 429, CloseCode.TryAgainLater, 'too many concurrent connections'),
  // Security and limits.
  routeFull: make('route_connection_limit', 503, CloseCode.TryAgainLater, 'route connection limit reached'),
  authUnavailable: make('auth_unavailable', 503, CloseCode.TryAgainLater, 'credentials cannot be checked right now'),
  messageRate: make('message_rate', 429, CloseCode.PolicyViolation, 'message rate limit exceeded'),
  upstreamRefused: make('upstream_refused', 502, CloseCode.UpstreamFailed, 'upstream refused the connection'),
  upstreamBadHandshake: make('upstream_bad_handshake', 502, CloseCode.UpstreamFailed, 'upstream broke the handshake'),
  upstreamTimeout: make('upstream_timeout', 504, CloseCode.UpstreamFailed, 'upstream connect timed out'),
  noEndpoint: make('no_endpoint', 503, CloseCode.TryAgainLater, 'no endpoint can take the connection'),
  backendNotFound: make('backend_not_found', 503, CloseCode.TryAgainLater, 'backend not resolved'),
  circuitOpen: make('circuit_open', 503, CloseCode.TryAgainLater, 'backend circuit open'),
  shuttingDown: make('shutting_down', 503, CloseCode.ServiceRestart, 'proxy shutting down'),
  overloaded: make('overloaded', 503, CloseCode.TryAgainLater, 'too many handshakes in flight'),
  // Cluster-wide state (Redis).
  revoked: make('revoked', 403, CloseCode.PolicyViolation, 'access revoked'),
  limitsUnavailable: make('limits_unavailable', 503, CloseCode.TryAgainLater, 'connection limits cannot be checked right now'),
} as const;

/** Config and validation problems: never on the wire; the CLI prints them and exits non-zero. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(message: string, problems: readonly ConfigProblem[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ConfigProblem {
  readonly file?: string;
  /** 1-based index of the YAML document in its file. */
  readonly document?: number;
  /** JSON pointer-ish path, e.g. spec.rules[0].backendRefs[1].port */
  readonly path: string;
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = [p.file, p.document !== undefined ? `document ${p.document}` : undefined].filter(Boolean).join(' ');
  return `${where ? where + ': ' : ''}${p.path || '(root)'}: ${p.message}`;
}

/** Codes of the wsgate.llm.v1 `error` message: per request, on an open socket (docs/llm.md is the contract). */
export const LlmErrorCode = {
  /** Bad JSON, unknown type, missing field, a parameter not allowed or out of the route's range. */
  badRequest: 'bad_request',
  tooLarge: 'message_too_large',
  duplicateId: 'duplicate_id',
  unknownModel: 'unknown_model',
  /** `continues` names no conversation this connection keeps (never seen, not finished, evicted, or state is off
   *  on the route): the client resends the whole conversation. */
  unknownConversation: 'unknown_conversation',
  /** Over a per-connection or per-principal concurrency limit, requests/min or tokens/min: retryAfterMs says when. */
  rateLimited: 'rate_limited',
  /** Every provider that serves the model failed before its first token. */
  upstreamUnavailable: 'upstream_unavailable',
  /** The provider failed after streaming began (no fallback then). */
  upstreamError: 'upstream_error',
  timeout: 'timeout',
  cancelled: 'cancelled',
  draining: 'draining',
} as const;
export type LlmErrorCode = (typeof LlmErrorCode)[keyof typeof LlmErrorCode];
