// The IPC vocabulary between the primary (control plane, admin) and its workers (data plane). Snapshots travel
// with the 'advanced' serialization (structured clone), so Maps arrive as Maps.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { SnapshotContent } from '../model/snapshot.ts';

export type ToWorker =
  | { readonly t: 'snapshot'; readonly content: SnapshotContent }
  | { readonly t: 'metrics'; readonly id: number }
  | { readonly t: 'shutdown' };

export type ToPrimary =
  | { readonly t: 'hello' }
  | { readonly t: 'listening' }
  | { readonly t: 'metrics'; readonly id: number; readonly data: MetricObjectWithValues<MetricValue<string>>[] };
