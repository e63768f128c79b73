// The baseline a Node proxy has to beat: accept, connect to a backend (round-robin), then
// client.pipe(upstream).pipe(client). No HTTP parsing at all; the upgrade passes through as bytes.
// Usage: node --import tsx bench/pipe-proxy.ts --listen 127.0.0.1:PORT --backend 127.0.0.1:A [--backend ...]
import net from 'node:net';

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i < 1 || !Number.isInteger(port) || port <= 0) throw new Error(`bad address ${s}`);
  return { host: s.slice(0, i), port };
}

function parseArgs(argv: readonly string[]): { listen: { host: string; port: number }; backends: { host: string; port: number }[] } {
  let listen: { host: string; port: number } | undefined;
  const backends: { host: string; port: number }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === '--listen' && v) listen = hostPort(v);
    else if (argv[i] === '--backend' && v) backends.push(hostPort(v));
    else throw new Error(`unknown argument ${argv[i]}`);
    i++;
  }
  if (!listen || backends.length === 0) throw new Error('usage: pipe-proxy.ts --listen HOST:PORT --backend HOST:PORT...');
  return { listen, backends };
}

function main(): void {
  const { listen, backends } = parseArgs(process.argv.slice(2));
  let next = 0;
  const server = net.createServer({ noDelay: true }, (client) => {
    const b = backends[next++ % backends.length];
    const up = net.connect({ host: b.host, port: b.port, noDelay: true });
    const done = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', done).on('close', done);
    up.on('error', done).on('close', done);
    client.pipe(up).pipe(client);
  });
  server.listen({ host: listen.host, port: listen.port, backlog: 4096 }, () => process.stdout.write('listening\n'));
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
