// Guard benchmark (issue: core). Keep-alive requests with a valid client certificate against a bare
// node:https server and the same server behind mtlsGuard, alternating, same run; server on core 0,
// load on core 1. Then the first verification time of 2- and 3-level chains (RSA 2048, P-256).
//   npm run bench:guard [-- --quick]
import { X509Certificate } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { run, firstLine, lastLine, cpuSeconds, median, hasTaskset } from './lib/run.js';
import { compileCaSet } from '../src/verify/ca-set.js';
import { parseCert } from '../src/verify/cert.js';
import { verifyChain } from '../src/verify/chain.js';
import { Verifier } from '../src/verify/verifier.js';
import { createTestPki, type KeyType } from '../src/testing/index.js';

const quick = process.argv.includes('--quick');
const reps = quick ? 2 : 3;
const durationMs = quick ? 2000 : 5000;
const servername = 'bench.test';
const pki = await createTestPki({ serverNames: [servername] });
const client = await pki.client('viaIntermediate');
const serverCfg = JSON.stringify({ cert: pki.server.chain, key: pki.server.key, ca: pki.root.cert, servername });

// When the load generator (one Node process) cannot saturate the server, req/s measures the client;
// server CPU per response is then the figure that compares the two servers.
const results: Record<string, { rps: number; p50: number; p99: number; cpuUsPerResponse: number; statuses: Record<string, number> }[]> = { bare: [], guard: [] };
for (let i = 0; i < reps; i++) {
  for (const mode of ['bare', 'guard'] as const) {
    const server = run(0, ['bench/lib/guard-server.ts', mode, serverCfg]);
    const { port } = JSON.parse(await firstLine(server));
    const load = run(1, ['bench/lib/loadgen.ts', JSON.stringify({ mode: 'ka', port, servername, path: '/', connections: 32, durationMs, warmupMs: 1500, cert: client.chain, key: client.key })]);
    let c0 = 0;
    const t = setTimeout(() => (c0 = cpuSeconds(server.pid!)), 1800);
    const r = JSON.parse(await lastLine(load));
    clearTimeout(t);
    r.cpuUsPerResponse = ((cpuSeconds(server.pid!) - c0) * 1e6) / (r.rps * (durationMs / 1000 - 0.3));
    server.kill();
    results[mode]!.push(r);
    console.log(`${mode.padEnd(5)} run ${i + 1}: ${r.rps.toFixed(0)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ~${r.cpuUsPerResponse.toFixed(1)} µs CPU/resp  ${JSON.stringify(r.statuses)}`);
  }
}
const bare = median(results.bare!.map((r) => r.rps));
const guard = median(results.guard!.map((r) => r.rps));
const bareCpu = median(results.bare!.map((r) => r.cpuUsPerResponse));
const guardCpu = median(results.guard!.map((r) => r.cpuUsPerResponse));
console.log(`\nmedian req/s: bare ${bare.toFixed(0)}, guard ${guard.toFixed(0)}, ratio guard/bare ${(guard / bare).toFixed(3)}`);
console.log(`median server CPU per response: bare ${bareCpu.toFixed(1)} µs, guard ${guardCpu.toFixed(1)} µs, throughput ratio at equal CPU ${(bareCpu / guardCpu).toFixed(3)}`);

// First verification: a fresh verifier each time, CA set compiled once (as at config time),
// the client's chain parsed and verified from scratch.
const micro: Record<string, number> = {};
for (const keyType of ['rsa', 'ec'] as KeyType[]) {
  const p = await createTestPki({ keyType });
  const ca = compileCaSet(p.root.cert, 'ca');
  for (const [label, shape] of [['2-level', 'valid'], ['3-level', 'viaIntermediate']] as const) {
    const certs = await Promise.all(Array.from({ length: 20 }, () => p.client(shape, { keyType })));
    const times: number[] = [];
    for (const c of certs) {
      const ders = c.chain.split(/(?=-----BEGIN CERTIFICATE-----)/).map((b) => new X509Certificate(b));
      const t = performance.now();
      const v = verifyChain(ca, ders.map((d) => parseCert(d)), 1, Date.now());
      times.push(performance.now() - t);
      if (!v.ok) throw new Error('verification failed');
    }
    micro[`${keyType === 'rsa' ? 'RSA 2048' : 'P-256'} ${label}`] = median(times.slice(2));
  }
  // cached: what a new connection with a known chain pays
  const v = new Verifier();
  const leaf = new X509Certificate((await p.client('valid')).cert);
  v.verify(ca, 1, leaf);
  const t = performance.now();
  for (let i = 0; i < 10_000; i++) v.verify(ca, 1, leaf);
  micro[`${keyType === 'rsa' ? 'RSA 2048' : 'P-256'} cached lookup`] = (performance.now() - t) / 10_000;
}
for (const [k, ms] of Object.entries(micro)) console.log(`first verification ${k.padEnd(24)} ${(ms * 1000).toFixed(0)} µs`);

mkdirSync('bench/results', { recursive: true });
writeFileSync(
  'bench/results/guard.json',
  JSON.stringify({ date: new Date().toISOString(), node: process.version, taskset: hasTaskset, durationMs, runs: results, median: { bare, guard, ratio: guard / bare, bareCpuUs: bareCpu, guardCpuUs: guardCpu, cpuRatio: bareCpu / guardCpu }, verificationMs: micro }, null, 2) + '\n',
);
