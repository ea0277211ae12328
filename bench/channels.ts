// What publishing on the diagnostics channels costs (issue 18): per request, with no subscriber,
// the guard, the proxy and the store read `hasSubscribers` (measured here in-process, against the
// same loop without the read); and keep-alive requests/s through the gateway with nobody subscribed
// against the same gateway with /metrics on (every channel subscribed), alternating rounds.
//
//   npm run bench:channels [-- --seconds=3 --rounds=4]
import diagnostics_channel from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadConfig } from './lib/loadgen.js';
import { cpuSeconds, lines, median, run } from './lib/run.js';

const dist = (name: string) => new URL(`../dist/${name}`, import.meta.url).href;
const { createTestPki } = (await import(dist('testing/index.js'))) as typeof import('../src/testing/index.js');
const arg = (name: string, d: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d);
const SECONDS = arg('seconds', 3);
const ROUNDS = arg('rounds', 4);

// 1. The check itself: four channel reads per request (verdict, proxy x2, handshake once per connection).
const ch = diagnostics_channel.channel('mtls-gate:verdict');
const N = 20_000_000;
let sink = 0;
const loop = (read: boolean) => {
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    if (read && ch.hasSubscribers) sink++;
    sink ^= i;
  }
  return Number(process.hrtime.bigint() - t) / N;
};
loop(true);
loop(false);
const withRead = median([loop(true), loop(true), loop(true)]);
const without = median([loop(false), loop(false), loop(false)]);
console.log(
  `hasSubscribers read, no subscriber: ${(withRead - without).toFixed(2)} ns per read (loop ${without.toFixed(2)} ns, ${withRead.toFixed(2)} ns with the read); ${sink === 42 ? '' : ''}`,
);

// 2. Through the gateway: nobody subscribed vs /metrics on.
const pki = await createTestPki({ serverNames: ['bench.test'] });
const client = await pki.client('valid');
const body = '{"ok":true}';
const upstream = http.createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-channels-'));
const start = async (withMetrics: boolean) => {
  const config = {
    listen: [{ port: 0 }],
    ...(withMetrics ? { status: { port: 0 } } : {}),
    ssls: [
      { id: 'bench', cert: pki.server.chain, key: pki.server.key, snis: ['bench.test'], client: { ca: pki.root.cert } },
    ],
    services: [{ name: 'json', upstream: url, routes: [{ name: 'json', path: '/json' }] }],
  };
  const file = join(dir, `gw-${withMetrics}.mjs`);
  writeFileSync(
    file,
    `const { createGateway } = await import(${JSON.stringify(dist('index.js'))});
const g = await createGateway(${JSON.stringify(config)});
console.log(JSON.stringify({ port: g.addresses[0].port }));
process.on('SIGTERM', () => g.close().then(() => process.exit(0)));`,
  );
  const child = run(0, [file]);
  const { port } = JSON.parse(await lines(child).next()) as { port: number };
  return { child, port };
};
const load = async (g: { child: ReturnType<typeof run>; port: number }) => {
  const cfg: LoadConfig = {
    mode: 'ka',
    port: g.port,
    servername: 'bench.test',
    path: '/json',
    connections: 50,
    durationMs: SECONDS * 1000,
    warmupMs: 1000,
    cert: client.cert,
    key: client.key,
  };
  const file = join(dir, `load-${g.port}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  const out = lines(run(1, ['bench/lib/loadgen.ts', file]));
  let line = await out.next();
  while (!line.includes('"measuring"')) line = await out.next();
  const cpu0 = cpuSeconds(g.child.pid!);
  const r = JSON.parse(await out.next()) as { rps: number; requests: number };
  return { rps: r.rps, cpuUs: ((cpuSeconds(g.child.pid!) - cpu0) * 1e6) / r.requests };
};
const quiet = await start(false);
const counted = await start(true);
const rows: string[] = [];
const ratios: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const a = await load(quiet);
  const b = await load(counted);
  ratios.push(b.cpuUs === 0 ? 1 : a.cpuUs / b.cpuUs);
  rows.push(
    `| ${i + 1} | ${Math.round(a.rps)} | ${Math.round(b.rps)} | ${a.cpuUs.toFixed(0)} / ${b.cpuUs.toFixed(0)} |`,
  );
}
console.log(
  `\n| round | no subscriber req/s | /metrics on req/s | gateway CPU µs/response |\n|---|---|---|---|\n${rows.join('\n')}\n\nmedian CPU ratio (no subscriber / subscribed) ${median(ratios).toFixed(3)}`,
);
quiet.child.kill('SIGTERM');
counted.child.kill('SIGTERM');
upstream.close();
rmSync(dir, { recursive: true, force: true });
