// Snapshots for health unit tests: the harness's real-builder holder and route objects (no proxy, no sockets).
export { holderWith, routeObject as route } from './harness.ts';
