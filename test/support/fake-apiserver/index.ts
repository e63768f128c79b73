// Test double: the in-repo fake Kubernetes API server (see server.ts). Import from here.
export { FakeApiServer, type FakeApiServerOptions, type RequestRecord } from './server.ts';
export type { Faults, HangOptions, RequestFault, Verb } from './faults.ts';
export { waitUntil, within } from '../wait.ts';
export { ApiError } from './errors.ts';
export { websocketRoutes, builtinResources, resourceFromCrd, type KObject, type ResourceType } from './resources.ts';
