// One backend "pod" as its own process: a ws echo server on the pod's IP that greets each connection with its
// name. Like a container, on SIGTERM it keeps serving until the end of its grace (argv[4] ms after the signal),
// then exits; its last stdout line says how many connections were still open at that moment.
import { WebSocketServer } from 'ws';

const [name = 'pod', host = '127.0.0.1', graceArg = '0'] = process.argv.slice(2);
const wss = new WebSocketServer({ host, port: 8080 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.send(`hello from ${name}`);
  ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
});
wss.on('listening', () => process.stdout.write(`${JSON.stringify({ listening: `${host}:8080` })}\n`));
process.on('SIGTERM', () => {
  setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ exit: name, open: wss.clients.size })}\n`, () => process.exit(0));
  }, Number(graceArg));
});
