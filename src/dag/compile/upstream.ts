// upstream: timeouts in ms, connect attempts, and for wss how the upstream certificate is verified.
import type { WebSocketRouteSpec } from '../../api/types.ts';
import type { UpstreamPolicy } from '../../model/route.ts';
import { section } from './defaults.ts';

/** caPem: the CA bundle the builder resolved and validated, undefined when none is named or it did not resolve. */
export function compileUpstream(spec: WebSocketRouteSpec, caPem: string | undefined): UpstreamPolicy {
  const up = section(spec, 'upstream');
  const t = up.tls;
  const named = t?.caSecretName !== undefined || t?.caFile !== undefined;
  return {
    connectTimeoutMs: up.connectTimeoutSeconds * 1000,
    handshakeTimeoutMs: up.handshakeTimeoutSeconds * 1000,
    maxConnectAttempts: up.maxConnectAttempts,
    tls:
      up.protocol === 'wss'
        ? {
            verify: t?.insecureSkipVerify !== true,
            serverName: t?.serverName,
            ca: caPem !== undefined ? { kind: 'bundle', pem: caPem } : named ? { kind: 'unresolved' } : { kind: 'system' },
          }
        : undefined,
  };
}
