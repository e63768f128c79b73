// manifests/ is generated (scripts/gen-manifests.ts): install.yaml from the chart's defaults with the real
// helm, rbac.yaml from the permission contract. Both fail here when stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadAll } from 'js-yaml';
import { installFile, rbacFile, renderInstallYaml, renderRbacYaml } from '../../scripts/gen-manifests.ts';
import type { K8sObject } from '../support/helm.ts';

const docs = (text: string) => (loadAll(text) as unknown[]).filter((d): d is K8sObject => d !== null && typeof d === 'object');

test('manifests/install.yaml is the chart rendered with defaults (run: node --import tsx scripts/gen-manifests.ts)', async () => {
  assert.equal(readFileSync(installFile, 'utf8'), await renderInstallYaml(), `${installFile} is stale`);
});

test('manifests/rbac.yaml matches permissions.ts, with a reason on every rule', () => {
  const text = readFileSync(rbacFile, 'utf8');
  assert.equal(text, renderRbacYaml(), `${rbacFile} is stale`);
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (/^\s+- apiGroups:/.test(line)) assert.match(lines[i - 1], /^\s+# \S/, `rule at line ${i + 1} has no comment saying why`);
  });
});

test('manifests/rbac.yaml grants what install.yaml grants', () => {
  const pick = (objs: K8sObject[]) =>
    objs
      .filter((o) => ['ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding', 'ServiceAccount'].includes(o.kind))
      .map((o) => ({ kind: o.kind, name: o.metadata.name, namespace: o.metadata.namespace, rules: o.rules, roleRef: o.roleRef, subjects: o.subjects }))
      .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
  const install = docs(readFileSync(installFile, 'utf8'));
  assert.deepEqual(pick(docs(readFileSync(rbacFile, 'utf8'))), pick(install));
  assert.equal(install[0].kind, 'Namespace');
  assert.ok(install.every((o) => o.metadata.namespace === undefined || o.metadata.namespace === 'wsgate'));
});
