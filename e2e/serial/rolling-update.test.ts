// A rolling update on a REAL control plane (etcd, kube-apiserver, kube-controller-manager 1.28), run in a
// network namespace this test creates: backend pods with addresses 10.244.0.x (the API server refuses loopback
// in EndpointSlices), their EndpointSlices built by the real EndpointSlice controller, the kubelet's part
// played by the scenario (status patches, preStop, SIGTERM, removal after exit), two wsgate replicas running
// with the chart's ServiceAccount token, and 1,000 real ws clients. Three pods rolled one at a time, then one
// wsgate replica scaled in. Asserted as counts and orders: every client of a rolled pod gets 1012 before that
// pod's process exits, none 1006 or silently dropped, reconnects spread over the drain window, everyone keeps
// working. Pod termination order: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
// and https://kubernetes.io/docs/tutorials/services/pods-and-endpoint-termination-flow/
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cliPath } from '../../test/support/cli-process.ts';
import { kubeEnvMissing } from '../../test/support/kube-env.ts';
import { createNetns, deleteNetns, netnsMissing } from '../support/netns.ts';
import type { RollReport } from '../support/rolling-scenario.ts';

const windowSeconds = 4;
const clients = 1000;
const ns = `wsgate-e2e-${process.pid}`;
const missing = kubeEnvMissing({ controllerManager: true }) ?? netnsMissing() ?? (existsSync(cliPath) ? undefined : `no ${cliPath} (npm run build)`);

interface Report {
  clients: number;
  sessions: number;
  closeCodes: Record<string, number>;
  openAtEnd: number;
  echoedAtEnd: number;
  failureCount: number;
  failures: string[];
  openOnGateways: number;
  forbiddenLogLines: number;
  rolls: RollReport[];
  scaleIn: { clients: number; codes: Record<string, number>; exitCode: number; closedBeforeExit: number; closeTenths: number[]; reconnectTenths: number[]; closeSpanMs: number; timeline: Record<string, number> };
}

after(() => deleteNetns(ns));

/**
 * Paced, not a mass cut: the 1012s span at least 80 % of the window, and no tenth of it (nor the bucket after
 * it) holds half the clients. The times are read in the clients' process; a stalled event loop (in wsgate or
 * here) delays some closes and bunches them, and it takes a stall of over a third of the window to put half
 * the clients in one tenth, while a mass cut puts all of them in one within milliseconds. The reconnects follow
 * the closes and are reported beside them; the package.json test script runs this file on its own, after the
 * rest of the suite, so that no other test's load makes such a stall.
 */
const paced = (r: { clients: number; closeSpanMs: number; closeTenths: readonly number[] }): boolean =>
  r.closeSpanMs >= 0.8 * windowSeconds * 1000 && Math.max(...r.closeTenths) < r.clients / 2;

test('rolling update and wsgate scale-in on a real control plane: 1012 before exit, none 1006, paced reconnects', { timeout: 180_000 }, async (t) => {
  if (missing) return t.skip(missing);
  createNetns(ns, ['10.244.0.11', '10.244.0.12', '10.244.0.13', '10.244.0.14', '10.244.0.15', '10.244.0.16']);
  // Its own process group, so every process it started (etcd, apiserver, kcm, wsgate, backends) can be killed.
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', join(import.meta.dirname, '..', 'support', 'rolling-scenario.ts'), String(windowSeconds), String(clients)], {
    // From the repository root, where `--import tsx` resolves (the backends it starts inherit it).
    stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: join(import.meta.dirname, '..', '..'),
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const killGroup = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  const bound = setTimeout(() => {
    killGroup('SIGTERM');
    setTimeout(() => killGroup('SIGKILL'), 5000).unref();
  }, 150_000);
  t.after(() => {
    clearTimeout(bound);
    killGroup('SIGKILL');
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  for (const line of err.split('\n').filter((l) => l.startsWith('# scenario'))) t.diagnostic(line.slice(2));
  assert.equal(code, 0, `scenario failed:\n${err.slice(-3000)}`);
  const report = JSON.parse(out.trim().split('\n').pop()!) as Report;

  assert.equal(report.rolls.length, 3);
  for (const r of report.rolls) {
    assert.ok(r.clients > 0, `${r.pod} had clients`);
    assert.deepEqual(r.codes, { 1012: r.clients }, `${r.pod}: every client got 1012 (no 1006, no silent drop)`);
    assert.equal(r.closedBeforeExit, r.clients, `${r.pod}: every 1012 before the process exited`);
    assert.equal(r.openAtExit, 0, `${r.pod}: no connection left on the backend when it exited`);
    assert.ok(paced(r), `${r.pod}: closes span ${r.closeSpanMs} ms, 1012s per tenth of the window ${r.closeTenths.join(' ')}, reconnects ${r.reconnectTenths.join(' ')}`);
    const tl = r.timeline;
    assert.ok(tl['lastClose']! < tl['exited']! && tl['exited']! < tl['podRemoved']! && tl['podRemoved']! <= tl['removedFromSlice']!, `${r.pod}: order ${JSON.stringify(tl)}`);
  }
  const s = report.scaleIn;
  assert.ok(s.clients > 0);
  assert.deepEqual(s.codes, { 1012: s.clients }, 'every client of the stopped replica got 1012');
  assert.equal(s.exitCode, 0);
  assert.equal(s.closedBeforeExit, s.clients);
  assert.ok(paced(s), `scale-in: closes span ${s.closeSpanMs} ms, 1012s per tenth of the window ${s.closeTenths.join(' ')}, reconnects ${s.reconnectTenths.join(' ')}`);

  assert.deepEqual(Object.keys(report.closeCodes), ['1012'], `close codes seen: ${JSON.stringify(report.closeCodes)}`);
  assert.deepEqual(report.failures, []);
  assert.equal(report.openAtEnd, clients, 'every client has a session at the end');
  assert.equal(report.echoedAtEnd, clients, 'and it echoes');
  assert.equal(report.openOnGateways, 1, 'all on the remaining replica');
  assert.equal(report.forbiddenLogLines, 0, 'wsgate, running with the chart ServiceAccount token, was refused nothing');
  const rolled = report.rolls.map((r) => `${r.pod}: ${r.clients} × 1012, tenths ${r.closeTenths.join(' ')} (reconnects ${r.reconnectTenths.join(' ')}), span ${r.closeSpanMs} ms`);
  t.diagnostic(`${clients} clients, ${report.sessions} sessions; ${rolled.join('; ')}; scale-in: ${s.clients} × 1012, tenths ${s.closeTenths.join(' ')} (reconnects ${s.reconnectTenths.join(' ')}), span ${s.closeSpanMs} ms; codes ${JSON.stringify(report.closeCodes)}`);
});
