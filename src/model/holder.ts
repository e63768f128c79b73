// Owns the one mutable reference to the current Snapshot. publish() swaps it atomically and tells listeners
// (the drain logic, readiness) what changed; connections read current() once, at their handshake.
import type { Snapshot, SnapshotContent } from './snapshot.ts';

export type SwapListener = (next: Snapshot, prev: Snapshot | undefined) => void;

export class SnapshotHolder {
  #current: Snapshot | undefined;
  #listeners = new Set<SwapListener>();
  #waiters: { generation: number; resolve: (s: Snapshot) => void }[] = [];

  current(): Snapshot | undefined {
    return this.#current;
  }

  publish(content: SnapshotContent): Snapshot {
    const prev = this.#current;
    const next: Snapshot = Object.freeze({ ...content, generation: (prev?.generation ?? 0) + 1 });
    this.#current = next;
    for (const l of this.#listeners) l(next, prev);
    this.#waiters = this.#waiters.filter((w) => {
      if (w.generation > next.generation) return true;
      w.resolve(next);
      return false;
    });
    return next;
  }

  onSwap(listener: SwapListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once a snapshot of at least this generation is current. */
  waitForGeneration(generation: number): Promise<Snapshot> {
    const cur = this.#current;
    if (cur && cur.generation >= generation) return Promise.resolve(cur);
    return new Promise((resolve) => this.#waiters.push({ generation, resolve }));
  }
}
