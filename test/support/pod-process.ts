// A pod's container as a child process, for the rollout tests: a ws backend that greets each connection with
// "hello from NAME" and echoes. argv[2] is its name, argv[3] what it does on SIGTERM: "exit" (stops at once, a
// backend without preStop or SIGTERM handling) or "serve" (keeps serving until SIGKILL, the end of the grace
// period). Prints its port once listening, and "SIGTERM" when the signal arrives.
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const name = process.argv[2] ?? 'pod';
const onTerm = process.argv[3] === 'serve' ? 'serve' : 'exit';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.send(`hello from ${name}`);
  ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
});
wss.on('listening', () => process.stdout.write(`${(wss.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => {
  process.stdout.write('SIGTERM\n');
  if (onTerm === 'exit') process.exit(0);
});
