// TypeScript types derived from the one schema; never written by hand.
import type { FromSchema } from 'json-schema-to-ts';
import type { routeSpecSchema, routeStatusSchema } from './schema.ts';

/** A spec as the validator hands it over: defaults applied, so defaulted fields are present. */
export type WebSocketRouteSpec = FromSchema<typeof routeSpecSchema>;
export type WebSocketRouteStatus = FromSchema<typeof routeStatusSchema>;

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly generation?: number;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string;
}

export interface WebSocketRoute {
  readonly apiVersion: 'wsgate.io/v1alpha1';
  readonly kind: 'WebSocketRoute';
  readonly metadata: ObjectMeta;
  readonly spec: WebSocketRouteSpec;
  readonly status?: WebSocketRouteStatus;
}
