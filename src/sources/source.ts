// What the controller needs from a source of objects. Sources turn the outside world into plain objects and
// signal changes; they hold no routing logic.
import type { BuildInput } from '../dag/input.ts';

export interface Source {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once every underlying watch has delivered its first full state. */
  synced(): boolean;
  /** A consistent view of every object the builder needs. */
  current(): BuildInput;
  /** Callbacks only signal; the controller coalesces and rebuilds. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}
