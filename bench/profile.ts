// CPU profile of one system under one load (server on core 0 with --cpu-prof, load on core 1),
// then the functions with the most self and inclusive time.
//   npm run build && node --import tsx bench/profile.ts [gate|node-proxy|node-direct] [ka|new|nocert|fleet|store<N>]
// [seconds]
// Writes the .cpuprofile into $TMPDIR/mtls-gate-bench/profiles (open it in Chrome DevTools or speedscope).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLIDESHOW } from '../examples/mtls-auth-app/httpbin.js';
import { devScenario } from './lib/dev-scenario.js';
import type { LoadConfig } from './lib/loadgen.js';
import { findNginx, startNginxUpstream } from './lib/nginx.js';
import { benchPki } from './lib/pki.js';
import { firstLine, lastLine, run } from './lib/run.js';
import type { SystemConfig } from './lib/system.js';

const [system = 'gate', scenario = 'ka', secs = '8'] = process.argv.slice(2);
const pki = await benchPki(console.log);
const nginx = findNginx(console.log);
const document = Buffer.from(`${JSON.stringify(SLIDESHOW, null, 2)}\n`);
let upstream: string;
let stopUpstream: () => Promise<void>;
if ('bin' in nginx) {
  const up = await startNginxUpstream(nginx.bin, 1, document);
  upstream = `http://127.0.0.1:${up.port}`;
  stopUpstream = up.stop;
} else {
  const up = run(1, ['bench/lib/upstream.ts']);
  upstream = `http://127.0.0.1:${JSON.parse(await firstLine(up)).port}`;
  stopUpstream = async () => void up.kill();
}
const dir = join(tmpdir(), 'mtls-gate-bench', 'profiles', `${system}-${scenario}-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const cfgFile = join(dir, 'system.json');
const sc = devScenario(scenario, pki, system as SystemConfig['system'], upstream);
writeFileSync(cfgFile, JSON.stringify(sc.system));
const server = run(0, ['bench/lib/system.ts', cfgFile], ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
const { port } = JSON.parse(await firstLine(server));
const load: LoadConfig = sc.load(port, Number(secs) * 1000, await pki.fleetFile(0));
const loadFile = join(dir, 'load.json');
writeFileSync(loadFile, JSON.stringify(load));
const r = JSON.parse(await lastLine(run(1, ['bench/lib/loadgen.ts', loadFile])));
console.log(`${system} ${scenario}: ${r.rps.toFixed(0)}/s p99 ${r.p99.toFixed(2)} ms ${JSON.stringify(r.statuses)}`);
server.kill('SIGINT');
await new Promise((resolve) => server.once('exit', resolve));
await stopUpstream();

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
console.log(`profile: ${join(dir, file)}`);
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules|src|bench|lib|internal)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const incl = new Map<string, number>();
let total = 0;
p.samples.forEach((id, i) => {
  const dt = p.timeDeltas[i] ?? 0;
  total += dt;
  const n = byId.get(id)!;
  self.set(name(n), (self.get(name(n)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur)!);
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + dt);
  }
});
for (const [title, m] of [
  ['self', self],
  ['inclusive', incl],
] as const) {
  console.log(`\n-- ${title} time (share of ${(total / 1e6).toFixed(1)} s sampled)`);
  for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, 40))
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
}
