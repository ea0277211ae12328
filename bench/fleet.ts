// The fleet on etcd (issue 15): propagation latency from a put to two `mtls-gate serve --etcd`
// processes serving it (p50, p99 over 200 changes), and startup time and RSS of a gateway loading
// 10,000 SSL objects from etcd. A real etcd (Debian's etcd-server) on loopback, the built command.
//
//   npm run bench:fleet [-- --changes=200 --objects=10000]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { createTestPki, testRequest } from '../src/testing/index.js';
import { startEtcd } from '../test/sources/etcd.js';

const arg = (name: string, d: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d);
const CHANGES = arg('changes', 200);
const OBJECTS = arg('objects', 10_000);
const BIN = new URL('../dist/cli/main.js', import.meta.url).pathname;

const etcd = await startEtcd();
const pki = await createTestPki({ serverNames: ['*.bench.test'] });
const client = await pki.client('valid');
const upstream = http.createServer((_q, s) => s.end('ok'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
const ssl = (id: string) =>
  JSON.stringify({
    id,
    cert: pki.server.chain,
    key: pki.server.key,
    snis: [`${id}.bench.test`],
    client: { ca: pki.root.cert },
  });

function start(prefix: string) {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'serve',
      '--etcd',
      etcd.url,
      '--prefix',
      prefix,
      '--listen',
      '127.0.0.1:0',
      '--status',
      '127.0.0.1:0',
      '--etcd-timeout',
      '120000',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const t0 = performance.now();
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<{ port: number; status: number; ms: number }>((resolve) => {
    let port = 0;
    lines.on('line', (l) => {
      const m = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(l);
      if (m) port = Number(m[1]);
      const s = /status on http:\/\/127\.0\.0\.1:(\d+)/.exec(l);
      if (s) resolve({ port, status: Number(s[1]), ms: performance.now() - t0 });
    });
  });
  return { child, ready };
}
const rssMb = (pid: number) =>
  Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);

// 1. Propagation: a put of a new SSL object and its service, until both processes serve its SNI.
const prefix = '/bench-fleet';
await etcd.client.txn({
  put: [
    {
      key: `${prefix}/services/all`,
      value: JSON.stringify({ name: 'all', upstream: upstreamUrl, routes: [{ name: 'all', path: '/*' }] }),
    },
  ],
});
const a = start(prefix);
const b = start(prefix);
const [ga, gb] = await Promise.all([a.ready, b.ready]);
const latencies: number[] = [];
for (let i = 0; i < CHANGES; i++) {
  const id = `p${i}`;
  const t0 = performance.now();
  await etcd.client.txn({ put: [{ key: `${prefix}/ssls/${id}`, value: ssl(id) }] });
  for (const g of [ga, gb]) {
    for (;;) {
      const ok = await testRequest({ port: g.port, servername: `${id}.bench.test`, client, timeoutMs: 2000 }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
    }
  }
  latencies.push(performance.now() - t0);
}
a.child.kill('SIGTERM');
b.child.kill('SIGTERM');
latencies.sort((x, y) => x - y);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
console.log(
  `propagation, put to both processes serving the new SNI (${CHANGES} changes): p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
);
console.log('  (each sample includes one TLS handshake per process that checks it, about 3 ms each)');

// 2. Startup from etcd with OBJECTS SSL objects.
const big = '/bench-fleet-big';
for (let i = 0; i < OBJECTS; i += 100) {
  const put = [];
  for (let j = i; j < Math.min(OBJECTS, i + 100); j++) put.push({ key: `${big}/ssls/t${j}`, value: ssl(`t${j}`) });
  await etcd.client.txn({ put });
}
await etcd.client.txn({
  put: [
    {
      key: `${big}/services/all`,
      value: JSON.stringify({ name: 'all', upstream: upstreamUrl, routes: [{ name: 'all', path: '/*' }] }),
    },
  ],
});
const g = start(big);
const ready = await g.ready;
const rss = rssMb(g.child.pid!);
const ok = await testRequest({ port: ready.port, servername: `t${OBJECTS - 1}.bench.test`, client }).then(
  (r) => r.status,
);
console.log(
  `startup from etcd with ${OBJECTS.toLocaleString('en')} SSL objects: ready (status listener up, all applied) in ${(ready.ms / 1000).toFixed(2)} s, RSS ${rss} MB; the last object answers ${ok}`,
);
g.child.kill('SIGTERM');
await new Promise((r) => g.child.once('exit', r));
await etcd.stop();
upstream.close();
