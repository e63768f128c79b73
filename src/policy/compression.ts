// limits.compression: Refuse. The client's permessage-deflate offer never reaches the upstream, so the upstream
// cannot accept it, nothing on the connection is compressed, and the relay has nothing to inflate (no zlib
// context, no CPU per message). Other extensions the client offered go on as they were.
import type { AdmissionCheck } from '../proxy/hooks.ts';
import { splitOutsideQuotes } from '../proxy/relay/deflate-params.ts';

/** The offer without its permessage-deflate elements (RFC 7692 §5: one element per offered configuration). */
export function withoutDeflate(offer: string): string {
  return splitOutsideQuotes(offer, ',')
    .map((e) => e.trim())
    .filter((e) => e !== '' && e.split(';', 1)[0].trim().toLowerCase() !== 'permessage-deflate')
    .join(', ');
}

export const refuseCompression: AdmissionCheck = (ctx) => {
  if (ctx.match.route.limits.compression !== 'Refuse') return undefined;
  const offer = ctx.req.headers['sec-websocket-extensions'];
  if (offer === undefined) return undefined;
  ctx.forward.drop.add('sec-websocket-extensions');
  const rest = withoutDeflate(Array.isArray(offer) ? offer.join(', ') : offer);
  if (rest !== '') ctx.forward.extra.push('Sec-WebSocket-Extensions', rest);
  return undefined;
};
