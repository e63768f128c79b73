// The SSE decoder against the WHATWG event-stream rules it implements
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation): the same events
// whatever the chunking (a property over random splits, including inside a CRLF and inside a multi-byte
// character), CR, LF and CRLF line ends, comments, multi-line data, and the bound on a line without an end (enforced through eventsource-parser's maxBufferSize).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { SseDecoder, SseOverflow, type SseEvent } from '../../src/llm/sse.ts';

const enc = new TextEncoder();

function decodeAll(chunks: Uint8Array[], max?: number): SseEvent[] {
  const d = new SseDecoder(max);
  return chunks.flatMap((c) => d.push(c));
}

const STREAM = ': keep-alive\r\nevent: message_start\r\ndata: {"a":"é€"}\r\n\r\ndata: line1\ndata: line2\n\nevent: ping\rdata:x\r\rdata: [DONE]\n\n';
const EXPECTED: SseEvent[] = [
  { event: 'message_start', data: '{"a":"é€"}' },
  { event: 'message', data: 'line1\nline2' },
  { event: 'ping', data: 'x' },
  { event: 'message', data: '[DONE]' },
];

test('one chunk: events, names, multi-line data, comments ignored, CR/LF/CRLF ends', () => {
  assert.deepEqual(decodeAll([enc.encode(STREAM)]), EXPECTED);
});

test('any split of the bytes gives the same events', () => {
  const bytes = enc.encode(STREAM);
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }), (cuts) => {
      const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
      const chunks = at.slice(1).map((end, i) => bytes.subarray(at[i], end));
      assert.deepEqual(decodeAll(chunks), EXPECTED);
    }),
    { numRuns: 300 },
  );
});

test('an event without its blank line is not emitted; an event with no data is dropped', () => {
  assert.deepEqual(decodeAll([enc.encode('event: x\n\ndata: half')]), []);
});

test('a line that never ends, or data past the bound, throws SseOverflow instead of growing', () => {
  assert.throws(() => decodeAll([enc.encode('data: ' + 'x'.repeat(100))], 64), SseOverflow);
  assert.throws(() => decodeAll(Array.from({ length: 10 }, () => enc.encode('data: 0123456789\n')), 64), SseOverflow);
});

test('id, retry and unknown fields do not end the stream; a leading BOM is dropped', () => {
  const s = '\uFEFFid: 7\nretry: x\nfoo: bar\ndata: a\n\nretry: 1000\nevent: e\ndata: b\n\n';
  assert.deepEqual(decodeAll([enc.encode(s)]), [
    { event: 'message', data: 'a' },
    { event: 'e', data: 'b' },
  ]);
});

test('the bound is per event: finished events release it, so a long stream of small events never overflows', () => {
  const chunks = Array.from({ length: 200 }, (_, i) => enc.encode(`data: ${String(i).padStart(40, '0')}\n\n`));
  const events = decodeAll(chunks, 64);
  assert.deepEqual(
    events.map((e) => Number(e.data)),
    Array.from({ length: 200 }, (_, i) => i),
  );
});

test('after an overflow the decoder stays failed', () => {
  const d = new SseDecoder(16);
  assert.throws(() => d.push(enc.encode('data: ' + 'y'.repeat(32))), SseOverflow);
  assert.throws(() => d.push(enc.encode('\n\n')), SseOverflow);
});
