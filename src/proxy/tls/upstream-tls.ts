// upstream.protocol: wss → how the upstream's certificate is checked: a CA bundle from the route's Secret
// (ca.crt) or file, else the system roots; serverName for SNI and the name check; insecureSkipVerify turns
// verification off, which is logged at warn once per route so it cannot go unnoticed.
import { Errors, type WsgateError } from '../../errors.ts';
import type { Route } from '../../model/snapshot.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { UpstreamTls } from '../upstream/dial.ts';

export class UpstreamTlsPolicy {
  readonly #log: Logger;
  readonly #warned = new Set<string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** The TLS settings for this route's upstream, undefined for ws://, or an error when the CA is missing. */
  resolve(route: Route): UpstreamTls | WsgateError | undefined {
    const t = route.upstream.tls;
    if (!t) return undefined;
    if (!t.verify && !this.#warned.has(route.key)) {
      this.#warned.add(route.key);
      this.#log.warn({ route: route.key }, 'upstream.tls.insecureSkipVerify is set: upstream certificates are NOT verified on this route');
    }
    // A named CA that did not resolve must not fall back to the system roots: that would trust more, not less.
    if (t.verify && t.ca.kind === 'unresolved') return Errors.noEndpoint('upstream CA bundle not available');
    return {
      rejectUnauthorized: t.verify,
      ...(t.serverName !== undefined ? { servername: t.serverName } : {}),
      ...(t.ca.kind === 'bundle' ? { ca: t.ca.pem } : {}),
    };
  }
}
