// The frame scanner alone: a property test against a reference encoder (random frame sequences split at random
// chunk boundaries are seen at exactly the encoder's boundaries and forwarded byte for byte), the zero-copy
// hot path, every protocol error, the size limit, the message check, and a short fuzz run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CloseCode } from '../../src/errors.ts';
import { FrameScanner, Verdict } from '../../src/proxy/relay/scanner.ts';
import { encodeFrame, headerLen, recorder, type FrameSpec } from '../fuzz/frame-codec.ts';
import { fuzzFrames } from '../fuzz/frame-fuzz.ts';

function scanner(o: { masked: boolean; deflate?: boolean; max?: number }) {
  const r = recorder();
  const s = new FrameScanner(r.out, { masked: o.masked, deflate: o.deflate ?? false, maxMessageBytes: o.max ?? 0 });
  r.attach(s);
  const seen: { offset: number; hl: number; len: number; op: number; fin: boolean }[] = [];
  s.onFrame = (offset, hl, len, op, fin) => seen.push({ offset, hl, len, op, fin });
  return { s, rec: r.rec, seen };
}

const payloadOf = (len: number, seed: number) => {
  const p = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) p[i] = (i * 31 + seed) & 0xff;
  return p;
};

const lenBitsFor = (len: number, pick: number): 7 | 16 | 64 => {
  const ok: (7 | 16 | 64)[] = [...(len <= 125 ? [7 as const] : []), ...(len <= 0xffff ? [16 as const] : []), 64];
  return ok[pick % ok.length];
};

/** A valid stream from one direction: messages, control frames between fragments, maybe a close at the end. */
const streamArb = (masked: boolean, deflate: boolean) => {
  const control = fc.record({
    opcode: fc.constantFrom(0x9, 0xa),
    len: fc.oneof(fc.integer({ min: 0, max: 125 }), fc.constant(8)),
    seed: fc.nat(255),
  });
  const fragment = fc.record({
    len: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 140 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 70000 }) }),
    bits: fc.nat(2),
    seed: fc.nat(255),
    between: fc.array(control, { maxLength: 2 }),
  });
  const message = fc.record({ opcode: fc.constantFrom(0x1, 0x2), compressed: fc.boolean(), fragments: fc.array(fragment, { minLength: 1, maxLength: 4 }) });
  return fc
    .record({
      messages: fc.array(message, { maxLength: 6 }),
      close: fc.option(fc.record({ code: fc.integer({ min: 1000, max: 4999 }), reason: fc.string({ maxLength: 40 }) })),
      key: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)),
    })
    .map(({ messages, close, key }) => {
      const frames: FrameSpec[] = [];
      for (const m of messages) {
        m.fragments.forEach((f, i) => {
          const last = i === m.fragments.length - 1;
          frames.push({
            fin: last,
            rsv: deflate && m.compressed && i === 0 ? 4 : 0,
            opcode: i === 0 ? m.opcode : 0,
            masked,
            payload: payloadOf(f.len, f.seed),
            lenBits: lenBitsFor(f.len, f.bits),
            maskKey: key,
          });
          if (!last) for (const c of f.between) frames.push({ fin: true, rsv: 0, opcode: c.opcode, masked, payload: payloadOf(c.len, c.seed), lenBits: 7, maskKey: key });
        });
      }
      if (close) {
        const reason = Buffer.from(close.reason).subarray(0, 120);
        const p = Buffer.alloc(2 + reason.length);
        p.writeUInt16BE(close.code, 0);
        reason.copy(p, 2);
        frames.push({ fin: true, rsv: 0, opcode: 0x8, masked, payload: p, lenBits: 7, maskKey: key });
      }
      return frames;
    });
};

for (const [masked, deflate] of [[true, false], [false, false], [true, true], [false, true]] as const) {
  test(`property: frames from the ${masked ? 'client' : 'upstream'}${deflate ? ' with deflate' : ''} are seen at the encoder's boundaries and forwarded byte for byte`, () => {
    fc.assert(
      fc.property(
        streamArb(masked, deflate),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.boolean(),
        (frames, cutSeeds, wants, holdPongs) => {
          const encoded = frames.map(encodeFrame);
          const bytes = Buffer.concat(encoded);
          const cuts = [...new Set(cutSeeds.map((c) => (bytes.length ? c % bytes.length : 0)))].sort((a, b) => a - b);
          const { s, rec, seen } = scanner({ masked, deflate });
          s.holdPongs = holdPongs;
          let at = 0;
          [...cuts, bytes.length].forEach((cut, i) => {
            if (wants[i]) s.wantBoundary = true;
            if (cut > at) s.push(bytes.subarray(at, cut));
            at = Math.max(at, cut);
          });
          assert.deepEqual(rec.rejects, []);
          // Exactly the encoder's frames at the encoder's offsets.
          let offset = 0;
          const expected = frames.map((f, i) => {
            const e = { offset, hl: headerLen(f), len: f.payload.length, op: f.opcode, fin: f.fin };
            offset += encoded[i].length;
            return e;
          });
          assert.deepEqual(seen, expected);
          const ends = new Set([0, ...expected.map((e) => e.offset + e.hl + e.len)]);
          // Byte for byte (held frames are passed on by the recorder as the relay does).
          assert.ok(Buffer.concat(rec.writes).equals(bytes));
          // Injection points are frame boundaries only.
          for (const b of rec.boundaries) assert.ok(ends.has(b), `boundary at ${b}`);
          assert.equal(s.messages, frames.filter((f) => f.opcode === 1 || f.opcode === 2).length);
        },
      ),
      { numRuns: 300 },
    );
  });
}

test('a chunk of whole frames, and the middle of a long payload, are written as the same Buffer', () => {
  const { s, rec } = scanner({ masked: true });
  const a = Buffer.concat([
    encodeFrame({ fin: true, rsv: 0, opcode: 1, masked: true, payload: payloadOf(64, 1), lenBits: 7 }),
    encodeFrame({ fin: true, rsv: 0, opcode: 9, masked: true, payload: payloadOf(3, 1), lenBits: 7 }),
  ]);
  s.push(a);
  const big = encodeFrame({ fin: true, rsv: 0, opcode: 2, masked: true, payload: payloadOf(100000, 2), lenBits: 64 });
  const parts = [big.subarray(0, 5000), big.subarray(5000, 60000), big.subarray(60000)];
  for (const p of parts) s.push(p);
  assert.equal(rec.writes.length, 4);
  assert.equal(rec.writes[0], a);
  for (let i = 0; i < 3; i++) assert.equal(rec.writes[i + 1], parts[i]);
});

test('a header cut by a chunk boundary is held back until it is complete and valid', () => {
  const { s, rec } = scanner({ masked: false });
  const f = encodeFrame({ fin: true, rsv: 0, opcode: 2, masked: false, payload: payloadOf(300, 3), lenBits: 16 });
  s.push(f.subarray(0, 1));
  s.push(f.subarray(1, 3));
  assert.equal(rec.written, 0);
  assert.equal(s.atBoundary, true);
  s.push(f.subarray(3));
  assert.ok(Buffer.concat(rec.writes).equals(f));
});

test('close frames are held until complete, then handed over', () => {
  const { s, rec } = scanner({ masked: true });
  const data = encodeFrame({ fin: true, rsv: 0, opcode: 1, masked: true, payload: payloadOf(10, 0), lenBits: 7 });
  const close = encodeFrame({ fin: true, rsv: 0, opcode: 8, masked: true, payload: Buffer.from([0x03, 0xe8, 0x6f, 0x6b]), lenBits: 7 });
  s.push(Buffer.concat([data, close.subarray(0, 4)]));
  assert.equal(rec.written, data.length);
  s.push(close.subarray(4));
  assert.deepEqual(rec.controls, [{ opcode: 8, at: data.length }]);
  assert.equal(s.dead, true);
});

const bad: [string, { masked: boolean; deflate?: boolean }, Buffer[], RegExp][] = [
  ['RSV1 without an extension', { masked: false }, [Buffer.from([0xc1, 0x00])], /reserved/],
  ['RSV2', { masked: false, deflate: true }, [Buffer.from([0xa1, 0x00])], /reserved/],
  ['RSV3', { masked: false, deflate: true }, [Buffer.from([0x91, 0x00])], /reserved/],
  ['RSV1 on a control frame with deflate', { masked: false, deflate: true }, [Buffer.from([0xc9, 0x00])], /RSV1/],
  ['RSV1 on a continuation with deflate', { masked: false, deflate: true }, [Buffer.from([0x01, 0x00]), Buffer.from([0xc0, 0x00])], /RSV1/],
  ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map((op): [string, { masked: boolean }, Buffer[], RegExp] => [`opcode ${op}`, { masked: false }, [Buffer.from([0x80 | op, 0x00])], /unknown opcode/]),
  ['control frame over 125 bytes', { masked: false }, [Buffer.from([0x89, 0x7e, 0x00, 0x7e])], /longer than 125/],
  ['fragmented ping', { masked: false }, [Buffer.from([0x09, 0x00])], /fragmented control/],
  ['unmasked frame from the client', { masked: true }, [Buffer.from([0x81, 0x00])], /unmasked/],
  ['masked frame from the upstream', { masked: false }, [Buffer.from([0x81, 0x80, 1, 2, 3, 4])], /masked frame from the upstream/],
  ['continuation without a start', { masked: false }, [Buffer.from([0x80, 0x00])], /continuation/],
  ['new message inside a fragmented one', { masked: false }, [Buffer.from([0x01, 0x00]), Buffer.from([0x82, 0x00])], /inside a fragmented/],
  ['64-bit length with the top bit set', { masked: false }, [Buffer.from([0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1])], /most significant/],
];

for (const [name, o, frames, why] of bad) {
  test(`protocol error: ${name} → 1002, nothing of the bad frame forwarded, scanner dead`, () => {
    for (const split of [false, true]) {
      const { s, rec } = scanner(o);
      const good = frames.slice(0, -1);
      const last = frames[frames.length - 1];
      const all = Buffer.concat([...good, last, Buffer.from([0x81, 0x00])]);
      if (split) for (let i = 0; i < all.length; i++) s.push(all.subarray(i, i + 1));
      else s.push(all);
      assert.equal(rec.rejects.length, 1);
      assert.equal(rec.rejects[0].code, CloseCode.ProtocolError);
      assert.match(rec.rejects[0].reason, why);
      const goodLen = good.reduce((n, b) => n + b.length, 0);
      assert.equal(rec.written, goodLen);
      assert.equal(s.dead, true);
    }
  });
}

test('size limit: fragments are summed at each header; over the limit → 1009, the frame is skipped, scanning goes on', () => {
  const { s, rec } = scanner({ masked: false, max: 1000 });
  const f = (fin: boolean, op: number, len: number) => encodeFrame({ fin, rsv: 0, opcode: op, masked: false, payload: payloadOf(len, 0), lenBits: len > 125 ? 16 : 7 });
  const ok = Buffer.concat([f(false, 2, 500), f(true, 0, 500)]);
  s.push(ok);
  assert.equal(rec.written, ok.length);
  assert.equal(rec.rejects.length, 0);
  const over1 = f(false, 2, 600);
  const over2 = f(true, 0, 401);
  const close = encodeFrame({ fin: true, rsv: 0, opcode: 8, masked: false, payload: Buffer.from([0x03, 0xf1]), lenBits: 7 });
  s.push(Buffer.concat([over1, over2.subarray(0, 10)]));
  s.push(Buffer.concat([over2.subarray(10), close]));
  assert.equal(rec.rejects.length, 1);
  assert.equal(rec.rejects[0].code, CloseCode.MessageTooBig);
  // The first fragment went through; the one that crossed the limit did not; the close was still seen.
  assert.equal(rec.written, ok.length + over1.length);
  assert.deepEqual(rec.controls.map((c) => c.opcode), [8]);
});

test('message check: called at every data frame header, first frames marked; throttle and close verdicts', () => {
  const { s, rec } = scanner({ masked: false });
  const calls: [number, boolean][] = [];
  const verdicts = [Verdict.Allow, Verdict.Allow, Verdict.Allow, Verdict.Throttle, Verdict.Close];
  s.onMessage = (len, first) => (calls.push([len, first]), verdicts[calls.length - 1]);
  const f = (fin: boolean, op: number, len: number) => encodeFrame({ fin, rsv: 0, opcode: op, masked: false, payload: payloadOf(len, 0), lenBits: 7 });
  const ping = encodeFrame({ fin: true, rsv: 0, opcode: 0x9, masked: false, payload: payloadOf(2, 0), lenBits: 7 });
  s.push(Buffer.concat([f(false, 1, 3), ping, f(true, 0, 4), f(true, 2, 5), f(true, 1, 6)]));
  // The ping between the fragments is no message but spends the byte budget: its whole frame (2 + 2 bytes).
  assert.deepEqual(calls, [[3, true], [4, false], [4, false], [5, true], [6, true]]);
  assert.equal(rec.throttles, 1);
  assert.deepEqual(rec.rejects.map((r) => r.code), [CloseCode.PolicyViolation]);
  assert.equal(rec.written, 2 + 3 + (2 + 2) + 2 + 4 + 2 + 5);
  // Messages, not frames: the fragmented one counts once, the refused one not at all.
  assert.equal(s.messages, 2);
});

test('message check: a continuation frame over the budget is refused at its header, before its payload', () => {
  const { s, rec } = scanner({ masked: true });
  let budget = 100;
  s.onMessage = (len) => ((budget -= len) < 0 ? Verdict.Close : Verdict.Allow);
  const f = (fin: boolean, op: number, len: number) => encodeFrame({ fin, rsv: 0, opcode: op, masked: true, payload: payloadOf(len, 1), lenBits: 7, maskKey: [1, 2, 3, 4] });
  const first = f(false, 2, 60);
  const second = f(false, 0, 30);
  const third = f(true, 0, 20);
  // Cut inside the third frame's header: the decision waits for the whole header, the payload never passes.
  const all = Buffer.concat([first, second, third]);
  const cut = first.length + second.length + 1;
  s.push(all.subarray(0, cut));
  s.push(all.subarray(cut));
  assert.deepEqual(rec.rejects.map((r) => r.code), [CloseCode.PolicyViolation]);
  assert.equal(rec.written, first.length + second.length);
  assert.equal(s.messages, 1);
});

test('fuzz: random and mutated streams never throw, hang or break the documented outcome', () => {
  const r = fuzzFrames(20000, 12345);
  assert.equal(r.iterations, 20000);
  assert.ok(r.rejected > 0 && r.clean > 0);
});
