// A ws echo backend run as a child process (tests kill it with SIGKILL). argv[2] is its name: it answers the
// message "who" with it, echoes everything else, and prints its port on stdout once listening.
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const name = process.argv[2] ?? 'child';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(String(data) === 'who' ? name : (data as Buffer), { binary: isBinary }));
});
wss.on('listening', () => process.stdout.write(`${(wss.address() as AddressInfo).port}\n`));
