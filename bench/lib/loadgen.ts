// A small HTTP/1.1 keep-alive load generator that presents a client certificate (wrk and h2load
// cannot). Each connection sends one request, reads the whole response (Content-Length framed),
// sends the next. Run it on another core than the server (taskset).
//
//   node --import tsx bench/lib/loadgen.ts <json-config>
// config: { port, servername, path, connections, durationMs, warmupMs, cert?, key? }
// prints one JSON line: { requests, seconds, rps, p50, p99, errors, statuses }
import tls from 'node:tls';

interface Config {
  port: number;
  servername: string;
  path: string;
  connections: number;
  durationMs: number;
  warmupMs: number;
  cert?: string;
  key?: string;
}

const cfg = JSON.parse(process.argv[2]!) as Config;
const request = Buffer.from(`GET ${cfg.path} HTTP/1.1\r\nHost: ${cfg.servername}\r\n\r\n`);
let measuring = false;
let stopped = false;
let requests = 0;
let errors = 0;
const statuses: Record<string, number> = {};
const latencies: number[] = [];

function connection(): void {
  const sock = tls.connect({ host: '127.0.0.1', port: cfg.port, servername: cfg.servername, rejectUnauthorized: false, cert: cfg.cert, key: cfg.key });
  let buf: Buffer = Buffer.alloc(0);
  let sentAt = 0;
  const send = () => {
    if (stopped) return sock.destroy();
    sentAt = performance.now();
    sock.write(request);
  };
  sock.on('secureConnect', send);
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /content-length: *(\d+)/i.exec(head);
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (buf.length < total) return;
      buf = buf.subarray(total);
      const status = head.slice(9, 12);
      if (measuring) {
        requests++;
        statuses[status] = (statuses[status] ?? 0) + 1;
        latencies.push(performance.now() - sentAt);
      }
      if (/connection: *close/i.test(head)) {
        sock.destroy();
        if (!stopped) connection();
        return;
      }
      send();
    }
  });
  sock.on('error', () => {
    if (measuring) errors++;
    if (!stopped) setTimeout(connection, 10);
  });
}

for (let i = 0; i < cfg.connections; i++) connection();
setTimeout(() => {
  measuring = true;
  const start = performance.now();
  setTimeout(() => {
    measuring = false;
    stopped = true;
    const seconds = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    process.stdout.write(JSON.stringify({ requests, seconds, rps: requests / seconds, p50: q(0.5), p99: q(0.99), errors, statuses }) + '\n');
    process.exit(0);
  }, cfg.durationMs);
}, cfg.warmupMs);
