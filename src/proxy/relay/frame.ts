// RFC 6455 §5 wire constants and the few frames the proxy writes itself (close, ping). Payload bytes of relayed
// frames are never decoded here; only the small control frames the relay holds are.
import { randomFillSync } from 'node:crypto';
import { CloseCode } from '../../errors.ts';

export const Op = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** Longest frame header: 2 + 8 (64-bit length) + 4 (masking key). */
export const MaxHeaderBytes = 14;
export const MaxControlPayload = 125;

/** Length of a frame header, from its second byte. */
export function headerLength(b1: number): number {
  const l7 = b1 & 0x7f;
  return 2 + (l7 === 126 ? 2 : l7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

/**
 * A control frame written by the proxy. Frames to the upstream must be masked (the proxy is its client);
 * the key comes from crypto so a peer cannot predict it (RFC 6455 §10.3).
 */
export function controlFrame(opcode: number, payload: Buffer | undefined, mask: boolean): Buffer {
  const len = payload ? payload.length : 0;
  const hl = mask ? 6 : 2;
  const f = Buffer.allocUnsafe(hl + len);
  f[0] = 0x80 | opcode;
  f[1] = (mask ? 0x80 : 0) | len;
  if (payload) payload.copy(f, hl);
  if (mask) {
    randomFillSync(f, 2, 4);
    for (let i = 0; i < len; i++) f[hl + i] ^= f[2 + (i & 3)];
  }
  return f;
}

/** Close payload: the code, then the reason cut to fit 125 bytes without splitting a UTF-8 sequence. */
export function closePayload(code: number, reason: string): Buffer {
  const r = Buffer.from(reason, 'utf8');
  let n = Math.min(r.length, MaxControlPayload - 2);
  while (n > 0 && n < r.length && (r[n] & 0xc0) === 0x80) n--;
  const p = Buffer.allocUnsafe(2 + n);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2, 0, n);
  return p;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/**
 * Code and reason of a held close frame (unmasked into a copy; the frame itself is forwarded as it came).
 * No status → 1005 as RFC 6455 §7.1.5 says; a one-byte body is malformed → undefined.
 */
export function readClose(frame: Buffer, payloadAt: number, len: number, maskAt: number): CloseInfo | undefined {
  if (len === 0) return { code: CloseCode.NoStatus, reason: '' };
  if (len === 1) return undefined;
  const p = Buffer.allocUnsafe(len);
  frame.copy(p, 0, payloadAt, payloadAt + len);
  if (maskAt >= 0) for (let i = 0; i < len; i++) p[i] ^= frame[maskAt + (i & 3)];
  return { code: p.readUInt16BE(0), reason: p.toString('utf8', 2) };
}
