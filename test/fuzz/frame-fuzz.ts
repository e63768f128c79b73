// Fuzzing the frame scanner: random bytes, and valid frame streams mutated (bits flipped, bytes inserted,
// deleted, duplicated, cut), pushed in random chunks, through both directions' configurations, with or
// without deflate, a size limit, held pongs, a message check and boundary requests.
//
// The documented outcome for any input, checked on every one:
// - push() never throws and always returns (it only moves forward through the chunk);
// - what is forwarded is a prefix of the input, in order (held control frames included, as the relay does);
// - a protocol error is reported at most once, as 1002, and it is the scanner's last act (it is dead after);
//   everything forwarded before it ends exactly at the end of a frame the scanner saw, so the destination can
//   be sent a close frame;
// - a limit (1009, or 1008 from the message check) is reported at most once, after which nothing is forwarded;
// - boundary() is only ever called at the end of a frame.
// Deterministic for a given seed. `npm run fuzz` runs it with 10^6 iterations; the unit tests run a share.
import { prng } from './prng.ts';
import assert from 'node:assert/strict';
import { CloseCode } from '../../src/errors.ts';
import { FrameScanner, Verdict } from '../../src/proxy/relay/scanner.ts';
import { encodeFrame, recorder } from './frame-codec.ts';

export interface FuzzResult {
  readonly iterations: number;
  /** Inputs that ended without any reject. */
  readonly clean: number;
  /** Inputs that ended in a reject (1002, 1009 or 1008). */
  readonly rejected: number;
  readonly bytes: number;
}


export function fuzzFrames(iterations: number, seed = 1): FuzzResult {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  let clean = 0;
  let rejected = 0;
  let bytes = 0;

  const validStream = (masked: boolean, deflate: boolean): Buffer => {
    const parts: Buffer[] = [];
    let fragmented = false;
    const n = 1 + int(6);
    for (let i = 0; i < n; i++) {
      const control = int(4) === 0;
      const opcode = control ? [0x8, 0x9, 0xa][int(3)] : fragmented ? 0 : 1 + int(2);
      const len = control ? (int(3) === 0 ? 8 : int(126)) : int(5) === 0 ? 126 + int(400) : int(130);
      const fin = control || int(2) === 0;
      if (!control) fragmented = !fin;
      const lenBits = len > 125 ? (int(2) ? 16 : 64) : ([7, 7, 16, 64] as const)[int(4)];
      const payload = Buffer.allocUnsafe(len);
      for (let j = 0; j < len; j++) payload[j] = int(256);
      parts.push(
        encodeFrame({
          fin,
          rsv: deflate && !control && opcode !== 0 && int(2) ? 4 : 0,
          opcode,
          masked,
          payload,
          lenBits: control ? 7 : lenBits,
          maskKey: [int(256), int(256), int(256), int(256)],
        }),
      );
    }
    return Buffer.concat(parts);
  };

  const mutate = (b: Buffer): Buffer => {
    let out = b;
    const k = int(4);
    for (let m = 0; m < k; m++) {
      const at = out.length ? int(out.length) : 0;
      switch (int(5)) {
        case 0:
          if (out.length) out[at] ^= 1 << int(8);
          break;
        case 1:
          out = Buffer.concat([out.subarray(0, at), Buffer.from([int(256), int(256)]), out.subarray(at)]);
          break;
        case 2:
          out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + int(4)))]);
          break;
        case 3:
          out = Buffer.concat([out, out.subarray(at, at + int(20))]);
          break;
        default:
          out = out.subarray(0, at);
      }
    }
    return out;
  };

  for (let it = 0; it < iterations; it++) {
    const masked = int(2) === 0;
    const deflate = int(3) === 0;
    let input: Buffer;
    if (int(4) === 0) {
      input = Buffer.allocUnsafe(int(64));
      for (let i = 0; i < input.length; i++) input[i] = int(256);
    } else {
      input = validStream(masked, deflate);
      if (int(3) !== 0) input = mutate(Buffer.from(input));
    }
    bytes += input.length;
    const r = recorder();
    const s = new FrameScanner(r.out, { masked, deflate, maxMessageBytes: int(3) === 0 ? 1 + int(300) : 0 });
    r.attach(s);
    s.holdPongs = int(2) === 0;
    if (int(4) === 0) s.onMessage = () => [Verdict.Allow, Verdict.Allow, Verdict.Throttle, Verdict.Close][int(4)];
    const ends = new Set<number>([0]);
    s.onFrame = (offset, hl, len) => {
      ends.add(offset + hl + len);
    };
    let at = 0;
    try {
      while (at < input.length) {
        const n = 1 + int(int(2) ? 8 : input.length);
        if (int(5) === 0) s.wantBoundary = true;
        s.push(input.subarray(at, at + n));
        at += n;
      }
    } catch (err) {
      throw new Error(`scanner threw on input ${input.toString('hex')} (seed ${seed}, iteration ${it})`, { cause: err });
    }
    const rec = r.rec;
    const where = () => `input ${input.toString('hex')} (seed ${seed}, iteration ${it})`;
    const out = Buffer.concat(rec.writes);
    assert.ok(out.length <= input.length && out.equals(input.subarray(0, out.length)), `output not a prefix of the input: ${where()}`);
    for (const b of rec.boundaries) assert.ok(ends.has(b), `boundary inside a frame: ${where()}`);
    const errors = rec.rejects.filter((x) => x.code === CloseCode.ProtocolError);
    const limits = rec.rejects.filter((x) => x.code !== CloseCode.ProtocolError);
    assert.ok(errors.length <= 1 && limits.length <= 1, `more than one reject of a kind: ${where()}`);
    for (const l of limits) assert.ok(l.code === CloseCode.MessageTooBig || l.code === CloseCode.PolicyViolation, where());
    if (errors.length) {
      assert.equal(s.dead, true, where());
      assert.equal(rec.rejects[rec.rejects.length - 1].code, CloseCode.ProtocolError, where());
      if (!limits.length) assert.ok(ends.has(errors[0].at), `1002 after a partial frame: ${where()}`);
    }
    if (limits.length) assert.equal(out.length, limits[0].at, `forwarded after a limit: ${where()}`);
    if (rec.rejects.length) rejected++;
    else clean++;
  }
  return { iterations, clean, rejected, bytes };
}
