// A network namespace for a test: loopback up, a veth pair inside it, and the given /32 addresses on one end
// (this kernel has no "dummy" link type). The pod addresses must not be loopback: the API server refuses
// 127.0.0.0/8 in an EndpointSlice. Needs root and iproute2; deleted by the test, on failure too.
import { execFileSync } from 'node:child_process';

const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function createNetns(name: string, addresses: readonly string[]): void {
  ip('netns', 'add', name);
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ip('-n', name, 'link', 'set', 'v0', 'up');
    ip('-n', name, 'link', 'set', 'v1', 'up');
    for (const a of addresses) ip('-n', name, 'addr', 'add', `${a}/32`, 'dev', 'v0');
  } catch (err) {
    deleteNetns(name);
    throw err;
  }
}

export function deleteNetns(name: string): void {
  try {
    ip('netns', 'delete', name);
  } catch {
    // already gone
  }
}

/** Why netns tests cannot run here, or undefined. */
export function netnsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'no usable `ip netns` (iproute2)';
  }
  return undefined;
}
