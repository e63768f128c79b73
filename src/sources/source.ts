// What the controller needs from a source of objects. Sources turn the outside world into plain objects and
// signal changes; they hold no routing logic.
import type { BuildInput, EndpointSliceLite, RouteObject, SecretLite, ServiceLite } from '../dag/input.ts';

/** The kinds of object a source hands the builder (named as the Kubernetes resources are). */
export type ObjectKind = 'websocketroutes' | 'services' | 'endpointslices' | 'secrets';

export type SourceObject = RouteObject | ServiceLite | EndpointSliceLite | SecretLite;

/** One object that changed, as the source holds it (trimmed) before and after. */
export interface ObjectChange {
  readonly kind: ObjectKind;
  /** "namespace/name". */
  readonly key: string;
  /** Absent: the object was added. */
  readonly before?: SourceObject;
  /** Absent: the object was deleted. */
  readonly after?: SourceObject;
}

/**
 * What a signal says changed: these objects, or anything at all (a reloaded route file, whose objects are
 * re-read whole). The controller decides from it whether the change can affect the table; the source does not.
 */
export type SourceChange = { readonly objects: readonly ObjectChange[] } | { readonly all: true };

export interface Source {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once every underlying watch has delivered its first full state. */
  synced(): boolean;
  /** A consistent view of every object the builder needs. */
  current(): BuildInput;
  /** Callbacks only signal; the controller coalesces and rebuilds. Returns an unsubscribe function. */
  onChange(listener: (change: SourceChange) => void): () => void;
}
