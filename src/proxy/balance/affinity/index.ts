// The affinity hooks main wires into the proxy: an admission step that shapes the endpoint choice (and adds
// the Set-Cookie to the 101), and the HTTP fallback that sends long-polling requests where the session lives.
import type { SnapshotHolder } from '../../../model/holder.ts';
import type { Logger } from '../../../telemetry/logger.ts';
import type { Metrics } from '../../../telemetry/metrics.ts';
import type { Clock } from '../../../util/clock.ts';
import type { BalancerState } from '../balancer.ts';
import { socketAddress } from '../../handshake/forward-headers.ts';
import type { AdmissionCheck, HandshakeContext, ProxyHooks } from '../../hooks.ts';
import { HttpFallback, type HttpFallbackOptions } from '../../http-fallback.ts';
import { Affinity, usesAffinity } from './affinity.ts';
import { TrustedProxies } from './client-ip.ts';
import { CookieSigner } from './cookie.ts';

export interface AffinityHooksOptions {
  /** --affinity-secret: the same value on every replica (from one Secret), or cookies stop being honoured
   *  across replicas and across restarts. */
  readonly secret?: string;
  /** Without a secret the key is derived from the class name (with a warning). */
  readonly className: string;
  readonly log: Logger;
  /** The proxy's balancer: the hooks pick with the same load counts as the proxy. */
  readonly balancer: BalancerState;
  /** The process's clock: the fallback's connect deadline runs on it. */
  readonly clock: Clock;
  readonly holder?: SnapshotHolder;
  readonly metrics?: Metrics;
  /** --trusted-proxies: the affinity key's client address when no client-address check ran before it. */
  readonly trustedProxies?: readonly string[];
  /** For the HTTP fallback: the admission steps before affinity's own (security's fallback checks and upstream
   *  TLS, then health's veto) and health's attempt/result pair, so a fallback request chooses its endpoint as
   *  an upgrade does. */
  readonly fallback?: Pick<HttpFallbackOptions, 'admission' | 'upstreamAttempt' | 'upstreamResult' | 'tracing'>;
}

export interface AffinityHooks extends Pick<ProxyHooks, 'admission' | 'httpFallback'> {
  readonly admission: readonly AdmissionCheck[];
  /** Closes the fallback's kept-alive upstream connections. */
  close(): void;
}

export function affinityHooks(o: AffinityHooksOptions): AffinityHooks {
  if (!o.secret) {
    o.log.warn(
      { className: o.className },
      'no --affinity-secret (WSGATE_AFFINITY_SECRET): affinity cookies are signed with a key derived from the class name, which anyone who knows it can reproduce; set the same secret on every replica',
    );
  }
  const signer = o.secret ? new CookieSigner(o.secret) : CookieSigner.fromClassName(o.className);
  const affinity = new Affinity({ signer, balancer: o.balancer });
  const trusted = new TrustedProxies(o.trustedProxies ?? []);
  const admission: AdmissionCheck = (ctx: HandshakeContext) => {
    if (!usesAffinity(ctx.match.route)) return undefined;
    let cookieAt = -1;
    // Chosen lazily at pick time: admission checks that run after this one may still set clientIp or claims.
    let choice: ReturnType<Affinity['choose']> | undefined;
    const chosen = () =>
      (choice ??= affinity.choose({
        route: ctx.match.route,
        req: ctx.req,
        // The client-IP check resolves forwarded chains for upgrades; when none ran, apply the same rule here.
        clientIp: ctx.clientIp !== socketAddress(ctx.socket.remoteAddress) ? ctx.clientIp : trusted.resolve(ctx.req).clientIp,
        secure: ctx.secure,
        ...(ctx.claims ? { claims: ctx.claims } : {}),
      }));
    ctx.pick = {
      ...ctx.pick,
      random: () => chosen().random(ctx.match.rule),
      hashPick: (candidates, backend) => {
        const e = chosen().hashPick(candidates, backend);
        // A retry picks again: the cookie must name the endpoint that finally answers.
        if (cookieAt >= 0) ctx.responseHeaders.splice(cookieAt, 2);
        cookieAt = -1;
        const sc = e && chosen().setCookie(e);
        if (sc) {
          cookieAt = ctx.responseHeaders.length;
          ctx.responseHeaders.push('Set-Cookie', sc);
        }
        return e;
      },
    };
    return undefined;
  };

  // Affinity is the last step for fallback requests too: it only shapes the pick, and adds the Set-Cookie.
  const fallback = new HttpFallback({
    balancer: o.balancer,
    clock: o.clock,
    log: o.log,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    ...(o.holder ? { holder: o.holder } : {}),
    ...o.fallback,
    admission: [...(o.fallback?.admission ?? []), admission],
  });

  return {
    admission: [admission],
    httpFallback: (ctx) => fallback.handle(ctx),
    close: () => fallback.close(),
  };
}

export { Affinity, sessionKey, usesAffinity } from './affinity.ts';
export { CookieSigner, readCookie } from './cookie.ts';
export { TrustedProxies } from './client-ip.ts';
