// Many tenants (issue 19): every SSL object with its own server certificate (minted by bench/lib/mint.ts,
// keys from a pool of 1,000, one client CA for all), each measurement in its own process.
//
// 1. Build time and RSS at rest of a store of 10,000 and 100,000 objects (cache of 1,000 contexts),
//    and of 10,000 with the build before (`--before=DIST`: a dist/ built from an earlier commit, which
//    kept every context and checked each object with a TLS context).
// 2. A gateway (createGateway, the HTTPS listener the command runs) with 100,000 objects: start-up,
//    then TLS handshakes with a client certificate on random SNIs (server on core 0, client on core 1):
//    over all 100,000 with a cache of 1,000 (cold), over 1,000 of them that fit the cache (hot), and a
//    1-object store (`*.bench.test`) taking the same SNIs. Alternating rounds.
// 3. Applying one changed object: `gateway.apply` of the whole configuration with one object changed (a file
//    reload), and `store.apply` of that object alone (an etcd event).
//
//   npm run bench:tenants [-- --objects=100000 --rounds=2 --seconds=8 --before=/path/to/old/dist]
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createTestPki } from '../src/testing/index.js';
import { serverMint } from './lib/mint.js';

const arg = (name: string, d: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d;
const N = Number(arg('objects', '100000'));
const ROUNDS = Number(arg('rounds', '2'));
const SECONDS = Number(arg('seconds', '8'));
const BEFORE = arg('before', '');
const CACHE = 1000;
const dist = new URL('../dist/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-tenants-'));
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const pinned = (core: number, args: string[]) =>
  hasTaskset
    ? (['taskset', ['-c', String(core), process.execPath, ...args]] as const)
    : ([process.execPath, args] as const);

// The objects, one JSON line each, minted once; children read them line by line (the input is not held).
const pki = await createTestPki({ name: 'tenants client ca' });
const client = await pki.client();
const mint = serverMint(1000);
const file = join(dir, 'objects.jsonl');
{
  const t = performance.now();
  const out = createWriteStream(file);
  for (let i = 0; i < N; i++) {
    const s = mint.serverCert(i);
    if (
      !out.write(
        `${JSON.stringify({ id: `t${i}`, cert: s.cert, key: s.key, snis: [s.sni], client: { ca: pki.root.cert } })}\n`,
      )
    )
      await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  console.log(
    `minted ${N.toLocaleString('en')} server certificates in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
}

const common = `
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
const gc = () => { globalThis.gc?.(); };
async function* objects(file, n) {
  let i = 0;
  for await (const line of createInterface({ input: createReadStream(file) })) { if (i++ >= n) return; yield JSON.parse(line); }
}
`;

// 1. Build and RSS.
const build = join(dir, 'build.mjs');
writeFileSync(
  build,
  `${common}
const [distDir, file, n, cap] = process.argv.slice(2);
const { createSslStore } = await import(distDir + 'index.js');
gc();
const bare = process.memoryUsage().rss;
const store = createSslStore({ contextCacheSize: Number(cap) });
let ms = 0, pem = 0;
for await (const o of objects(file, Number(n))) {
  pem += o.cert.length + o.key.length;
  const t = performance.now();
  store.set(o);
  ms += performance.now() - t;
}
gc(); await new Promise((r) => setTimeout(r, 300)); gc();
console.log(JSON.stringify({ ms, rss: process.memoryUsage().rss, bare, pem, contexts: store.contextStats?.().cached ?? n }));`,
);
const mb = (b: number) => (b / 2 ** 20).toFixed(0);
const rows: string[] = [];
const runBuild = (label: string, distDir: string, n: number, cap: number) => {
  const r = spawnSync(process.execPath, ['--expose-gc', build, distDir, file, String(n), String(cap)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
  const ratio = (o.rss! - o.bare!) / o.pem!;
  rows.push(
    `| ${label} | ${n.toLocaleString('en')} | ${cap.toLocaleString('en')} | ${(o.ms! / 1000).toFixed(2)} s | ${((o.ms! * 1000) / n).toFixed(0)} µs | ${mb(o.rss!)} MB | ${mb(o.bare!)} MB | ${mb(o.pem!)} MB | ${ratio.toFixed(2)} | ${o.contexts} |`,
  );
  console.log(rows.at(-1));
};
if (BEFORE) runBuild('before (every context kept)', BEFORE, Math.min(N, 10_000), Math.min(N, 10_000));
runBuild('now', dist, Math.min(N, 10_000), CACHE);
if (N > 10_000) runBuild('now', dist, N, CACHE);

// 2. and 3. The gateway.
const server = join(dir, 'server.mjs');
writeFileSync(
  server,
  `${common}
const [distDir, file, n, cap, one] = process.argv.slice(2);
const { createGateway } = await import(distDir + 'index.js');
const ssls = [];
for await (const o of objects(file, one === '1' ? 1 : Number(n))) ssls.push(one === '1' ? { ...o, snis: ['*.bench.test'] } : o);
const config = { listen: [{ host: '127.0.0.1', port: 0 }], ssls, services: [], store: { contextCacheSize: Number(cap) } };
let t = performance.now();
const gateway = await createGateway(config);
const startMs = performance.now() - t;
gc();
let applyMs, storeApplyMs;
if (one !== '1') {
  const changed = { ...ssls[7], desc: 'changed' };
  t = performance.now();
  gateway.apply({ ...config, ssls: ssls.map((s, i) => (i === 7 ? changed : s)) });
  applyMs = performance.now() - t;
  t = performance.now();
  gateway.store.apply({ set: [{ ...ssls[7], desc: 'changed again' }] });
  storeApplyMs = performance.now() - t;
}
console.log(JSON.stringify({ port: gateway.addresses[0].port, startMs, applyMs, storeApplyMs, rss: process.memoryUsage().rss }));
let c0;
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'start') c0 = process.cpuUsage();
  if (line === 'stop') { const c = process.cpuUsage(c0); console.log(JSON.stringify({ cpuUs: c.user + c.system, contexts: gateway.store.contextStats() })); }
  if (line === 'exit') { await gateway.close(); process.exit(0); }
}`,
);
const load = join(dir, 'load.mjs');
writeFileSync(
  load,
  `import tls from 'node:tls';
const [port, span, ms, cert, key] = process.argv.slice(2);
// ms 0: each of the span's SNIs once, in order (filling the cache), not timed.
const until = Number(ms) === 0 ? Infinity : Date.now() + Number(ms);
let done = 0, failed = 0, next = 0;
const one = () => new Promise((resolve) => {
  const sni = 't' + (Number(ms) === 0 ? next++ : Math.floor(Math.random() * Number(span))) + '.bench.test';
  const s = tls.connect({ port: Number(port), host: '127.0.0.1', servername: sni, cert, key, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => { done++; s.destroy(); resolve(); });
  s.on('error', () => { failed++; resolve(); });
});
await Promise.all(Array.from({ length: 16 }, async () => { while (Date.now() < until && (Number(ms) !== 0 || next < Number(span))) await one(); }));
console.log(JSON.stringify({ done, failed }));`,
);

interface Server {
  child: ChildProcess;
  lines: AsyncIterator<string>;
  info: { port: number; startMs: number; applyMs?: number; storeApplyMs?: number; rss: number };
}
async function startServer(mode: 'one' | 'many'): Promise<Server> {
  const [cmd, args] = pinned(0, [
    '--expose-gc',
    server,
    dist,
    file,
    String(N),
    String(CACHE),
    mode === 'one' ? '1' : '0',
  ]);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const info = JSON.parse((await lines.next()).value as string);
  return { child, lines, info };
}
async function measure(s: Server, span: number, ms: number) {
  s.child.stdin!.write('start\n');
  const [cmd, args] = pinned(1, [load, String(s.info.port), String(span), String(ms), client.cert, client.key]);
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  s.child.stdin!.write('stop\n');
  const cpu = JSON.parse((await s.lines.next()).value as string) as { cpuUs: number; contexts: Record<string, number> };
  const { done, failed } = JSON.parse(r.stdout.trim()) as { done: number; failed: number };
  return {
    rate: done / (Math.max(ms, 1) / 1000),
    cpuPerHs: cpu.cpuUs / Math.max(1, done),
    failed,
    contexts: cpu.contexts,
  };
}

const many = await startServer('many');
const single = await startServer('one');
console.log(
  `\ngateway with ${N.toLocaleString('en')} objects: started in ${(many.info.startMs / 1000).toFixed(2)} s, RSS ${mb(many.info.rss)} MB; ` +
    `apply of the whole configuration with one object changed ${many.info.applyMs!.toFixed(0)} ms, store.apply of that object ${many.info.storeApplyMs!.toFixed(2)} ms`,
);
// Warm-up: the hot set fills the cache (again before each hot round: a cold round evicts part of it).
await measure(many, CACHE, 0);
await measure(single, N, 2000);
const results: Record<string, ReturnType<typeof measure> extends Promise<infer R> ? R[] : never> = {
  one: [],
  cold: [],
  hot: [],
};
for (let r = 0; r < ROUNDS; r++) {
  results.one!.push(await measure(single, N, SECONDS * 1000));
  results.cold!.push(await measure(many, N, SECONDS * 1000));
  await measure(many, CACHE, 0);
  results.hot!.push(await measure(many, CACHE, SECONDS * 1000));
}
const table = [
  '| round | 1-object store hs/s | cold (random over all) hs/s | hot (random over 1,000) hs/s | cold / one | hot / one | server CPU µs per handshake (one / cold / hot) | CPU ratio one/cold, one/hot | failed |',
  '|---|---|---|---|---|---|---|---|---|',
];
for (let r = 0; r < ROUNDS; r++) {
  const [o, c, h] = [results.one![r]!, results.cold![r]!, results.hot![r]!];
  table.push(
    `| ${r + 1} | ${o.rate.toFixed(0)} | ${c.rate.toFixed(0)} | ${h.rate.toFixed(0)} | ${(c.rate / o.rate).toFixed(3)} | ${(h.rate / o.rate).toFixed(3)} | ${o.cpuPerHs.toFixed(0)} / ${c.cpuPerHs.toFixed(0)} / ${h.cpuPerHs.toFixed(0)} | ${(o.cpuPerHs / c.cpuPerHs).toFixed(3)}, ${(o.cpuPerHs / h.cpuPerHs).toFixed(3)} | ${o.failed + c.failed + h.failed} |`,
  );
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cold = med(results.cold!.map((x) => x.cpuPerHs)) - med(results.hot!.map((x) => x.cpuPerHs));
console.log(
  `\n| build | objects | contextCacheSize | build time | per object | RSS at rest | bare Node | PEM read | (RSS - bare) / PEM | contexts kept |\n|---|---|---|---|---|---|---|---|---|---|\n${rows.join('\n')}`,
);
console.log(
  `\n${table.join('\n')}\n\ncold-context cost: ${cold.toFixed(0)} µs of server CPU per handshake (median cold minus median hot); contexts ${JSON.stringify(results.cold!.at(-1)!.contexts)}`,
);
for (const s of [many, single]) s.child.stdin!.write('exit\n');
await Promise.all([many, single].map((s) => once(s.child, 'exit')));
rmSync(dir, { recursive: true, force: true });
