// Session affinity: which endpoint a request belongs to, per sessionAffinity.type. Cookie names an endpoint
// (signed, see cookie.ts); Header, QueryParam, ClientIP and JwtClaim give a key that rendezvous hashing maps to
// an endpoint, the same on every replica. Strict by default: the same key reaches the same Active endpoint every
// time, because Socket.IO and other stateful apps break when a session moves; a hot key spills to its next
// endpoint only when the route opts into bounded load (loadBalancer.boundedLoadFactor), as HAProxy's
// hash-balance-factor and Envoy's ring hash ship it off. Affinity only ever chooses among the
// balancer's candidates, so a Draining (while others are Active), ejected or Gone endpoint is never chosen:
// the request gets a fresh pick, and Cookie a fresh cookie.
import type { Backend, Endpoint, Route, Rule } from '../../../model/snapshot.ts';
import { policyPick, type BalancerState } from '../balancer.ts';
import { boundedPick, hash32, preference } from '../consistent-hash.ts';
import type { UpgradeRequest } from '../../handshake/head.ts';
import { readCookie, setCookieValue, type CookieSigner } from './cookie.ts';

export interface AffinityRequest {
  readonly route: Route;
  readonly req: UpgradeRequest;
  readonly clientIp: string;
  readonly secure: boolean;
  readonly claims?: Readonly<Record<string, unknown>>;
}

export interface AffinityChoice {
  /** For PickOptions.random: the weighted backend choice of a rule with several backends must follow the
   *  session too (the same backend for the same key on every replica; the cookie's backend). */
  random(rule: Rule): number;
  /** For PickOptions.hashPick. */
  hashPick(candidates: readonly Endpoint[], backend: Backend): Endpoint | undefined;
  /** The Set-Cookie value to send with the answer for the endpoint finally used, if the client needs one. */
  setCookie(endpoint: Endpoint): string | undefined;
}

/** Whether requests on this route need an affinity choice at all (None with another policy: plain balancing). */
export function usesAffinity(route: Route): boolean {
  return route.affinity.type !== 'None' || route.balance.policy === 'ConsistentHash';
}

/** The hashing key of a request, or undefined when it carries none (the policy decides then). */
export function sessionKey(r: AffinityRequest): string | undefined {
  const a = r.route.affinity;
  switch (a.type) {
    case 'Header': {
      const v = r.req.headers[a.name];
      const s = Array.isArray(v) ? v.join(',') : v;
      return s ? `h:${s}` : undefined;
    }
    case 'QueryParam': {
      const url = r.req.url ?? '/';
      const q = url.indexOf('?');
      const v = q >= 0 ? new URLSearchParams(url.slice(q + 1)).get(a.name) : null;
      return v ? `q:${v}` : undefined;
    }
    case 'JwtClaim': {
      // Claims exist once the route's auth verified a token; without them the policy decides.
      const v = r.claims?.[a.claim];
      if (v === undefined || v === null || v === '') return undefined;
      return `j:${typeof v === 'string' ? v : JSON.stringify(v)}`;
    }
    case 'ClientIP':
    case 'None':
      // None reaches here only under policy ConsistentHash, which hashes the client address.
      return r.clientIp ? `ip:${r.clientIp}` : undefined;
    case 'Cookie':
      return undefined;
  }
}

export class Affinity {
  readonly #signer: CookieSigner;
  readonly #balancer: BalancerState;

  constructor(o: { signer: CookieSigner; balancer: BalancerState }) {
    this.#signer = o.signer;
    this.#balancer = o.balancer;
  }

  choose(r: AffinityRequest): AffinityChoice {
    const { policy, boundedLoadFactor: factor } = r.route.balance;
    const affinity = r.route.affinity;
    const load = (key: string) => this.#balancer.active.get(key) ?? 0;
    if (affinity.type !== 'Cookie') {
      const key = sessionKey(r);
      return {
        random: () => (key === undefined ? Math.random() : hash32(key, 0x5bd1e995) / 0x100000000),
        hashPick: (candidates) => {
          if (key === undefined) return undefined;
          return factor === undefined ? preference(key, candidates)[0] : boundedPick(key, candidates, load, factor);
        },
        setCookie: () => undefined,
      };
    }
    const c = affinity.cookie;
    const attrs = { ...c, secure: c.secure || r.secure };
    const presented = readCookie(r.req.headers.cookie, attrs.name);
    return {
      random: (rule) => this.#cookieBackendPoint(rule, presented),
      // A cookie is honoured even above the load bound: a session's state lives on that pod. A fresh pick
      // follows the route's policy (ConsistentHash has no key yet: least connections).
      hashPick: (candidates, backend) =>
        this.#signer.find(presented, candidates) ??
        policyPick(candidates, policy === 'ConsistentHash' ? 'LeastConnections' : policy, this.#balancer, backend.id),
      // A cookie that expires (Max-Age) is renewed on every handshake that presents it, a sliding expiry: a user
      // active for longer than ttlSeconds keeps the session's pod. A session cookie (ttl 0) needs no renewal.
      setCookie: (endpoint) => {
        const id = this.#signer.idFor(endpoint);
        return id === presented && attrs.ttlSeconds === 0 ? undefined : setCookieValue(attrs, id);
      },
    };
  }

  /** A point in [0, 1) that the balancer's weighted walk maps to the backend holding the cookie's endpoint. */
  #cookieBackendPoint(rule: Rule, presented: string | undefined): number {
    if (presented === undefined || rule.backends.length < 2) return Math.random();
    const eligible = rule.backends.filter((b) => b.resolved && b.weight > 0 && b.endpoints.length > 0);
    const total = eligible.reduce((n, b) => n + b.weight, 0);
    let before = 0;
    for (const b of eligible) {
      if (this.#signer.find(presented, b.endpoints)) return (before + b.weight / 2) / total;
      before += b.weight;
    }
    return Math.random();
  }
}
