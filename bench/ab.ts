// A/B of two servers on one load, alternating between them every second (loadgen's `alternate`),
// both kept running: a drift of the machine falls on both alike. An A/A run (the same side twice)
// came out at 0.99-1.00 on this machine, where separate windows moved by up to 25 %.
//
//   node --import tsx bench/ab.ts <A> <B> [scenario] [windows] [seconds]
//
// A side is a build of the gate or a baseline system, optionally with its own scenario:
//   bench/.ab/dist-a            a build (npx tsc -p tsconfig.build.json --outDir bench/.ab/dist-a;
//                               bench/.ab/ is ignored by git; builds must sit inside the repository)
//   dist | node-proxy | node-direct   the current build (dist/), or a baseline
//   <side>@<scenario>           e.g. dist@store1 against dist@store10000 (what the store costs), or
//                               node-direct@store1 against node-direct@store10000 (what Node pays)
// Scenarios (bench/lib/dev-scenario.ts): new | nocert | fleet | store<N> alternate per second; ka
// (keep-alive connections cannot switch every second) runs one window per side in turn. Default
// new. Each window warms up (BENCH_WARMUP_MS, default 6 s; 20 s for store and fleet, 2 s for ka)
// and measures `seconds` (20; a fleet window ends when both sides have been shown its 2,000
// certificates, a new fleet each window).
// Prints each window's figures and the median of the windows' B/A ratios.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SLIDESHOW } from '../examples/mtls-auth-app/httpbin.js';
import { devScenario } from './lib/dev-scenario.js';
import type { LoadConfig } from './lib/loadgen.js';
import { findNginx, startNginxUpstream } from './lib/nginx.js';
import { benchPki } from './lib/pki.js';
import { cpuSeconds, firstLine, lines, median, run } from './lib/run.js';
import type { SystemConfig } from './lib/system.js';

const [a, b, scenario = 'new', windowsArg = '3', secsArg = '20'] = process.argv.slice(2);
if (!a || !b) throw new Error('usage: bench/ab.ts <A> <B> [ka|new|nocert|fleet|store<N>] [windows] [seconds]');
const pki = await benchPki(console.log);
const nginx = findNginx(console.log);
if (!('bin' in nginx)) throw new Error(nginx.skipped);
const up = await startNginxUpstream(nginx.bin, 1, Buffer.from(`${JSON.stringify(SLIDESHOW, null, 2)}\n`));
const dir = join(tmpdir(), 'mtls-gate-bench', 'ab');
mkdirSync(dir, { recursive: true });

async function start(side: string, tag: string) {
  const [what, sideScenario = scenario] = side.split('@') as [string, string?];
  const system: SystemConfig['system'] = what === 'node-proxy' || what === 'node-direct' ? what : 'gate';
  const sc = devScenario(sideScenario, pki, system, `http://127.0.0.1:${up.port}`);
  const load = sc.load(0, 0);
  const cfgFile = join(dir, `system-${tag}.json`);
  writeFileSync(cfgFile, JSON.stringify(sc.system));
  if (system === 'gate' && what !== 'dist') process.env.MTLS_GATE_DIST = resolve(what);
  else delete process.env.MTLS_GATE_DIST;
  const server = run(0, ['bench/lib/system.ts', cfgFile]);
  const { port, pid } = JSON.parse(await firstLine(server));
  return {
    side,
    server,
    pid: pid as number,
    load: { ...load, port },
    target: {
      port,
      pids: [pid as number],
      servername: load.servername,
      ...(load.servernames ? { servernames: load.servernames } : {}),
    },
  };
}

const sides = [await start(a, 'a'), await start(b, 'b')];
const base = sides[0]!.load;
const store = sides.some((s) => s.target.servernames);
const warmupMs = Number(process.env.BENCH_WARMUP_MS ?? (store || base.fleetWarmupFile ? 20_000 : 6000));
const ratios: number[] = [];
const cpuUs = (t: { cpuSeconds: number; requests: number }) => (t.cpuSeconds * 1e6) / Math.max(1, t.requests);
type Figures = { rps: number; cpuSeconds: number; requests: number; statuses: Record<string, number> };
/** One load run; with `alternate` the figures per target, else those of the one server. */
async function measure(load: LoadConfig, pid?: number): Promise<{ targets: Figures[]; errors: number }> {
  const loadFile = join(dir, 'load.json');
  writeFileSync(loadFile, JSON.stringify(load));
  const l = lines(run(1, ['bench/lib/loadgen.ts', loadFile]));
  await l.next();
  const c0 = pid ? cpuSeconds(pid) : 0;
  const r = JSON.parse(await l.next());
  if (r.targets) return r;
  return {
    targets: [{ rps: r.rps, cpuSeconds: cpuSeconds(pid!) - c0, requests: r.requests, statuses: r.statuses }],
    errors: r.errors,
  };
}
for (let w = 0; w < Number(windowsArg); w++) {
  const durationMs = Number(secsArg) * 1000;
  let ta: Figures, tb: Figures;
  let errors = 0;
  if (base.mode === 'new') {
    // One load alternating between the two servers every second.
    // A fleet is new to the kept servers in every window: window w presents fleet w.
    const fleet = base.fleetWarmupFile ? { fleetFile: await pki.fleetFile(w) } : {};
    const r = await measure({
      ...base,
      ...fleet,
      servernames: undefined,
      warmupMs,
      durationMs,
      alternate: { phaseMs: 1000, targets: sides.map((s) => s.target) },
    });
    [ta, tb] = r.targets as [Figures, Figures];
    errors = r.errors;
  } else {
    // Keep-alive connections cannot switch servers every second: one window each, in turn.
    const got: Figures[] = [];
    for (const i of w % 2 ? [1, 0] : [0, 1]) {
      const r = await measure(
        { ...sides[i]!.load, warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 2000), durationMs },
        sides[i]!.pid,
      );
      got[i] = r.targets[0]!;
      errors += r.errors;
    }
    [ta, tb] = got as [Figures, Figures];
  }
  ratios.push(tb.rps / ta.rps);
  console.log(
    `window ${w + 1}: A ${ta.rps.toFixed(0)}/s ${cpuUs(ta).toFixed(0)} µs CPU/resp ${JSON.stringify(ta.statuses)}; B ${tb.rps.toFixed(0)}/s ${cpuUs(tb).toFixed(0)} µs CPU/resp ${JSON.stringify(tb.statuses)}; B/A rate ${(tb.rps / ta.rps).toFixed(3)}, CPU ${(cpuUs(tb) / cpuUs(ta)).toFixed(3)}${errors ? `; errors ${errors}` : ''}`,
  );
}
for (const s of sides) s.server.kill();
await up.stop();
console.log(
  `A = ${a}, B = ${b} (${scenario}): B/A rate, median of ${ratios.length} windows: ${median(ratios).toFixed(3)} [${ratios.map((x) => x.toFixed(3)).join(', ')}]`,
);
process.exit(0);
