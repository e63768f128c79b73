// Reference RFC 6455 frame encoder and a recording ScanOutput, shared by the frame scanner's property test and
// its fuzz run. Deliberately naive and independent of src/: it encodes, it never parses.
import type { FrameScanner, ScanOutput } from '../../src/proxy/relay/scanner.ts';

export interface FrameSpec {
  readonly fin: boolean;
  readonly rsv: number; // 0..7 (RSV1 = 4)
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Uint8Array;
  /** Length field width; wider than needed is legal on the wire and must be understood. */
  readonly lenBits: 7 | 16 | 64;
  readonly maskKey?: readonly [number, number, number, number];
}

export function encodeFrame(f: FrameSpec): Buffer {
  const len = f.payload.length;
  const ext = f.lenBits === 7 ? 0 : f.lenBits === 16 ? 2 : 8;
  if (f.lenBits === 7 && len > 125) throw new Error('7-bit length field cannot hold ' + len);
  const hl = 2 + ext + (f.masked ? 4 : 0);
  const b = Buffer.alloc(hl + len);
  b[0] = (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f);
  b[1] = (f.masked ? 0x80 : 0) | (f.lenBits === 7 ? len : f.lenBits === 16 ? 126 : 127);
  if (f.lenBits === 16) b.writeUInt16BE(len, 2);
  if (f.lenBits === 64) b.writeBigUInt64BE(BigInt(len), 2);
  const key = f.maskKey ?? [0x12, 0x34, 0x56, 0x78];
  if (f.masked) for (let i = 0; i < 4; i++) b[2 + ext + i] = key[i];
  for (let i = 0; i < len; i++) b[hl + i] = f.masked ? f.payload[i] ^ key[i & 3] : f.payload[i];
  return b;
}

export function headerLen(f: FrameSpec): number {
  return 2 + (f.lenBits === 7 ? 0 : f.lenBits === 16 ? 2 : 8) + (f.masked ? 4 : 0);
}

export interface Recorded {
  readonly writes: Buffer[];
  readonly rejects: { code: number; reason: string; at: number }[];
  /** Output offsets at which boundary() was called. */
  readonly boundaries: number[];
  readonly controls: { opcode: number; at: number }[];
  throttles: number;
  /** Bytes written so far. */
  written: number;
}

/**
 * A ScanOutput that records everything and behaves like the relay where it matters to the stream: held
 * frames are passed on as copies while forwarding, a close makes the scanner dead, a reject stops forwarding.
 */
export function recorder(): { out: ScanOutput; rec: Recorded; attach(s: FrameScanner): void } {
  const rec: Recorded = { writes: [], rejects: [], boundaries: [], controls: [], throttles: 0, written: 0 };
  let scanner: FrameScanner | undefined;
  const out: ScanOutput = {
    write(bytes) {
      rec.writes.push(bytes);
      rec.written += bytes.length;
    },
    control(frame, opcode, headerLen, payloadLen) {
      rec.controls.push({ opcode, at: rec.written });
      if (scanner!.forwarding) out.write(Buffer.from(frame.subarray(0, headerLen + payloadLen)));
      if (opcode === 0x8) scanner!.dead = true;
    },
    reject(code, reason) {
      rec.rejects.push({ code, reason, at: rec.written });
      scanner!.forwarding = false;
    },
    boundary() {
      rec.boundaries.push(rec.written);
      scanner!.wantBoundary = false;
    },
    throttle() {
      rec.throttles++;
    },
  };
  return { out, rec, attach: (s) => (scanner = s) };
}
