// A controller on a source whose objects the test sets, with the builder on the loop and the hold-off at 0 on a
// manual clock: each change the test emits is built before emit() returns.
import { pino, type Logger } from 'pino';
import { createBuilder, type BuildResult } from '../../src/dag/build.ts';
import type { BuildInput } from '../../src/dag/input.ts';
import { Controller } from '../../src/controller/controller.ts';
import { SnapshotHolder } from '../../src/model/holder.ts';
import type { ObjectChange, Source, SourceChange } from '../../src/sources/source.ts';
import { Metrics } from '../../src/telemetry/metrics.ts';
import { ManualClock } from './manual-clock.ts';

/** A source whose objects the test sets, emitting the change payloads the real sources emit. The controller's
 *  holdoff is 0 on a manual clock: each emit is followed by the clock reaching the holdoff's end. */
export class TestSource implements Source {
  input: BuildInput;
  readonly #listeners = new Set<(c: SourceChange) => void>();
  constructor(
    input: BuildInput,
    readonly clock = new ManualClock(),
  ) {
    this.input = input;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  synced(): boolean {
    return true;
  }
  current(): BuildInput {
    return this.input;
  }
  onChange(l: (c: SourceChange) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  emit(input: BuildInput, ...objects: ObjectChange[]): void {
    this.input = input;
    for (const l of this.#listeners) l({ objects });
    this.clock.advance(0);
  }
}

export function startController(input: BuildInput, log: Logger = pino({ level: 'silent' })) {
  const source = new TestSource(input);
  const builder = createBuilder({ className: 'wsgate', allowStaticEndpoints: false, mode: 'kubernetes' });
  const builds: BuildResult[] = [];
  let next: (() => void) | undefined;
  const controller = new Controller({
    source,
    build: (i) => {
      const r = builder(i);
      builds.push(r);
      next?.();
      return r;
    },
    holder: new SnapshotHolder(),
    log,
    metrics: new Metrics(),
    holdoffMs: 0,
    maxHoldoffMs: 0,
    clock: source.clock,
  });
  controller.start();
  const nextBuild = () => new Promise<void>((resolve) => (next = resolve));
  return { source, controller, builds, nextBuild };
}
