// The compiled route: what the data plane reads about a route, every policy resolved by the builder (src/dag).
// Defaults are applied, times are in ms, names that are matched case-insensitively are lower-cased, CIDRs and
// key material are parsed and validated. An absent feature is explicit: `undefined` means "off" only where the
// field says so; nothing here is left for a reader to default.
//
// Data only, and structured-cloneable: with --workers the primary ships the Snapshot to the workers over
// node:cluster IPC ('advanced' serialization). So no KeyObject (v8.serialize cannot clone host objects) and no
// class instances: key material is kept in a canonical serializable form, and a policy builds its own runtime
// object from it once per compiled route object.
import type { Cidr } from '../util/cidr.ts';
import type { LlmRoute } from '../llm/route.ts';
import type { JwtAlgorithm } from '../util/key-material.ts';

export type { JwtAlgorithm };

/** "namespace/name", made only by objectKey(). */
export type ObjectKey = `${string}/${string}`;

export interface Route {
  readonly key: ObjectKey;
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  /** Lower-case, as matched; empty: any host. For display (/debug); the match table routes. */
  readonly hostnames: readonly string[];
  readonly rules: readonly Rule[];
  readonly balance: BalancePolicy;
  readonly affinity: SessionAffinity;
  readonly upstream: UpstreamPolicy;
  readonly limits: Limits;
  readonly heartbeat: Heartbeat;
  readonly idle: IdlePolicy;
  readonly drain: DrainPolicy;
  /** undefined: plain HTTP requests get 426. */
  readonly httpFallback: HttpFallback | undefined;
  readonly auth: Auth;
  /** undefined: any origin (allowedOrigins unset or empty). */
  readonly origins: OriginPolicy | undefined;
  /** undefined: any client address. */
  readonly clientIps: ClientIpPolicy | undefined;
  readonly rateLimit: RateLimitPolicy;
  /** undefined: no active health checks. */
  readonly healthCheck: HealthCheck | undefined;
  /** undefined: passive ejection off (maxEjectionPercent 0). */
  readonly outlier: OutlierPolicy | undefined;
  /** Always there: without circuitBreaker its limits are unset (the process default for pending handshakes applies). */
  readonly breaker: BreakerPolicy;
}

export interface Rule {
  readonly index: number;
  readonly backends: readonly Backend[];
  /** A rule that fronts model providers: the upgrade is answered by wsgate, not relayed (docs/llm.md). */
  readonly llm?: LlmRoute;
  /** Absent: the client's headers go upstream as they are (no rewrite, nothing to do per connection). */
  readonly requestHeaders?: RequestHeaderRewrite;
}

/** One header the rewrite writes: the name as the route spells it (sent so) and lower-cased (compared). */
export interface RewrittenHeader {
  readonly name: string;
  readonly lower: string;
  readonly value: string;
}

/**
 * A rule's requestHeaders, resolved: duplicates (case-insensitive) dropped with the first entry kept, and
 * set, add and remove folded into three lists the forwarding loop reads in one pass. Order: remove, then set,
 * then add (an add of a name the rule also sets appends to the set value).
 */
export interface RequestHeaderRewrite {
  /** Lower-case names of the client's headers left out: those removed and those set (set replaces them). */
  readonly drop: readonly string[];
  /** Written after the client's headers: every set (with an add of the same name joined by ","). */
  readonly put: readonly RewrittenHeader[];
  /** Adds of names not set: appended with "," to the client's last header of that name, or sent as a header
   *  of its own when the client sent none (or the rule removes it). */
  readonly append: readonly RewrittenHeader[];
}

/**
 * Active takes new connections. NotReady (failing readiness, not terminating: a flap) takes none and keeps the
 * ones it has. Draining (terminating, still serving) has its connections closed with 1012 paced over the
 * route's drain window and takes new ones only when its backend has nothing Active. Gone endpoints (removed,
 * or terminating and no longer serving) are never published: a connection whose endpoint was Draining is
 * closed with 1012 at once, any other is drained paced.
 */
export type EndpointState = 'Active' | 'NotReady' | 'Draining';

export interface Endpoint {
  /** Identity across snapshots: `${origin}|${address}`, origin = "svc:ns/name" or "static". */
  readonly key: string;
  /** "host:port" ("[v6]:port" for IPv6) as dialled. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly state: EndpointState;
  readonly zone?: string;
  readonly podName?: string;
}

export interface Backend {
  /** "svc:ns/name:port" for a Service, "static:ns/route/rule/ref" for static endpoints. */
  readonly id: string;
  readonly weight: number;
  /** False when the Service or port is missing: connections to it get 503. */
  readonly resolved: boolean;
  /** Sorted by address, deduplicated. */
  readonly endpoints: readonly Endpoint[];
}

export type LoadBalancerPolicy = 'LeastConnections' | 'RoundRobin' | 'ConsistentHash';

export interface BalancePolicy {
  readonly policy: LoadBalancerPolicy;
  /** Hash picks with bounded load; undefined: strict (the same key always reaches the same Active endpoint). */
  readonly boundedLoadFactor: number | undefined;
}

export type SameSite = 'Lax' | 'Strict' | 'None';

export interface AffinityCookie {
  readonly name: string;
  /** 0: a session cookie (no Max-Age). */
  readonly ttlSeconds: number;
  readonly path: string;
  /** Always true with sameSite None (browsers drop SameSite=None without Secure). */
  readonly secure: boolean;
  readonly sameSite: SameSite;
}

export type SessionAffinity =
  | { readonly type: 'None' }
  | { readonly type: 'Cookie'; readonly cookie: AffinityCookie }
  /** name: lower-case, as Node hands header names over. */
  | { readonly type: 'Header'; readonly name: string }
  | { readonly type: 'QueryParam'; readonly name: string }
  | { readonly type: 'ClientIP' }
  | { readonly type: 'JwtClaim'; readonly claim: string };

/** Where the CA that verifies a wss upstream comes from. */
export type UpstreamCa =
  | { readonly kind: 'system' }
  | { readonly kind: 'bundle'; readonly pem: string }
  /** A CA was named but did not resolve: the route refuses rather than trusting the system roots. */
  | { readonly kind: 'unresolved' };

export interface UpstreamTls {
  /** False only with insecureSkipVerify. */
  readonly verify: boolean;
  readonly serverName: string | undefined;
  readonly ca: UpstreamCa;
}

export interface UpstreamPolicy {
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxConnectAttempts: number;
  /** undefined: ws:// (plain TCP). */
  readonly tls: UpstreamTls | undefined;
}

export interface Limits {
  readonly maxMessageBytes: number;
  /** undefined: no limit. */
  readonly maxConnections: number | undefined;
  readonly maxConnectionsPerIP: number | undefined;
  /** Per principal (JWT claim or API key id); undefined: no limit. */
  readonly maxConnectionsPerPrincipal: number | undefined;
  readonly compression: 'Allow' | 'Refuse';
}

export interface Heartbeat {
  /** 0: no heartbeats. */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly pingUpstream: boolean;
}

export interface IdlePolicy {
  /** 0: no idle timeout. */
  readonly timeoutMs: number;
  readonly pingsAreActivity: boolean;
}

export interface DrainPolicy {
  readonly windowMs: number;
}

export interface HttpFallback {
  readonly timeoutMs: number;
}

export interface Auth {
  /** undefined: no JWT check. */
  readonly jwt: JwtAuth | undefined;
  /** undefined: no API key check. */
  readonly apiKey: ApiKeyAuth | undefined;
}

/** Where a token is read; name resolved (Authorization for a header, access_token for the others). */
export interface TokenSource {
  readonly type: 'Header' | 'Query' | 'Cookie' | 'Subprotocol';
  readonly name: string;
}

/**
 * A validated JWT verification key. PEM keys and certificates are reduced to the SPKI public key; the HMAC
 * secret is base64 of its bytes (trailing newline removed); a JWKS keeps its JWKs (each one imports).
 */
export type JwtKeyMaterial =
  | { readonly kind: 'spki'; readonly pem: string }
  | { readonly kind: 'jwks'; readonly keys: readonly Readonly<Record<string, unknown>>[] }
  | { readonly kind: 'hmac'; readonly secretBase64: string };

export type JwtKey =
  | { readonly kind: 'remote'; readonly jwksUrl: string }
  | { readonly kind: 'static'; readonly material: JwtKeyMaterial }
  /** The Secret or file is missing or does not parse (the route's status says which): 503 auth_unavailable. */
  | { readonly kind: 'unresolved' };

export interface JwtAuth {
  readonly key: JwtKey;
  /** What tokens may be signed with: the configured list narrowed to what the key can verify; empty: none. */
  readonly algorithms: readonly JwtAlgorithm[];
  readonly issuer: string | undefined;
  /** Empty: the audience is not checked. */
  readonly audiences: readonly string[];
  readonly clockSkewMs: number;
  readonly tokenSources: readonly TokenSource[];
  readonly requiredClaims: readonly { readonly name: string; readonly values: readonly string[] }[];
  readonly forwardClaims: readonly { readonly claim: string; readonly header: string }[];
  readonly forwardToken: boolean;
  /** The claim that names the principal of per-principal limits and revocation. */
  readonly principalClaim: string;
  readonly requireExpiry: boolean;
  readonly closeOnExpiry: boolean;
}

export interface ApiKeyAuth {
  /** As written (it is named in the WWW-Authenticate challenge); undefined: keys are not read from a header. */
  readonly header: string | undefined;
  readonly queryParam: string | undefined;
  /** sha256 (hex) of each accepted key, sorted; undefined: the Secret or file is missing (503 auth_unavailable). */
  readonly hashes: readonly string[] | undefined;
}

export interface OriginPolicy {
  /** Lower-case patterns: exact origins, "scheme://*.suffix" or "*". Never empty. */
  readonly allowed: readonly string[];
  readonly allowMissing: boolean;
}

export interface ClientIpPolicy {
  /** undefined: every address not denied is admitted. */
  readonly allow: readonly Cidr[] | undefined;
  readonly deny: readonly Cidr[];
}

export interface MessageRate {
  readonly sides: readonly ('client' | 'upstream')[];
  /** undefined: messages are not counted. */
  readonly messagesPerSecond: number | undefined;
  readonly messageBurst: number;
  /** undefined: bytes are not counted. */
  readonly bytesPerSecond: number | undefined;
  readonly byteBurst: number;
  readonly onExceed: 'Close' | 'Throttle';
}

export interface RateLimitPolicy {
  /** undefined: new connections are not rate limited. */
  readonly connectionsPerMinutePerIP: number | undefined;
  /** undefined: a principal's new connections are not rate limited. */
  readonly connectionsPerMinutePerPrincipal: number | undefined;
  /** undefined: messages and bytes are not rate limited. */
  readonly messages: MessageRate | undefined;
}

export interface HealthCheck {
  readonly type: 'HTTP' | 'TCP' | 'WebSocket';
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Probes over TLS (wss upstreams) with this SNI; undefined: plain TCP. */
  readonly tls: { readonly serverName: string | undefined } | undefined;
}

export interface OutlierPolicy {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
}

export interface BreakerPolicy {
  /** undefined: the process default (--max-pending-handshakes-per-backend). */
  readonly maxPendingHandshakes: number | undefined;
  readonly maxConnections: number | undefined;
  /** undefined: only the capacity limits trip the circuit. */
  readonly consecutiveFailures: number | undefined;
  readonly openMs: number;
}
