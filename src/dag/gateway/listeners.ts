// A Gateway's listeners checked one by one, with the listener conditions the Gateway API requires
// (https://gateway-api.sigs.k8s.io/reference/spec/#listenerconditiontype): Accepted (protocol), ResolvedRefs
// (certificates, route kinds), Conflicted (port, protocol and hostname shared with another listener) and
// Programmed. HTTP listeners are served by wsgate's plain listener and HTTPS ones by its TLS listener; the
// Service in front maps the listener ports (one deployment serves its Gateways).
import { tlsSecretCertificate } from './tls-secret.ts';
import { gatewayFrom, referencePermitted } from './references.ts';
import {
  apiCondition,
  gatewayGroup,
  type ApiCondition,
  type GatewayApiInput,
  type GatewayLite,
  type ListenerCertificate,
  type ListenerLite,
} from './types.ts';

export const supportedProtocols = ['HTTP', 'HTTPS'] as const;

export interface CheckedListener {
  readonly listener: ListenerLite;
  /** Routes may attach (protocol supported, not conflicted, HTTPRoute among the allowed kinds). */
  readonly usable: boolean;
  readonly supportedKinds: readonly { readonly group: string; readonly kind: string }[];
  readonly certificates: readonly ListenerCertificate[];
  readonly conditions: readonly ApiCondition[];
}

const isHttpRouteKind = (k: { group?: string; kind: string }) => (k.group ?? gatewayGroup) === gatewayGroup && k.kind === 'HTTPRoute';

export function checkListeners(gw: GatewayLite, input: Pick<GatewayApiInput, 'secrets' | 'referenceGrants'>): CheckedListener[] {
  const gen = gw.metadata.generation ?? 0;
  const ns = gw.metadata.namespace ?? 'default';
  const listeners = gw.spec.listeners;
  return listeners.map((l) => {
    const c = (type: string, ok: boolean, reason: string, message: string) => apiCondition(type, ok, reason, message, gen);
    const protocolOk = (supportedProtocols as readonly string[]).includes(l.protocol);
    const samePort = listeners.filter((o) => o !== l && o.port === l.port);
    const protocolConflict = samePort.some((o) => o.protocol !== l.protocol);
    const hostnameConflict = !protocolConflict && samePort.some((o) => (o.hostname ?? '') === (l.hostname ?? ''));
    const kinds = l.allowedRoutes?.kinds;
    const supportedKinds = (kinds ?? [{ group: gatewayGroup, kind: 'HTTPRoute' }]).filter(isHttpRouteKind).map(() => ({ group: gatewayGroup, kind: 'HTTPRoute' }));
    const badKinds = (kinds ?? []).filter((k) => !isHttpRouteKind(k));

    const refProblems: { reason: string; message: string }[] = [];
    if (badKinds.length > 0) {
      refProblems.push({ reason: 'InvalidRouteKinds', message: `unsupported route kinds: ${badKinds.map((k) => `${k.group ?? gatewayGroup}/${k.kind}`).join(', ')}` });
    }
    const certificates: ListenerCertificate[] = [];
    if (protocolOk && l.protocol === 'HTTPS') {
      const mode = l.tls?.mode ?? 'Terminate';
      const refs = l.tls?.certificateRefs ?? [];
      if (mode !== 'Terminate') refProblems.push({ reason: 'InvalidCertificateRef', message: `tls.mode ${mode}: HTTPS listeners terminate TLS` });
      if (refs.length === 0) refProblems.push({ reason: 'InvalidCertificateRef', message: 'an HTTPS listener needs tls.certificateRefs' });
      for (const ref of refs) {
        const refNs = ref.namespace ?? ns;
        const what = `certificateRef ${refNs}/${ref.name}`;
        if ((ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') {
          refProblems.push({ reason: 'InvalidCertificateRef', message: `${what}: only core Secrets are supported` });
        } else if (!referencePermitted(input.referenceGrants, gatewayFrom(ns), { group: '', kind: 'Secret', namespace: refNs, name: ref.name })) {
          refProblems.push({ reason: 'RefNotPermitted', message: `${what}: no ReferenceGrant in ${refNs} permits it` });
        } else {
          const got = tlsSecretCertificate(input.secrets, refNs, ref.name);
          if ('problem' in got) refProblems.push({ reason: 'InvalidCertificateRef', message: `${what}: ${got.problem}` });
          else certificates.push({ hostname: (l.hostname ?? '').toLowerCase(), secret: { namespace: refNs, name: ref.name }, certificate: got.certificate });
        }
      }
    }

    const conflicted = protocolConflict || hostnameConflict;
    const usable = protocolOk && !conflicted && supportedKinds.length > 0;
    const conditions: ApiCondition[] = [
      protocolOk
        ? c('Accepted', true, 'Accepted', 'listener accepted')
        : c('Accepted', false, 'UnsupportedProtocol', `protocol ${l.protocol}: wsgate serves ${supportedProtocols.join(' and ')}`),
      protocolConflict
        ? c('Conflicted', true, 'ProtocolConflict', `another listener on port ${l.port} has another protocol`)
        : hostnameConflict
          ? c('Conflicted', true, 'HostnameConflict', `another listener on port ${l.port} has the same hostname`)
          : c('Conflicted', false, 'NoConflicts', 'no conflicts'),
      refProblems.length === 0
        ? c('ResolvedRefs', true, 'ResolvedRefs', 'all references resolved')
        : c('ResolvedRefs', false, (refProblems[0] as { reason: string }).reason, refProblems.map((p) => p.message).join('; ')),
      usable && (l.protocol !== 'HTTPS' || certificates.length > 0)
        ? c('Programmed', true, 'Programmed', 'listener programmed')
        : c('Programmed', false, 'Invalid', 'listener not programmed: see the other conditions'),
    ];
    return { listener: l, usable, supportedKinds, certificates: certificates, conditions };
  });
}
