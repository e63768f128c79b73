// Test double: the discovery documents (/api, /apis, /apis/<group>[/<version>], /version) built from the
// registered types, for clients that look before they call.
import { apiVersionOf, type ResourceType } from './resources.ts';

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function resourceList(groupVersion: string, types: readonly ResourceType[]): Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const t of types) {
    resources.push({
      name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs,
      ...(t.shortNames ? { shortNames: t.shortNames } : {}),
    });
    if (t.hasStatus) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}

/** The discovery body for a path, or undefined when the path is not a discovery path. */
export function discoveryDocument(pathname: string, types: readonly ResourceType[], serverAddress: string): unknown {
  const segs = pathname.split('/').filter(Boolean);
  if (pathname === '/version') {
    return { major: '1', minor: '33', gitVersion: 'v1.33.0-wsgate-fake', platform: 'fake' };
  }
  if (segs[0] === 'api') {
    if (segs.length === 1) return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
    if (segs.length === 2 && segs[1] === 'v1') return resourceList('v1', types.filter((t) => t.group === ''));
    return undefined;
  }
  if (segs[0] !== 'apis') return undefined;
  const groups = new Map<string, string[]>();
  for (const t of types) {
    if (t.group === '') continue;
    const versions = groups.get(t.group) ?? [];
    if (!versions.includes(t.version)) versions.push(t.version);
    groups.set(t.group, versions);
  }
  const groupDoc = (name: string, versions: string[]): Record<string, unknown> => {
    const vs = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
    return { kind: 'APIGroup', apiVersion: 'v1', name, versions: vs, preferredVersion: vs[0] };
  };
  if (segs.length === 1) return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groups].map(([n, v]) => groupDoc(n, v)) };
  const versions = groups.get(segs[1]!);
  if (!versions) return undefined;
  if (segs.length === 2) return groupDoc(segs[1]!, versions);
  if (segs.length === 3 && versions.includes(segs[2]!)) {
    return resourceList(`${segs[1]}/${segs[2]}`, types.filter((t) => apiVersionOf(t) === `${segs[1]}/${segs[2]}`));
  }
  return undefined;
}
