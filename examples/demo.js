// `npm run demo`: two echo backends and wsgate in front of them (standalone mode, examples/demo-routes.yaml).
// Connect with any WebSocket client to the printed URL; Ctrl-C stops everything.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEchoBackend } from './echo-backend.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const listen = process.env.DEMO_LISTEN ?? '127.0.0.1:8080';
const admin = process.env.DEMO_ADMIN ?? '127.0.0.1:9090';
const backends = await Promise.all([startEchoBackend(9001, 'backend-a'), startEchoBackend(9002, 'backend-b')]);
const gate = spawn(process.execPath, [`${here}../dist/cli.js`, '--config', `${here}demo-routes.yaml`, '--listen', listen, '--admin-listen', admin, '--log-level', 'info'], { stdio: ['ignore', 'inherit', 'inherit'] });

const stop = () => {
  gate.kill('SIGTERM');
  for (const b of backends) b.close();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
gate.on('exit', (code) => {
  for (const b of backends) b.close();
  process.exitCode = code ?? 0;
});

// Wait until wsgate is ready, then say where to connect.
for (let i = 0; i < 100; i++) {
  const ok = await fetch(`http://${admin}/readyz`).then((r) => r.ok, () => false);
  if (ok) {
    console.log(`\nwsgate is ready.\n  connect:  ws://${listen}/echo   (e.g. npx wscat -c ws://${listen}/echo)\n  metrics:  http://${admin}/metrics\n  table:    http://${admin}/debug/snapshot\n`);
    break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
