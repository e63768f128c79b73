// The vocabulary between the control plane and its build thread (build-thread.ts). The thread keeps its own copy
// of the source's objects (fed with changes) or loads the route file itself, builds, and hands the result back
// as serialized pieces (v8.serialize, in transferred buffers), so the receiving loop deserializes one piece per
// turn instead of the whole table at once.
import type { ObjectChange, RoutingApisOn } from '../sources/source.ts';
import type { BuildOptions } from '../dag/input.ts';
import type { ConfigProblem } from '../errors.ts';

export interface BuildThreadData {
  readonly options: BuildOptions;
}

export type ToBuildThread =
  /** Objects the thread's copy must take on (absent after: deleted); `reset` first empties the copy. */
  | { readonly t: 'objects'; readonly reset: boolean; readonly changes: readonly Pick<ObjectChange, 'kind' | 'key' | 'after'>[] }
  /** The routing APIs the source serves: the thread's input has their parts from now on. */
  | { readonly t: 'routing'; readonly on: RoutingApisOn }
  /** Standalone: read and check the route file (or folder) and the files it names; on success they become the input. */
  | { readonly t: 'load'; readonly id: number; readonly path: string; readonly baseDir: string }
  /** `fresh`: the other side holds no previous result to share from, send everything. */
  | { readonly t: 'build'; readonly id: number; readonly fresh: boolean };

export type FromBuildThread =
  | { readonly t: 'loaded'; readonly id: number; readonly problems: readonly ConfigProblem[]; readonly paths: readonly string[] }
  | { readonly t: 'built'; readonly id: number; readonly pieces: readonly Uint8Array[]; readonly buildMs: number }
  | { readonly t: 'failed'; readonly id: number; readonly message: string };

/**
 * One serialized piece of a result; `end` comes last. Only what differs from the previous result travels: routes
 * and statuses that changed, then the order of all of them by key when it changed (the receiver takes the others
 * from its previous result, the very same objects), the endpoints by segment (one per Service: only the segments
 * that changed), the match table only when it changed.
 */
export type ResultPiece =
  | { readonly p: 'routes'; readonly routes: readonly [string, unknown][] }
  | { readonly p: 'routeKeys'; readonly keys: readonly string[] }
  | { readonly p: 'statuses'; readonly statuses: readonly unknown[] }
  | { readonly p: 'statusKeys'; readonly keys: readonly string[] }
  /** Endpoint segments (model/endpoint-table.ts), in order, each with its keys in order. */
  | { readonly p: 'segments'; readonly segments: readonly [string, readonly string[]][] }
  | { readonly p: 'exact'; readonly hosts: readonly [string, readonly unknown[]][] }
  | {
      readonly p: 'end';
      readonly hash: string;
      /** No 'routeKeys' / 'statusKeys' pieces: the keys are the previous result's. */
      readonly sameRouteKeys: boolean;
      readonly sameStatusKeys: boolean;
      /** Absent: the 'segments' pieces are all the endpoints. Present: they replace the previous result's
       *  segments of the same name, and these segments are gone. */
      readonly removedSegments?: readonly string[];
      /** No 'exact' pieces, and the table is the previous one. */
      readonly sameTable: boolean;
      readonly wildcard: readonly [string, readonly unknown[]][];
      readonly wildcardSuffixes: readonly string[];
      readonly any: readonly unknown[];
      readonly certificates: readonly [string, unknown][];
      readonly references: { readonly services: readonly string[]; readonly secrets: readonly string[] };
      /** The Gateway API and Ingress statuses (RoutingApiStatuses), when the input had those APIs. */
      readonly routingApis?: unknown;
    };
