// A native profile (Linux perf) of one system under one load: where the server's CPU goes, OpenSSL
// and V8 included, which --cpu-prof cannot see. Server on core 0 with --perf-basic-prof (JS frames
// named), load on core 1; `perf record` on the server during the measured window.
//   npm run build && node --import tsx bench/perf.ts [gate|node-proxy|node-direct] [ka|new|nocert|fleet|store<N>]
// [seconds]
// Prints the top symbols by self time in µs per request, grouped into OpenSSL, V8/GC, JS, kernel and
// other; PERF_ROWS=<file> also writes every row as JSON, to compare two runs.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLIDESHOW } from '../examples/mtls-auth-app/httpbin.js';
import { devScenario } from './lib/dev-scenario.js';
import { findNginx, startNginxUpstream } from './lib/nginx.js';
import { benchPki } from './lib/pki.js';
import { firstLine, lines, run } from './lib/run.js';
import type { SystemConfig } from './lib/system.js';

const [system = 'gate', scenario = 'fleet', secs = '4'] = process.argv.slice(2);
try {
  execFileSync('perf', ['--version'], { stdio: 'ignore' });
} catch {
  throw new Error('bench/perf.ts needs Linux perf: apt-get install -y linux-perf');
}
const pki = await benchPki(console.log);
const nginx = findNginx(console.log);
if (!('bin' in nginx)) throw new Error(nginx.skipped);
const up = await startNginxUpstream(nginx.bin, 1, Buffer.from(`${JSON.stringify(SLIDESHOW, null, 2)}\n`));
const dir = join(tmpdir(), 'mtls-gate-bench', 'perf', `${system}-${scenario}-${Date.now()}`);
mkdirSync(dir, { recursive: true });
const sc = devScenario(scenario, pki, system as SystemConfig['system'], `http://127.0.0.1:${up.port}`);
writeFileSync(join(dir, 'system.json'), JSON.stringify(sc.system));
const server = run(0, ['bench/lib/system.ts', join(dir, 'system.json')], ['--perf-basic-prof-only-functions']);
const { port, pid } = JSON.parse(await firstLine(server));
writeFileSync(join(dir, 'load.json'), JSON.stringify(sc.load(port, Number(secs) * 1000, await pki.fleetFile(0))));
const lg = run(1, ['bench/lib/loadgen.ts', join(dir, 'load.json')]);
const l = lines(lg);
await l.next(); // warm-up over
const data = join(dir, 'perf.data');
// PERF_CALLGRAPH=dwarf unwinds through libc and OpenSSL's assembly (frame pointers do not), at a cost.
const callGraph =
  process.env.PERF_CALLGRAPH === 'dwarf' ? ['--call-graph', 'dwarf,16384', '-F', '499'] : ['-g', '-F', '1999'];
const rec = spawn('perf', ['record', ...callGraph, '-p', String(pid), '-o', data], { stdio: 'ignore' });
const r = JSON.parse(await l.next());
rec.kill('SIGINT');
await new Promise((resolve) => rec.once('exit', resolve));
server.kill();
await up.stop();
console.log(`${system} ${scenario}: ${r.rps.toFixed(0)}/s ${JSON.stringify(r.statuses)}; perf data ${data}`);
const freq = process.env.PERF_CALLGRAPH === 'dwarf' ? 499 : 1999;
const report = execFileSync(
  'perf',
  ['report', '-i', data, '--no-children', '--show-nr-samples', '--sort', 'dso,symbol', '--stdio'],
  { encoding: 'utf8', maxBuffer: 64 << 20 },
);
// Rows: "  12.34%  1234  dso  [.] symbol". Samples / frequency = CPU seconds; per request in µs, so
// two runs (two scenarios, or before and after a change) compare in absolute terms.
const rows: { pct: number; us: number; dso: string; sym: string }[] = [];
for (const row of report.split('\n')) {
  const m = /^\s+([\d.]+)%\s+(\d+)\s+(\S+)\s+\[[.k]\]\s+(.*)$/.exec(row);
  // perf pads the symbol column (and may append IPC columns): the name ends at the first run of spaces.
  if (m)
    rows.push({
      pct: Number(m[1]),
      us: (Number(m[2]) / freq / r.requests) * 1e6,
      dso: m[3]!,
      sym: m[4]!.split(/\s{2,}/)[0]!.trim(),
    });
}
console.log(`CPU per request: ${rows.reduce((a, x) => a + x.us, 0).toFixed(0)} µs (sampled)`);
for (const x of rows.slice(0, 60))
  console.log(`${x.pct.toFixed(2).padStart(6)}% ${x.us.toFixed(1).padStart(7)} µs  ${x.dso}  ${x.sym}`);
const groups: Record<string, number> = {};
for (const { us, dso, sym } of rows) {
  const g = dso.includes('kernel')
    ? 'kernel'
    : /^(EVP_|ossl_|ecp_|bn_|BN_|X509|x509|SSL|ssl|tls|OPENSSL|ASN1|asn1|CRYPTO|sha|SHA|ec_|EC_|aesni|gcm|ChaCha|PEM|OBJ|RSA|rsa|EVP|BIO|ERR|lh_|OSSL|ossl|evp|i2d|d2i|ecdsa|ECDSA)/.test(
          sym,
        )
      ? 'openssl'
      : dso.startsWith('perf-') || dso === '[JIT]'
        ? 'js'
        : /^(v8::|Builtins|Builtin:|\(anonymous namespace\)|heap|Heap|Scavenger|MarkCompact|cppgc)/.test(sym)
          ? 'v8'
          : dso;
  groups[g] = (groups[g] ?? 0) + us;
}
console.log(
  '\nby group (µs per request):',
  Object.entries(groups)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', '),
);
if (process.env.PERF_ROWS) writeFileSync(process.env.PERF_ROWS, JSON.stringify(rows));
