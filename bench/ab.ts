// A/B of two builds of the gate on one scenario: alternating runs (A B B A ...), fresh server each
// time, server CPU per response as the figure (steadier than req/s on a shared machine).
//   npx tsc -p tsconfig.build.json --outDir bench/.ab/dist-a   (then change src, build into dist-b)
//   node --import tsx bench/ab.ts bench/.ab/dist-a bench/.ab/dist-b [ka|new|nocert|fleet|store<N>] [pairs]
// bench/.ab/ is ignored by git; builds must sit inside the repository so they resolve node_modules.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SLIDESHOW } from '../examples/mtls-auth-app/httpbin.js';
import { benchPki } from './lib/pki.js';
import { devScenario } from './lib/dev-scenario.js';
import { findNginx, startNginxUpstream } from './lib/nginx.js';
import { cpuSeconds, firstLine, lines, machineCpuSeconds, median, run } from './lib/run.js';
import type { LoadConfig } from './lib/loadgen.js';

const [a, b, scenario = 'ka', pairsArg = '4'] = process.argv.slice(2);
if (!a || !b) throw new Error('usage: bench/ab.ts <dist-a> <dist-b> [ka|new|nocert|fleet|store<N>] [pairs]');
const pki = await benchPki(console.log);
const nginx = findNginx(console.log);
if (!('bin' in nginx)) throw new Error(nginx.skipped);
const up = await startNginxUpstream(nginx.bin, 1, Buffer.from(JSON.stringify(SLIDESHOW, null, 2) + '\n'));
const dir = join(tmpdir(), 'mtls-gate-bench', 'ab');
mkdirSync(dir, { recursive: true });
const cfgFile = join(dir, 'system.json');
const sc = devScenario(scenario, pki, 'gate', `http://127.0.0.1:${up.port}`);
writeFileSync(cfgFile, JSON.stringify(sc.system));

const out: Record<string, { cpuUs: number[]; rate: number[] }> = { [a]: { cpuUs: [], rate: [] }, [b]: { cpuUs: [], rate: [] } };
for (let i = 0; i < Number(pairsArg); i++) {
  for (const dist of i % 2 ? [b, a] : [a, b]) {
    process.env.MTLS_GATE_DIST = resolve(dist);
    const server = run(0, ['bench/lib/system.ts', cfgFile]);
    const { port, pid } = JSON.parse(await firstLine(server));
    const load: LoadConfig = sc.load(port, 4000);
    const loadFile = join(dir, 'load.json');
    writeFileSync(loadFile, JSON.stringify(load));
    const lg = run(1, ['bench/lib/loadgen.ts', loadFile]);
    const l = lines(lg);
    await l.next();
    const c0 = cpuSeconds(pid);
    const m0 = machineCpuSeconds();
    const t0 = performance.now();
    const r = JSON.parse(await l.next());
    const dt = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(pid) - c0;
    const foreign = (machineCpuSeconds() - m0 - cpu) / dt;
    server.kill();
    const cpuUs = (cpu * 1e6) / r.requests;
    out[dist]!.cpuUs.push(cpuUs);
    out[dist]!.rate.push(r.rps);
    console.log(`${dist.padEnd(24)} ${r.rps.toFixed(0).padStart(6)}/s  ${cpuUs.toFixed(1)} µs CPU/resp  (machine minus server ${foreign.toFixed(2)} cores)`);
  }
}
await up.stop();
for (const [dist, r] of Object.entries(out)) console.log(`median ${dist.padEnd(24)} ${median(r.rate).toFixed(0)}/s  ${median(r.cpuUs).toFixed(1)} µs CPU/resp`);
console.log(`B/A CPU per response: ${(median(out[b]!.cpuUs) / median(out[a]!.cpuUs)).toFixed(3)}`);
