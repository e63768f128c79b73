// Fuzzing the inflate path of the frame scanner: compressed messages (node:zlib raw deflate with a sync flush and
// the 0x00 0x00 0xff 0xff tail removed, RFC 7692 §7.2.1), with and without context takeover, window bits 9..15,
// fragmented into frames, some payload bytes flipped, cut or inserted, pushed in random chunks through a
// FrameScanner that inflates alongside with a size limit.
//
// The documented outcome for any input, checked on every one:
// - push() never throws, and the scanner never stays waiting for the inflater (every feed completes);
// - what is forwarded is a prefix of the input, in order;
// - at most one limit (1008, 1009) and one error (1002, 1007); after a 1009 the inflater had produced at most the
//   limit plus one zlib output chunk for that message;
// - an unmutated stream under the limit passes whole, and inflates to exactly its messages' bytes.
// Deterministic for a given seed (zlib's output is); `npm run fuzz` runs it, the unit tests run a share.
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { CloseCode } from '../../src/errors.ts';
import { FrameScanner } from '../../src/proxy/relay/scanner.ts';
import { encodeFrame, recorder } from './frame-codec.ts';
import { prng } from './prng.ts';

export interface InflateFuzzResult {
  readonly iterations: number;
  readonly clean: number;
  readonly rejected: number;
}

/** zlib's output chunk (Node's default chunkSize): the most a bomb inflates past the limit. */
const CHUNK = 16 * 1024;

export async function fuzzInflate(iterations: number, seed = 1, concurrency = 16): Promise<InflateFuzzResult> {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  let clean = 0;
  let rejected = 0;

  const one = async (it: number): Promise<void> => {
    const masked = int(2) === 0;
    const windowBits = 9 + int(7);
    const noContextTakeover = int(2) === 0;
    const max = int(3) === 0 ? 1 + int(5000) : 1 << 20;
    const deflater = zlib.createDeflateRaw({ windowBits });
    const compress = async (b: Buffer): Promise<Buffer> => {
      // A fresh deflater per message without context takeover; one for the whole stream with it.
      if (noContextTakeover) return strip(zlib.deflateRawSync(b, { windowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH }));
      const chunks: Buffer[] = [];
      const onData = (c: Buffer) => chunks.push(c);
      deflater.on('data', onData);
      deflater.write(b);
      await new Promise<void>((resolve) => deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
      deflater.off('data', onData);
      return strip(Buffer.concat(chunks));
    };
    const parts: Buffer[] = [];
    let plain = 0;
    const n = 1 + int(5);
    for (let m = 0; m < n; m++) {
      const size = int(4) === 0 ? int(100_000) : int(2000);
      const text = Buffer.alloc(size);
      const alphabet = 1 + int(int(2) ? 4 : 256);
      for (let i = 0; i < size; i++) text[i] = int(alphabet);
      plain += size;
      const c = await compress(text);
      // Split into 1..3 frames; RSV1 on the first only.
      const cuts = [0, ...[int(c.length + 1), int(c.length + 1)].sort((a, b) => a - b).slice(0, int(3)), c.length];
      for (let f = 0; f + 1 < cuts.length; f++) {
        const payload = c.subarray(cuts[f], cuts[f + 1]);
        parts.push(
          encodeFrame({
            fin: f + 2 === cuts.length,
            rsv: f === 0 ? 4 : 0,
            opcode: f === 0 ? 2 : 0,
            masked,
            payload,
            lenBits: payload.length > 65535 ? 64 : payload.length > 125 ? 16 : 7,
            maskKey: [int(256), int(256), int(256), int(256)],
          }),
        );
      }
    }
    deflater.close();
    let input = Buffer.concat(parts);
    const mutated = int(3) === 0;
    if (mutated) {
      input = Buffer.from(input);
      for (let k = 1 + int(4); k > 0 && input.length > 0; k--) {
        const at = int(input.length);
        if (int(3) === 0) input = Buffer.concat([input.subarray(0, at), Buffer.from([int(256)]), input.subarray(at)]);
        else if (int(2) === 0) input = input.subarray(0, at);
        else input[at] ^= 1 << int(8);
      }
    }
    const r = recorder();
    const s = new FrameScanner(r.out, { masked, deflate: true, maxMessageBytes: max, inflate: { windowBits, noContextTakeover } });
    r.attach(s);
    const where = () => `seed ${seed}, iteration ${it}, input ${input.subarray(0, 200).toString('hex')}…`;
    let at = 0;
    while (at < input.length) {
      const len = 1 + int(int(2) ? 64 : input.length);
      s.push(input.subarray(at, at + len));
      at += len;
      // Every feed completes: wait for the inflater between reads, as the relay stops reading meanwhile.
      for (let turns = 0; s.suspended; turns++) {
        assert.ok(turns < 100_000, `inflater never answered: ${where()}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    s.disposeInflater();
    const rec = r.rec;
    const out = Buffer.concat(rec.writes);
    assert.ok(out.length <= input.length && out.equals(input.subarray(0, out.length)), `output not a prefix of the input: ${where()}`);
    // A limit leaves the scanner reading (the sender's close is awaited), so a later protocol error may follow it.
    const limits = rec.rejects.filter((x) => x.code === CloseCode.MessageTooBig || x.code === CloseCode.PolicyViolation);
    assert.ok(limits.length <= 1 && rec.rejects.length - limits.length <= 1, `more than one reject of a kind: ${where()} ${JSON.stringify(rec.rejects)}`);
    const codes: number[] = [CloseCode.ProtocolError, CloseCode.InvalidPayload, CloseCode.PolicyViolation, CloseCode.MessageTooBig];
    for (const x of rec.rejects) assert.ok(codes.includes(x.code), `unexpected code ${x.code}: ${where()}`);
    // Every message but the last stopped within the limit; the last at most one zlib chunk past it.
    assert.ok(s.inflatedBytes <= s.messages * max + CHUNK, `inflated past the limit: ${where()}`);
    if (!mutated) assert.ok(s.inflatedBytes <= plain, where());
    if (!mutated && max === 1 << 20) {
      assert.deepEqual(rec.rejects, [], `clean stream rejected: ${where()}`);
      assert.equal(out.length, input.length, where());
      assert.equal(s.inflatedBytes, plain, `inflated bytes differ: ${where()}`);
    }
    if (rec.rejects.length) rejected++;
    else clean++;
  };

  for (let it = 0; it < iterations; it += concurrency) {
    const batch: Promise<void>[] = [];
    for (let j = it; j < Math.min(iterations, it + concurrency); j++) batch.push(one(j));
    await Promise.all(batch);
  }
  return { iterations, clean, rejected };
}

/** RFC 7692 §7.2.1: the sender removes the 0x00 0x00 0xff 0xff a sync flush ends with. */
function strip(b: Buffer): Buffer {
  return b.subarray(0, b.length - 4);
}
