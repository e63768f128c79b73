// The chart's redis block: the URL and ACL password reach the pod from a Secret as the flags' env vars (never
// in the args), the other settings as flags the real parser accepts, and the CA bundle as a mounted file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.ts';
import { render, type K8sObject } from '../support/helm.ts';

const podEnv = { POD_NAME: 'wsgate-abc', POD_NAMESPACE: 'wsgate' };
const deployment = (objs: K8sObject[]) => objs.find((o) => o.kind === 'Deployment')!;

test('redis.existingSecret: WSGATE_REDIS_URL and WSGATE_REDIS_PASSWORD from the Secret, settings as flags, CA mounted', async () => {
  const objs = await render({
    namespace: 'wsgate',
    values: { redis: { existingSecret: 'wsgate-redis', passwordKey: 'redis-password', username: 'wsgate', caSecret: 'redis-ca', failureMode: 'Closed', timeoutMs: 150, leaseTtlSeconds: 20 } },
  });
  const pod = deployment(objs).spec.template.spec;
  const c = pod.containers[0];
  const env = (n: string) => c.env.find((e: { name: string }) => e.name === n);
  assert.deepEqual(env('WSGATE_REDIS_URL').valueFrom.secretKeyRef, { name: 'wsgate-redis', key: 'redis-url' });
  assert.deepEqual(env('WSGATE_REDIS_PASSWORD').valueFrom.secretKeyRef, { name: 'wsgate-redis', key: 'redis-password' });
  assert.ok(!c.args.some((a: string) => a.startsWith('--redis-url') || a.startsWith('--redis-password')));
  const config = loadConfig(c.args, { ...podEnv, WSGATE_REDIS_URL: 'rediss://redis.example:6380', WSGATE_REDIS_PASSWORD: 'pw' });
  assert.deepEqual(config.redis, {
    url: 'rediss://redis.example:6380',
    username: 'wsgate',
    password: 'pw',
    tlsCaFile: '/etc/wsgate/redis-ca/ca.crt',
    timeoutMs: 150,
    keyPrefix: 'wsgate:',
    leaseTtlMs: 20000,
    failureMode: 'Closed',
  });
  assert.ok(c.volumeMounts.some((m: { name: string; mountPath: string }) => m.name === 'redis-ca' && m.mountPath === '/etc/wsgate/redis-ca'));
  assert.deepEqual(pod.volumes.find((v: { name: string }) => v.name === 'redis-ca').secret, { secretName: 'redis-ca' });
});

test('no redis.existingSecret: no Redis env, flags or volume (limits per pod)', async () => {
  const c = deployment(await render({ namespace: 'wsgate' })).spec.template.spec.containers[0];
  assert.ok(!c.env.some((e: { name: string }) => e.name.startsWith('WSGATE_REDIS')));
  assert.ok(!c.args.some((a: string) => a.startsWith('--redis')));
  assert.equal(loadConfig(c.args, podEnv).redis, undefined);
});
