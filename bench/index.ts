// The benchmark (issue 5): mtls-gate against bare Node and nginx, same job, same machine, same run.
//
//   npm run bench               full run: 3 alternating repetitions per scenario (~12 minutes)
//   npm run bench -- --quick    smoke run: 1 repetition, short windows (< 3 minutes)
//   options: --only=ka,new,...  scenarios to run; --systems=gate,nginx,...  systems to run
//
// Systems: gate (mtls-gate), node-proxy (bare node:https + http.Agent), node-direct (bare node:https
// answering itself), nginx (Debian's, APISIX's mTLS policy). Every system serves GET /v1/json
// from the same upstream (nginx serving the 421-byte httpbin /json document on the load core when
// nginx is installed, else a Node upstream). Server on core 0; load generator and upstream on core 1.
// Writes bench/results/latest.json and bench/results/latest.md.
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { SLIDESHOW } from '../examples/mtls-auth-app/httpbin.js';
import type { LoadConfig } from './lib/loadgen.js';
import { findNginx, type NginxProcess, startNginxGate, startNginxUpstream } from './lib/nginx.js';
import { benchPki, FLEET_SIZE, FLEET_WARMUP_SIZE, SERVERNAME } from './lib/pki.js';
import { cpuSeconds, firstLine, hasTaskset, lines, machineCpuSeconds, median, rssMb, run } from './lib/run.js';
import type { SystemConfig } from './lib/system.js';
import { type WrkResult, wrkCrossCheck } from './lib/wrk.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const opt = (name: string) =>
  argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(',');
const SERVER_CORE = 0;
const FOREIGN_LIMIT = 0.25;
const LOAD_CORE = 1;
const P = quick
  ? {
      reps: 1,
      warmupMs: 700,
      hsWarmupMs: 700,
      durationMs: 1500,
      storeSize: 2000,
      storeWarmupMs: 1000,
      storeMs: 4000,
      wrkMs: 2000,
      attempts: 1,
      wrkModes: ['ka'],
      limitMin: 5,
    }
  : {
      reps: 3,
      warmupMs: 2000,
      hsWarmupMs: 6000,
      durationMs: 5000,
      storeSize: 10_000,
      storeWarmupMs: 20_000,
      storeMs: 30_000,
      wrkMs: 8000,
      attempts: 2,
      wrkModes: ['ka', 'new', 'nocert'],
      limitMin: 45,
    };
/** The fleet's and the store scenarios' load switches between their servers this often. */
const PHASE_MS = 1000;
/** Fleet windows (each a new fleet of FLEET_SIZE certificates for every server); at most this long each. */
const FLEET_WINDOWS = quick ? 1 : 5;
const FLEET_LIMIT_MS = 60_000;
const log = (s: string) => console.log(s);
const started = Date.now();
// Everything is bounded: a run that takes far longer than planned is stopped (children with it).
setTimeout(() => {
  console.error(`bench: still running after ${P.limitMin} minutes, giving up`);
  process.exit(2);
}, P.limitMin * 60_000).unref();
const tmp = join(tmpdir(), 'mtls-gate-bench');
mkdirSync(tmp, { recursive: true });

type System = 'gate' | 'node-proxy' | 'node-direct' | 'nginx';
const ALL_SYSTEMS: System[] = ['gate', 'node-proxy', 'node-direct', 'nginx'];
interface Scenario {
  id: string;
  title: string;
  /** The figure: requests (keep-alive) or handshakes per second. */
  unit: 'req/s' | 'hs/s';
  load: Omit<LoadConfig, 'port' | 'servername' | 'path' | 'durationMs' | 'warmupMs'> & { durationMs?: number };
  tickets: boolean;
  systems?: System[];
  storeSize?: number;
}

const pki = await benchPki(log);
const client = pki.client;
const scenarios: Scenario[] = [
  {
    id: 'ka',
    title: 'keep-alive, client certificate, 50 connections',
    unit: 'req/s',
    tickets: false,
    load: { mode: 'ka', connections: 50, ...client },
  },
  {
    id: 'new',
    title: 'new TLS connection per request, one client certificate reused, 32 connections',
    unit: 'hs/s',
    tickets: false,
    load: { mode: 'new', connections: 32, ...client },
  },
  {
    id: 'fleet',
    title: `new TLS connection per request, ${FLEET_SIZE} distinct client certificates (same CA) each connecting once, 32 connections`,
    unit: 'hs/s',
    tickets: false,
    load: { mode: 'new', connections: 32, ...client, fleetWarmupFile: pki.fleetWarmupFile },
  },
  {
    id: 'resume',
    title:
      'new TLS connection per request with TLS 1.3 resumption (last ticket offered), one client certificate, 32 connections',
    unit: 'hs/s',
    tickets: true,
    load: { mode: 'new', connections: 32, ...client, resume: true },
  },
  {
    id: 'nocert',
    title: 'no client certificate (the 400 path; the server closes), new connection per request, 32 connections',
    unit: 'hs/s',
    tickets: false,
    load: { mode: 'new', connections: 32 },
  },
  {
    id: 'store1',
    title: 'gate, store of 1 SSL object, new connection per request (reused certificate), 32 connections',
    unit: 'hs/s',
    tickets: false,
    systems: ['gate'],
    storeSize: 1,
    load: { mode: 'new', connections: 32, ...client },
  },
  {
    id: 'store10k',
    title: `gate, store of ${P.storeSize.toLocaleString('en')} SSL objects, handshakes on random SNIs, new connection per request, 32 connections`,
    unit: 'hs/s',
    tickets: false,
    systems: ['gate'],
    storeSize: P.storeSize,
    load: {
      mode: 'new',
      connections: 32,
      ...client,
      servernames: Array.from({ length: P.storeSize - 1 }, (_, i) => `store-${i + 1}.bench.test`),
    },
  },
];
const onlyScenarios = opt('only');
const onlySystems = opt('systems') as System[] | undefined;

// --- nginx and the upstream ---------------------------------------------------------------
const nginx = findNginx(log);
const nginxVersion = 'bin' in nginx ? nginx.version : undefined;
if ('skipped' in nginx) log(nginx.skipped);
const document = Buffer.from(`${JSON.stringify(SLIDESHOW, null, 2)}\n`);
let upstreamPort: number;
let upstreamPids: () => number[];
let upstreamKind: string;
let stopUpstream: () => Promise<void>;
if ('bin' in nginx) {
  const up = await startNginxUpstream(nginx.bin, LOAD_CORE, document);
  upstreamPort = up.port;
  upstreamPids = up.pids;
  upstreamKind = `nginx ${nginx.version} serving the document from a file (core ${LOAD_CORE})`;
  stopUpstream = up.stop;
} else {
  const up = run(LOAD_CORE, ['bench/lib/upstream.ts']);
  upstreamPort = JSON.parse(await firstLine(up)).port;
  upstreamPids = () => [up.pid!];
  upstreamKind = `Node node:http serving the document from memory (core ${LOAD_CORE})`;
  stopUpstream = async () => void up.kill();
}
const upstream = `http://127.0.0.1:${upstreamPort}`;
const systems = ALL_SYSTEMS.filter(
  (s) => (s !== 'nginx' || 'bin' in nginx) && (!onlySystems || onlySystems.includes(s)),
);

// --- one run --------------------------------------------------------------------------------
interface Run {
  rate: number;
  p50: number;
  p99: number;
  requests: number;
  seconds: number;
  errors: number;
  statuses: Record<string, number>;
  full: number;
  resumed: number;
  /** Server CPU per response (µs) over the measured window. */
  cpuUs: number;
  serverCores: number;
  /** Load generator + upstream, on the load core. */
  loadCores: number;
  /** Other processes on the machine during the window. */
  foreignCores: number;
  rssRestMb: number;
  rssLoadMb: number;
}

interface Server {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
  info: Record<string, number>;
}

let cfgCounter = 0;
function writeConfig(obj: unknown): string {
  const f = join(tmp, `cfg-${process.pid}-${cfgCounter++}.json`);
  writeFileSync(f, JSON.stringify(obj));
  return f;
}

async function startServer(system: System, sc: Scenario): Promise<Server> {
  if (system === 'nginx') {
    if (!('bin' in nginx)) throw new Error('no nginx');
    const n: NginxProcess = await startNginxGate(nginx.bin, SERVER_CORE, {
      cert: pki.files.serverCert,
      key: pki.files.serverKey,
      ca: pki.files.ca,
      servername: SERVERNAME,
      upstreamPort,
      tickets: sc.tickets,
    });
    return { port: n.port, pids: n.pids, stop: n.stop, info: {} };
  }
  const cfg: SystemConfig = {
    system,
    ...pki.server,
    ca: pki.ca,
    servername: SERVERNAME,
    upstream,
    tickets: sc.tickets,
    ...(sc.storeSize ? { storeSize: sc.storeSize, storeCerts: pki.storeCerts } : {}),
  };
  const child = run(SERVER_CORE, ['bench/lib/system.ts', writeConfig(cfg)]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const { port, pid, ...info } = JSON.parse(await firstLine(child));
  return {
    port,
    pids: () => [pid],
    info,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    },
  };
}

/** One request on a fresh connection: [status, body length]. */
function probe(port: number, withCert: boolean): Promise<[number, number]> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      servername: SERVERNAME,
      rejectUnauthorized: false,
      ...(withCert ? client : {}),
    });
    let data = '';
    s.setEncoding('latin1');
    s.on('secureConnect', () => s.write(`GET /v1/json HTTP/1.1\r\nHost: ${SERVERNAME}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d: string) => (data += d));
    s.on('end', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve([Number(head.slice(9, 12)), body.length]);
      s.destroy();
    });
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error('probe timed out')));
  });
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const cpuOf = (pids: number[]) => sum(pids.map(cpuSeconds));
const rssOf = (pids: number[]) => sum(pids.map(rssMb));

/**
 * Runs one load and samples the server's and the load side's CPU and the server's memory around its measured window.
 */
async function runLoad(load: LoadConfig, pids: number[]) {
  const rest = pids.map(rssMb);
  const child: ChildProcess = run(LOAD_CORE, ['bench/lib/loadgen.ts', writeConfig(load)]);
  const out = lines(child);
  const kill = setTimeout(() => child.kill('SIGKILL'), load.warmupMs + load.durationMs + 30_000);
  const first = await out.next();
  if (!first.includes('measuring')) throw new Error(`load generator: ${first}`);
  const side = () => [...upstreamPids(), child.pid!];
  const s0 = cpuOf(pids);
  const l0 = cpuOf(side());
  const m0 = machineCpuSeconds();
  const t0 = performance.now();
  const peak = pids.map(rssMb);
  const sampler = setInterval(() => {
    for (const [i, p] of pids.entries()) peak[i] = Math.max(peak[i]!, rssMb(p));
  }, 500);
  // Sample the load side before the load generator exits (its CPU is gone afterwards).
  const resultLine = await out.next();
  const s1 = cpuOf(pids);
  const l1 = cpuOf(side());
  const m1 = machineCpuSeconds();
  const dt = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  clearTimeout(kill);
  for (const [i, p] of pids.entries()) peak[i] = Math.max(peak[i]!, rssMb(p));
  const serverCpu = s1 - s0;
  const loadCpu = l1 - l0;
  return {
    r: JSON.parse(resultLine),
    serverCpu,
    loadCores: loadCpu / dt,
    foreignCores: Math.max(0, (m1 - m0 - serverCpu - loadCpu) / dt),
    dt,
    rssRestMb: sum(rest),
    rssRestEach: rest,
    rssLoadMb: sum(peak),
    rssLoadEach: peak,
  };
}

async function measure(server: Server, sc: Scenario, servername = SERVERNAME): Promise<Run> {
  // Handshake scenarios warm up longer: at ~500 handshakes/s a fresh Node server is still compiling
  // (V8's optimising compiler took 8-15% of its core for the first ~5 s of a handshake load), and a
  // gateway serving for days does not pay that.
  const warmupMs = sc.unit === 'hs/s' ? P.hsWarmupMs : P.warmupMs;
  const load: LoadConfig = {
    port: server.port,
    servername,
    path: '/v1/json',
    warmupMs,
    durationMs: P.durationMs,
    ...sc.load,
  };
  const { r, serverCpu, loadCores, foreignCores, dt, rssRestMb, rssLoadMb } = await runLoad(load, server.pids());
  return {
    rate: r.rps,
    p50: r.p50,
    p99: r.p99,
    requests: r.requests,
    seconds: r.seconds,
    errors: r.errors,
    statuses: r.statuses,
    full: r.full,
    resumed: r.resumed,
    cpuUs: (serverCpu * 1e6) / Math.max(1, r.requests),
    serverCores: serverCpu / dt,
    loadCores,
    foreignCores,
    rssRestMb,
    rssLoadMb,
  };
}

/**
 * The fleet and the store scenarios: one load that alternates between their servers every second
 * (loadgen's `alternate`), so that the machine's drift, which moves handshake rates by up to 25 %
 * within minutes here, falls on all of them alike. Windows of several seconds each, even
 * alternating, left the ratio of the two store servers anywhere from 0.85 to 1.06, and the fleet's
 * gate/node-proxy anywhere from 0.81 to 0.99; alternating per second, an A/A run (the same server
 * twice) came out at 0.99-1.00. A fleet (`fleetFile`) is shown to every server once.
 */
async function measureAlternating(
  units: { sc: Scenario; server: Server }[],
  warmupMs: number,
  durationMs: number,
  fleetFile?: string,
): Promise<Run[]> {
  const pidsOf = units.map(({ server }) => server.pids());
  const load: LoadConfig = {
    ...units[0]!.sc.load,
    mode: 'new',
    port: 0,
    servername: SERVERNAME,
    path: '/v1/json',
    warmupMs,
    durationMs,
    ...(fleetFile ? { fleetFile } : {}),
    alternate: {
      phaseMs: PHASE_MS,
      targets: units.map(({ sc, server }, i) => ({
        port: server.port,
        pids: pidsOf[i]!,
        servername: SERVERNAME,
        ...(sc.load.servernames ? { servernames: sc.load.servernames } : {}),
      })),
    },
  };
  delete load.servernames;
  const { r, loadCores, foreignCores, rssRestEach, rssLoadEach } = await runLoad(load, pidsOf.flat());
  // runLoad samples memory per process; a server's figure is the sum over its processes.
  const perServer = (each: number[]) => {
    let at = 0;
    return pidsOf.map((p) => sum(each.slice(at, (at += p.length))));
  };
  const rssRest = perServer(rssRestEach);
  const rssLoad = perServer(rssLoadEach);
  return units.map((_, i) => {
    const t = r.targets[i];
    return {
      rate: t.rps,
      p50: t.p50,
      p99: t.p99,
      requests: t.requests,
      seconds: t.seconds,
      errors: r.errors,
      statuses: t.statuses,
      full: 0,
      resumed: 0,
      cpuUs: (t.cpuSeconds * 1e6) / Math.max(1, t.requests),
      serverCores: t.cpuSeconds / t.seconds,
      loadCores,
      foreignCores,
      rssRestMb: rssRest[i]!,
      rssLoadMb: rssLoad[i]!,
    };
  });
}

/** A request with and one without a client certificate: 200 with the document, and 400. */
async function sanity(server: Server, sc: Scenario, system: System): Promise<void> {
  const ok = await probe(server.port, true);
  const bad = await probe(server.port, false);
  const line = `${system} (${sc.id}): with certificate ${ok[0]} (${ok[1]} bytes), without ${bad[0]}`;
  if (ok[0] !== 200 || ok[1] !== document.length || bad[0] !== 400) throw new Error(`sanity check failed: ${line}`);
  if (sc.id === 'ka' && !checks.includes(line)) checks.push(line);
}

function logRun(label: string, width: number, sc: Scenario, r: Run, note: string): void {
  const extra = sc.load.resume ? `  full ${r.full} resumed ${r.resumed}` : '';
  log(
    `   ${label.padEnd(width)} ${fmt(r.rate).padStart(7)} ${sc.unit}  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  ${fmt(r.cpuUs)} µs CPU/resp  server ${fmt(r.serverCores, 2)} cores  load ${fmt(r.loadCores, 2)}  foreign ${fmt(r.foreignCores, 2)}  RSS ${fmt(r.rssRestMb)}→${fmt(r.rssLoadMb)} MB  ${JSON.stringify(r.statuses)}${r.errors ? ` errors ${r.errors}` : ''}${extra}${note}`,
  );
}

// --- the scenarios, systems alternating ---------------------------------------------------
const results: Record<string, Record<string, Run[]>> = {};
const serverInfo: Record<string, Record<string, number>> = {};
const checks: string[] = [];
const fmt = (x: number, d = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en', { minimumFractionDigits: d, maximumFractionDigits: d }) : '-';

// Scenarios run one after the other, their systems alternating. The store scenarios (one system
// each) form one group instead, measured by one load alternating between their two servers
// (measureAlternating), so that a drift of the machine does not fall between them.
const groups: Scenario[][] = [];
for (const sc of scenarios) {
  if (onlyScenarios && !onlyScenarios.includes(sc.id)) continue;
  const last = groups.at(-1);
  if (sc.storeSize !== undefined && last?.[0]?.storeSize !== undefined) last.push(sc);
  else groups.push([sc]);
}
for (const group of groups) {
  const units: { sc: Scenario; system: System; keep: Server | undefined }[] = [];
  for (const sc of group) {
    const order = (sc.systems ?? systems).filter((s) => systems.includes(s));
    if (order.length === 0) continue;
    results[sc.id] = Object.fromEntries(order.map((s) => [s, []]));
    log(`\n== ${sc.id}: ${sc.title}`);
    // The store scenarios keep one server across repetitions (building 10,000 objects takes a while).
    const keep = sc.storeSize !== undefined ? await startServer('gate', sc) : undefined;
    if (keep) {
      serverInfo[sc.id] = { ...keep.info, rssRestMb: rssOf(keep.pids()) };
      if (keep.info.storeBuildMs)
        log(
          `   store of ${sc.storeSize} objects built in ${fmt(keep.info.storeBuildMs / 1000, 1)} s, SNI lookup ${fmt(keep.info.sniLookupNs!, 0)} ns, RSS at rest ${fmt(rssOf(keep.pids()))} MB`,
        );
    }
    for (const system of order) units.push({ sc, system, keep });
  }
  if (units.length === 0) continue;
  const fleet = group[0]!.id === 'fleet';
  if (fleet || group.length > 1) {
    // The fleet (every system) and the store pair: servers kept, one load alternating between them
    // every second; each window starts on the next server in turn. A fleet window shows every
    // server a new fleet of FLEET_SIZE certificates.
    const alt: { sc: Scenario; system: System; server: Server }[] = [];
    for (const { sc, system, keep } of units) {
      const server = keep ?? (await startServer(system, sc));
      await sanity(server, sc, system);
      alt.push({ sc, system, server });
    }
    const windows = fleet ? FLEET_WINDOWS : P.reps;
    const what = fleet ? units.map((u) => u.system).join(', ') : group.map((g) => g.id).join(' and ');
    log(
      `   (${what} alternate within each window, ${PHASE_MS / 1000} s each in turn; warm-up ${fmt(P.storeWarmupMs / 1000)} s, then ${fmt(P.hsWarmupMs / 1000)} s before each further window${fleet ? `; ${windows} window(s), each a new fleet of ${FLEET_SIZE}` : ''})`,
    );
    for (let rep = 0; rep < windows; rep++) {
      const order = [...alt.slice(rep % alt.length), ...alt.slice(0, rep % alt.length)];
      const runs = await measureAlternating(
        order,
        rep === 0 ? P.storeWarmupMs : P.hsWarmupMs,
        fleet ? FLEET_LIMIT_MS : P.storeMs,
        fleet ? await pki.fleetFile(rep) : undefined,
      );
      runs.forEach((r, i) => {
        const { sc, system } = order[i]!;
        results[sc.id]![system]!.push(r);
        logRun(fleet ? system : `${sc.id} ${system}`, 16, sc, r, '');
      });
    }
    for (const { server } of alt) await server.stop();
    continue;
  }
  for (let rep = 0; rep < P.reps; rep++) {
    for (const { sc, system, keep } of rep % 2 ? [...units].reverse() : units) {
      // Other people's processes share this machine: a window where they used more than
      // FOREIGN_LIMIT cores is run once more (fresh server), and the quieter of the two is kept.
      let best: Run | undefined;
      for (let attempt = 0; attempt < P.attempts && (!best || best.foreignCores > FOREIGN_LIMIT); attempt++) {
        const server = keep ?? (await startServer(system, sc));
        try {
          if (!keep || (rep === 0 && attempt === 0)) await sanity(server, sc, system);
          await new Promise((r) => setTimeout(r, 200));
          const r = await measure(server, sc);
          const busy =
            r.foreignCores > FOREIGN_LIMIT
              ? attempt + 1 < P.attempts
                ? '  (busy machine: again)'
                : '  (busy machine)'
              : '';
          logRun(system, 11, sc, r, busy);
          if (!best || r.foreignCores < best.foreignCores) best = r;
        } finally {
          if (!keep) await server.stop();
        }
      }
      results[sc.id]![system]!.push(best!);
    }
  }
  for (const { keep } of units) if (keep) await keep.stop();
}

// --- micro figures --------------------------------------------------------------------------
let micro: Record<string, number> = {};
if (!onlyScenarios || onlyScenarios.includes('micro')) {
  log('\n== micro figures (in-process, core 0)');
  micro = JSON.parse(await firstLine(run(SERVER_CORE, ['bench/lib/micro.ts', ...(quick ? ['--quick'] : [])])));
  for (const sc of ['store10k'])
    if (serverInfo[sc]?.sniLookupNs)
      micro[`SNI lookup in a ${P.storeSize.toLocaleString('en')}-object store (store.match, random names, ns)`] =
        serverInfo[sc]!.sniLookupNs!;
  for (const [k, v] of Object.entries(micro)) log(`   ${k.padEnd(78)} ${fmt(v, 1)}`);
}

// --- wrk cross-check ------------------------------------------------------------------------
let wrk: WrkResult | { skipped: string } | undefined;
if (!onlyScenarios || onlyScenarios.includes('wrk')) {
  log('\n== wrk cross-check (keep-alive, new connection, no certificate; one run each)');
  wrk = await wrkCrossCheck({
    systems: systems,
    durationMs: P.wrkMs,
    warmupMs: P.warmupMs,
    handshakeWarmupMs: P.hsWarmupMs,
    modes: P.wrkModes,
    loadCore: LOAD_CORE,
    start: (s) => startServer(s as System, scenarios[0]!),
    files: pki.files,
    servername: SERVERNAME,
    serverCpu: (pids) => cpuOf(pids),
    log,
  });
  if ('skipped' in wrk) log(`   ${wrk.skipped}`);
}
await stopUpstream();

// --- summary, ratios, files -----------------------------------------------------------------
interface Stat {
  median: number;
  min: number;
  max: number;
}
const stat = (xs: number[]): Stat => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
const FIELDS = [
  'rate',
  'p50',
  'p99',
  'cpuUs',
  'serverCores',
  'loadCores',
  'foreignCores',
  'rssRestMb',
  'rssLoadMb',
] as const;
const summary: Record<string, Record<string, Record<string, Stat>>> = {};
for (const [sc, bySystem] of Object.entries(results)) {
  summary[sc] = {};
  for (const [system, runs] of Object.entries(bySystem)) {
    if (runs.length === 0) continue;
    summary[sc]![system] = Object.fromEntries(FIELDS.map((f) => [f, stat(runs.map((r) => r[f]))]));
    if (sc === 'resume')
      summary[sc]![system]!.resumedShare = stat(runs.map((r) => r.resumed / Math.max(1, r.full + r.resumed)));
  }
}
const med = (sc: string, system: string, f: string) => summary[sc]?.[system]?.[f]?.median ?? NaN;
const ratios: Record<string, number> = {};
for (const sc of Object.keys(summary)) {
  for (const other of ['node-proxy', 'nginx', 'node-direct']) {
    if (!summary[sc]!.gate || !summary[sc]![other]) continue;
    // The fleet's systems were measured together in each window (alternating per second): its
    // rate ratio is the median of the windows' ratios.
    ratios[`${sc} rate gate/${other}`] =
      sc === 'fleet'
        ? median(results.fleet!.gate!.map((r, i) => r.rate / results.fleet![other]![i]!.rate))
        : med(sc, 'gate', 'rate') / med(sc, other, 'rate');
    ratios[`${sc} p99 gate/${other}`] = med(sc, 'gate', 'p99') / med(sc, other, 'p99');
    ratios[`${sc} CPU per response gate/${other}`] = med(sc, 'gate', 'cpuUs') / med(sc, other, 'cpuUs');
  }
}
if (summary.nocert?.gate && summary.new?.gate)
  ratios['gate 400 path / success path (nocert hs/s / new hs/s)'] =
    med('nocert', 'gate', 'rate') / med('new', 'gate', 'rate');
// The two store figures of a window were measured together (alternating per second): the ratio
// is the median of the windows' ratios.
if (summary.store10k?.gate && summary.store1?.gate) {
  const big = results.store10k!.gate!;
  const small = results.store1!.gate!;
  ratios[`gate ${P.storeSize}-object store / 1-object store (hs/s)`] = median(
    big.map((r, i) => r.rate / small[i]!.rate),
  );
}
if (summary.fleet?.gate && summary.new?.gate)
  ratios['gate fleet / reused certificate (hs/s)'] = med('fleet', 'gate', 'rate') / med('new', 'gate', 'rate');

// The issue's targets (floors) and aims, checked from this run's medians.
const targets: { what: string; ratio: string; op: '>=' | '<='; bound: number; kind: 'floor' | 'aim' }[] = [
  { what: 'keep-alive req/s gate/node-proxy', ratio: 'ka rate gate/node-proxy', op: '>=', bound: 0.95, kind: 'floor' },
  { what: 'keep-alive p99 gate/node-proxy', ratio: 'ka p99 gate/node-proxy', op: '<=', bound: 1.1, kind: 'floor' },
  {
    what: 'full handshakes/s gate/node-proxy, reused certificate',
    ratio: 'new rate gate/node-proxy',
    op: '>=',
    bound: 0.9,
    kind: 'floor',
  },
  {
    what: `full handshakes/s gate/node-proxy, ${FLEET_SIZE} distinct certificates`,
    ratio: 'fleet rate gate/node-proxy',
    op: '>=',
    bound: 0.9,
    kind: 'floor',
  },
  {
    what: '400 path at least as fast as the success path (gate)',
    ratio: 'gate 400 path / success path (nocert hs/s / new hs/s)',
    op: '>=',
    bound: 1,
    kind: 'floor',
  },
  {
    what: `${P.storeSize.toLocaleString('en')} SSL objects cost < 5% of the handshake rate`,
    ratio: `gate ${P.storeSize}-object store / 1-object store (hs/s)`,
    op: '>=',
    bound: 0.95,
    kind: 'floor',
  },
  { what: 'keep-alive req/s gate/node-proxy (aim)', ratio: 'ka rate gate/node-proxy', op: '>=', bound: 2, kind: 'aim' },
  { what: 'keep-alive req/s gate/nginx (aim)', ratio: 'ka rate gate/nginx', op: '>=', bound: 0.5, kind: 'aim' },
];
const targetResults = targets.map((t) => {
  const v = ratios[t.ratio];
  return { ...t, value: v, met: v === undefined ? undefined : t.op === '>=' ? v >= t.bound : v <= t.bound };
});

const machine = {
  nproc: cpus().length,
  cpu: /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown',
  kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
  memGb: Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024 / 1024,
  node: process.version,
  openssl: process.versions.openssl,
  nginx: nginxVersion ?? 'not installed',
  taskset: hasTaskset,
  loadavgAtEnd: loadavg(),
  uptime: (() => {
    try {
      return execFileSync('uptime', { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  })(),
};
const meta = {
  date: new Date().toISOString(),
  quick,
  durationMs: P.durationMs,
  warmupMs: P.warmupMs,
  handshakeWarmupMs: P.hsWarmupMs,
  fleetWarmupSize: FLEET_WARMUP_SIZE,
  reps: P.reps,
  storeSize: P.storeSize,
  fleetSize: FLEET_SIZE,
  serverCore: SERVER_CORE,
  loadCore: LOAD_CORE,
  upstream: upstreamKind,
  keys: 'ECDSA P-256 (root CA, server, clients); TLS 1.3',
  wallSeconds: (Date.now() - started) / 1000,
};
const json = { meta, machine, checks, serverInfo, runs: results, summary, ratios, targets: targetResults, micro, wrk };
const outDir = 'bench/results';
mkdirSync(outDir, { recursive: true });
const suffix = quick && !argv.includes('--write-latest') ? '-quick' : '';
writeFileSync(join(outDir, `latest${suffix}.json`), `${JSON.stringify(json, null, 2)}\n`);
writeFileSync(join(outDir, `latest${suffix}.md`), markdown());
log(`\nwrote ${outDir}/latest${suffix}.json and latest${suffix}.md in ${fmt(meta.wallSeconds)} s`);
for (const t of targetResults)
  log(
    `   ${t.met === undefined ? '  n/a' : t.met ? '  met' : 'unmet'}  ${t.what}: ${t.value === undefined ? '-' : fmt(t.value, 2)} (${t.kind} ${t.op} ${t.bound})`,
  );

function markdown(): string {
  const L: string[] = [];
  const mmm = (s: Stat | undefined, d = 0) => (s ? `**${fmt(s.median, d)}** (${fmt(s.min, d)}–${fmt(s.max, d)})` : '-');
  L.push(`# mtls-gate benchmark: latest run${quick ? ' (--quick: 1 repetition, short windows, smoke only)' : ''}`, '');
  L.push(
    `${meta.date}, \`npm run bench${quick ? ' -- --quick' : ''}\`, ${meta.reps} alternating repetition(s) per scenario, warm-up ${meta.warmupMs / 1000} s (handshake scenarios ${meta.handshakeWarmupMs / 1000} s), window ${meta.durationMs / 1000} s. The fleet: every system kept, one load alternating between them every ${PHASE_MS / 1000} s, ${FLEET_WINDOWS} window(s) each showing every system a new fleet of ${FLEET_SIZE} certificates (until used up), after ${P.storeWarmupMs / 1000} s of warm-up on ${meta.fleetWarmupSize} other distinct certificates (${P.hsWarmupMs / 1000} s before later windows); store1 and store10k: the same alternation between their two servers, ${P.storeMs / 1000} s windows; ratios gate/node-proxy (fleet) and 10k/1 (store) = median of the windows' ratios. Wall time ${fmt(meta.wallSeconds)} s.`,
    '',
  );
  L.push(
    `Machine: ${machine.nproc} cores, ${machine.cpu}, ${fmt(machine.memGb)} GB, kernel ${machine.kernel}; Node ${machine.node} (OpenSSL ${machine.openssl}); nginx ${machine.nginx}. Server on core ${SERVER_CORE}, load generator and upstream on core ${LOAD_CORE}${hasTaskset ? ' (taskset)' : ' (no taskset: not pinned!)'}. Upstream: ${meta.upstream}. Keys: ${meta.keys}.`,
    '',
  );
  L.push(
    `Load at the end of the run: \`${machine.uptime}\`. "foreign" = cores used by other processes during a window (other people's tests on this machine).`,
    '',
  );
  L.push(
    'Notation: **median** (min–max) over the repetitions. CPU/resp = server CPU time per response over the window; server/load cores = CPU used by the server / by the load generator + upstream.',
    '',
  );
  for (const sc of scenarios) {
    const s = summary[sc.id];
    if (!s) continue;
    L.push(`## ${sc.id}: ${sc.title}`, '');
    L.push(
      `| system | ${sc.unit} | p50 ms | p99 ms | CPU/resp µs | server cores | load cores | foreign cores | RSS rest MB | RSS load MB |${sc.id === 'resume' ? ' resumed share |' : ''}`,
    );
    L.push(`|---|---|---|---|---|---|---|---|---|---|${sc.id === 'resume' ? '---|' : ''}`);
    for (const [system, st] of Object.entries(s)) {
      // Flags: the load core near saturation (the figure may be the client's), other processes busy.
      const flags = [
        st.loadCores!.median > 0.9 ? 'load core ≥ 0.9: client-bound?' : '',
        st.foreignCores!.median > FOREIGN_LIMIT ? 'busy machine' : '',
      ]
        .filter(Boolean)
        .join(', ');
      L.push(
        `| ${system}${flags ? ` (${flags})` : ''} | ${mmm(st.rate)} | ${mmm(st.p50, 2)} | ${mmm(st.p99, 2)} | ${mmm(st.cpuUs)} | ${fmt(st.serverCores!.median, 2)} | ${fmt(st.loadCores!.median, 2)} | ${fmt(st.foreignCores!.median, 2)} | ${fmt(st.rssRestMb!.median)} | ${fmt(st.rssLoadMb!.median)} |${sc.id === 'resume' ? ` ${fmt(st.resumedShare!.median, 2)} |` : ''}`,
      );
    }
    if (serverInfo[sc.id]?.storeBuildMs)
      L.push(
        '',
        `Store built in ${fmt(serverInfo[sc.id]!.storeBuildMs! / 1000, 1)} s; RSS at rest with the store ${fmt(serverInfo[sc.id]!.rssRestMb!)} MB.`,
      );
    L.push('');
  }
  L.push('## Ratios (medians)', '', '| ratio | value |', '|---|---|');
  for (const [k, v] of Object.entries(ratios)) L.push(`| ${k} | ${fmt(v, 2)} |`);
  L.push('', '## Targets from the issue', '', '| target | value | bound | met |', '|---|---|---|---|');
  for (const t of targetResults)
    L.push(
      `| ${t.what} | ${t.value === undefined ? '-' : fmt(t.value, 2)} | ${t.kind} ${t.op} ${t.bound} | ${t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**'} |`,
    );
  L.push('', '## Micro figures (in-process, core 0)', '', '| figure | value |', '|---|---|');
  for (const [k, v] of Object.entries(micro)) L.push(`| ${k} | ${fmt(v, 1)} |`);
  L.push('', '## wrk cross-check (one run per system and mode)', '');
  if (!wrk) L.push('Not run.');
  else if ('skipped' in wrk) L.push(wrk.skipped);
  else {
    L.push(
      `wrk ${wrk.version} (one thread) with the client-certificate shim from ../shared/tools/wrk-clientcert, ${wrk.durationMs / 1000} s after a warm-up of ${wrk.warmupMs / 1000} s (keep-alive) or ${wrk.handshakeWarmupMs / 1000} s (handshakes), on core ${LOAD_CORE}, fresh server per run: ka = keep-alive with the certificate (50 connections), new = \`Connection: close\` with the certificate, every handshake full (32 connections), nocert = the same without a certificate (400). "Node loadgen" is this run's median for the same scenario.`,
      '',
    );
    L.push(
      '| mode | system | wrk /s | wrk p50 ms | wrk p99 ms | server CPU/resp µs (wrk) | server cores | wrk core | Node loadgen /s | wrk / Node loadgen |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const [mode, bySystem] of Object.entries(wrk.runs)) {
      for (const [system, r] of Object.entries(bySystem)) {
        const node = med(mode, system, 'rate');
        L.push(
          `| ${mode} | ${system} | ${fmt(r.rps)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.cpuUs)} | ${fmt(r.serverCores, 2)} | ${fmt(r.loadCores, 2)} | ${fmt(node)} | ${fmt(r.rps / node, 2)} |`,
        );
      }
    }
    L.push('', '| ratio (wrk) | ka | new | nocert |', '|---|---|---|---|');
    for (const other of ['node-proxy', 'nginx', 'node-direct']) {
      const cell = (mode: string) => {
        const g = wrk.runs[mode]?.gate;
        const o = wrk.runs[mode]?.[other];
        return g && o ? `${fmt(g.rps / o.rps, 2)} (CPU/resp ${fmt(g.cpuUs / o.cpuUs, 2)}x)` : '-';
      };
      L.push(`| gate/${other} | ${cell('ka')} | ${cell('new')} | ${cell('nocert')} |`);
    }
  }
  L.push('', '## Sanity checks', '', ...checks.map((c) => `- ${c}`), '');
  return L.join('\n');
}
