// An echo backend for the benchmark: one `ws` server on 127.0.0.1 (port 0), echoing every message as it came.
// Started by bench/run.ts with an IPC channel; it reports its port and exits when the parent goes away.
import { WebSocketServer } from 'ws';
import type { FromBackend } from './protocol.ts';

function main(): void {
  if (!process.send) throw new Error('echo-backend.ts is started by bench/run.ts (needs an IPC channel)');
  const send = process.send.bind(process);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, backlog: 4096, clientTracking: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => ws.terminate());
  });
  wss.on('listening', () => {
    const addr = wss.address();
    if (!addr || typeof addr === 'string') throw new Error('unexpected listen address');
    const msg: FromBackend = { type: 'ready', port: addr.port };
    send(msg);
  });
  const stop = () => process.exit(0);
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
