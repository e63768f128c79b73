// A tiny WebSocket echo server for the demo and for trying routes by hand: echoes every message, and tells
// the client which backend it reached in a first message ("hello from <name>").
// Usage: node examples/echo-backend.js PORT [NAME]
import { WebSocketServer } from 'ws';

export function startEchoBackend(port, name = `echo-${port}`, host = '127.0.0.1') {
  const wss = new WebSocketServer({ host, port, perMessageDeflate: true });
  wss.on('connection', (ws) => {
    ws.send(`hello from ${name}`);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return new Promise((resolve) => wss.on('listening', () => resolve(wss)));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 9001);
  await startEchoBackend(port, process.argv[3]);
  console.log(`echo backend on ws://127.0.0.1:${port}`);
}
