// Flags, environment and defaults into a frozen Config; bad values named with the flag and the reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { helpText, loadConfig, openFileLimit } from '../../src/config/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { flags, envName } from '../../src/config/flags.ts';

test('defaults, flags over environment', () => {
  const c = loadConfig(['--config', 'routes.yaml'], {});
  assert.equal(c.mode, 'standalone');
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 8080 });
  assert.deepEqual(c.adminListen, { host: '0.0.0.0', port: 9090 });
  assert.equal(c.logLevel, 'info');
  assert.equal(c.allowStaticEndpoints, true);
  const e = loadConfig(['--listen', '127.0.0.1:1'], { WSGATE_LISTEN: '127.0.0.1:2', WSGATE_CONFIG: 'x.yaml', WSGATE_LOG_LEVEL: 'debug' });
  assert.equal(e.listen.port, 1);
  assert.equal(e.configPath, 'x.yaml');
  assert.equal(e.logLevel, 'debug');
  const k = loadConfig(['--kubernetes', '--listen', '[::1]:0'], { POD_NAMESPACE: 'wsgate', POD_NAME: 'wsgate-0' });
  assert.equal(k.mode, 'kubernetes');
  assert.equal(k.allowStaticEndpoints, false);
  assert.equal(k.leaseNamespace, 'wsgate');
  assert.equal(k.podName, 'wsgate-0');
  assert.deepEqual(k.listen, { host: '::1', port: 0 });
  assert.ok(Object.isFrozen(k));
});

test('bad values are reported with the flag and the reason', () => {
  assert.throws(
    () => loadConfig(['--config', 'a', '--listen', 'nope', '--workers', '0', '--log-level', 'loud', '--trusted-proxies', '10.0.0.0/99'], {}),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.path).sort(), ['--listen', '--log-level', '--trusted-proxies', '--workers']);
      return true;
    },
  );
  // --trusted-proxies goes through the same parser as clientIPs: 10.0.0.256 and a zone index are refused too.
  assert.throws(
    () => loadConfig(['--config', 'a', '--trusted-proxies', '10.0.0.0/8, 10.0.0.256,fe80::1%eth0/64'], {}),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [
        { path: '--trusted-proxies', message: '"10.0.0.256" is not an IP address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)' },
        { path: '--trusted-proxies', message: '"fe80::1%eth0/64" has a zone index, which a CIDR cannot have' },
      ]);
      return true;
    },
  );
  assert.throws(() => loadConfig([], {}), /invalid configuration/);
  assert.throws(() => loadConfig(['--bogus'], {}), ConfigError);
});

test('watch namespaces: a comma list from --watch-namespaces or WSGATE_WATCH_NAMESPACES, or one from --watch-namespace', () => {
  const k = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadConfig(['--kubernetes', ...argv], env).watchNamespaces;
  assert.deepEqual(k([]), []);
  assert.deepEqual(k(['--watch-namespaces', 'apps, web,apps']), ['apps', 'web']);
  assert.deepEqual(k([], { WSGATE_WATCH_NAMESPACES: 'a,b' }), ['a', 'b']);
  assert.deepEqual(k(['--watch-namespaces=c'], { WSGATE_WATCH_NAMESPACES: 'a,b' }), ['c']);
  assert.deepEqual(k(['--watch-namespace', 'apps']), ['apps']);
  const problems = (argv: string[]) => {
    try {
      k(argv);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
    assert.fail('accepted');
  };
  assert.deepEqual(problems(['--watch-namespaces', 'Apps,ok,' + 'x'.repeat(64)]), [
    { path: '--watch-namespaces', message: '"Apps" is not a namespace name' },
    { path: '--watch-namespaces', message: `"${'x'.repeat(64)}" is not a namespace name` },
  ]);
  assert.deepEqual(problems(['--watch-namespaces', 'a', '--watch-namespace', 'b']), [{ path: '--watch-namespace', message: 'choose one of --watch-namespace or --watch-namespaces' }]);
});

test('validate command and help list every flag with its environment variable', () => {
  assert.deepEqual(loadConfig(['validate', 'a.yaml', 'b'], {}).paths, ['a.yaml', 'b']);
  const help = helpText();
  for (const f of flags) {
    assert.ok(help.includes(`--${f.name}`), f.name);
    assert.ok(help.includes(envName(f.name)), f.name);
  }
});

test('resource limits: --max-connections derived from the open-file limit; per-backend handshake share', async () => {
  const { execFileSync } = await import('node:child_process');
  // bash's `ulimit -n` sets RLIMIT_NOFILE for the node it execs, which reads it back from /proc/self/limits
  // (proc(5): https://man7.org/linux/man-pages/man5/proc_pid_limits.5.html).
  const script = "import('./src/config/config.ts').then((m) => { const c = m.loadConfig(['--config', 'r.yaml', '--max-handshakes-in-flight', '20'], {}); console.log(JSON.stringify([c.maxConnections, c.maxPendingHandshakesPerBackend])); })";
  const out = execFileSync('bash', ['-c', `ulimit -n 512; exec "${process.execPath}" --import tsx -e "${script}"`], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), [(512 - 256) / 2, 5]);
  assert.equal(loadConfig(['--config', 'r.yaml', '--max-connections', '7'], {}).maxConnections, 7);
  assert.equal(loadConfig(['--config', 'r.yaml', '--debug-endpoints'], {}).debugEndpoints, true);
  assert.equal(loadConfig(['--config', 'r.yaml'], {}).debugEndpoints, false);
});

test('openFileLimit reads the soft limit; unlimited or missing is unknown', () => {
  const limits = (v: string) => `Limit                     Soft Limit           Hard Limit           Units     \nMax open files            ${v}                 1048576              files     \n`;
  assert.deepEqual([openFileLimit(limits('1024')), openFileLimit(limits('unlimited')), openFileLimit('nothing here')], [1024, undefined, undefined]);
});
