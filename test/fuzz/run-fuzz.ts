// `npm run fuzz`: the frame scanner (10^6 inputs), the live handshake path (default 50,000 inputs) and the
// inflate path (default 20,000 compressed streams), at least 10^6 generated inputs in total.
// Arguments: [frameIterations] [handshakeIterations] [seed] [inflateIterations].
// Exits non-zero on any failure, printing the inputs that caused it.
import { fuzzFrames } from './frame-fuzz.ts';
import { fuzzHandshakes } from './handshake-fuzz.ts';
import { fuzzInflate } from './inflate-fuzz.ts';

const [frames = 1_000_000, handshakes = 50_000, seed = 1, inflates = 20_000] = process.argv.slice(2).map(Number);
let t = performance.now();
const f = fuzzFrames(frames, seed);
console.log(`frame scanner: ${f.iterations} inputs (${f.clean} clean, ${f.rejected} rejected, ${f.bytes} bytes) in ${Math.round(performance.now() - t)} ms`);
t = performance.now();
const h = await fuzzHandshakes(handshakes, seed, 64);
console.log(`handshake path: ${h.iterations} inputs in ${Math.round(performance.now() - t)} ms, outcomes ${JSON.stringify(h.byStatus)}`);
t = performance.now();
const z = await fuzzInflate(inflates, seed);
console.log(`inflate path: ${z.iterations} inputs (${z.clean} clean, ${z.rejected} rejected) in ${Math.round(performance.now() - t)} ms`);
console.log(`total: ${f.iterations + h.iterations + z.iterations} generated inputs`);
if (h.failures.length > 0) {
  for (const x of h.failures) console.error(x);
  process.exit(1);
}
