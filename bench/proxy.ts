// Proxy benchmark (issue: router/proxy). Keep-alive GET /v1/json with a client certificate through
// mtls-gate (guard + router + proxy) and through a bare node:https proxy with a keep-alive Agent,
// alternating, same run. Server on core 0; load generator and upstream on core 1.
//   npm run bench:proxy [-- --quick]
import { writeFileSync, mkdirSync } from 'node:fs';
import { run, firstLine, lastLine, cpuSeconds, median, hasTaskset as taskset } from './lib/run.js';
import { createTestPki } from '../src/testing/index.js';

const quick = process.argv.includes('--quick');
const reps = quick ? 2 : 3;
const durationMs = quick ? 3000 : 8000;

const servername = 'mtls.httpbin.org';
const pki = await createTestPki({ serverNames: [servername], keyType: 'rsa' });
const client = await pki.client('valid', { keyType: 'rsa' });
const upstreamProc = run(1, ['bench/lib/upstream.ts']);
const upstream = `http://127.0.0.1:${JSON.parse(await firstLine(upstreamProc)).port}`;
const cfg = JSON.stringify({ cert: pki.server.chain, key: pki.server.key, ca: pki.root.cert, servername, upstream });

type Result = { rps: number; p50: number; p99: number; cpuUsPerResponse: number; statuses: Record<string, number> };
const results: Record<string, Result[]> = { 'node-proxy': [], gate: [] };
const order = ['node-proxy', 'gate'];
for (let i = 0; i < reps; i++) {
  for (const mode of i % 2 ? [...order].reverse() : order) {
    const server = run(0, ['bench/lib/proxy-server.ts', mode, cfg]);
    const { port, pid } = JSON.parse(await firstLine(server));
    const load = run(1, ['bench/lib/loadgen.ts', JSON.stringify({ mode: 'ka', port, servername, path: '/v1/json', connections: 50, durationMs, warmupMs: 2000, cert: client.chain, key: client.key })]);
    let c0 = 0;
    const t = setTimeout(() => (c0 = cpuSeconds(pid)), 2300);
    const r = JSON.parse(await lastLine(load));
    clearTimeout(t);
    const cpu = cpuSeconds(pid) - c0;
    server.kill();
    const result: Result = { rps: r.rps, p50: r.p50, p99: r.p99, cpuUsPerResponse: (cpu * 1e6) / (r.rps * (durationMs / 1000 - 0.3)), statuses: r.statuses };
    results[mode]!.push(result);
    console.log(`${mode.padEnd(10)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ~${result.cpuUsPerResponse.toFixed(0)} µs CPU/resp  ${JSON.stringify(r.statuses)}`);
  }
}
upstreamProc.kill();
const m = (sys: string, k: 'rps' | 'p99' | 'p50') => median(results[sys]!.map((r) => r[k]));
const summary = {
  gate: { rps: m('gate', 'rps'), p50: m('gate', 'p50'), p99: m('gate', 'p99') },
  'node-proxy': { rps: m('node-proxy', 'rps'), p50: m('node-proxy', 'p50'), p99: m('node-proxy', 'p99') },
  ratio: { rps: m('gate', 'rps') / m('node-proxy', 'rps'), p99: m('gate', 'p99') / m('node-proxy', 'p99') },
};
console.log(`\nmedian: gate ${summary.gate.rps.toFixed(0)} req/s p99 ${summary.gate.p99.toFixed(2)} ms | node-proxy ${summary['node-proxy'].rps.toFixed(0)} req/s p99 ${summary['node-proxy'].p99.toFixed(2)} ms`);
console.log(`ratio gate/node-proxy: req/s ${summary.ratio.rps.toFixed(3)}, p99 ${summary.ratio.p99.toFixed(3)}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/proxy.json', JSON.stringify({ date: new Date().toISOString(), node: process.version, taskset, durationMs, runs: results, summary }, null, 2) + '\n');
