// Hostile client certificates from the security review, measured (npm run bench:hostile):
//
//   (a) ordinary refused connections: a well-formed client of another CA, one request, 400
//   (b) finding 2: a leaf with serverAuth-only EKU and nine same-name CA certificates whose RSA keys
//       have 3071-bit public exponents (test/reliability/lib/hostile.ts), a fresh chain per connection
//       plus variants that tell OpenSSL's share from ours (see VARIANTS)
//   (c) finding 3: retained heap per connection presenting a 60 KB control-character subject, a
//       fresh leaf each time, after full GCs (server's JIT turned off for this part: V8's compiled
//       code would otherwise count as retained), against a control of ordinary refused connections
//
// The server (bench/lib/hostile-server.ts: createSslStore + mtlsGuard on node:http2, attached) runs
// in a child process pinned to core 0 when taskset exists, the load here (on core 1). Each connection
// is a full new TLS handshake with one HTTP/1.1 request. CPU is the child's process.cpuUsage() over a
// phase, divided by its connections. Loopback only; stops by itself (HOSTILE_LIMIT_S, default 240 s).
//
//   HOSTILE_N=200 HOSTILE_M=200 HOSTILE_VARIANT_N=50 HOSTILE_CONCURRENCY=4 npm run bench:hostile
//
// Prints a table and writes bench/results/hostile.json.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClientCertificate, testRequest } from '../src/testing/index.js';
import { OID } from '../test/reliability/lib/der.js';
import { hostileCas, hostileExponentChain, hugeSubjectLeaf, rdnsOfNodeName } from '../test/reliability/lib/hostile.js';

const here = dirname(fileURLToPath(import.meta.url));
const int = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
const N = int('HOSTILE_N', 200);
const M = int('HOSTILE_M', 200);
const NV = int('HOSTILE_VARIANT_N', 50);
const CONCURRENCY = int('HOSTILE_CONCURRENCY', 4);
const LIMIT_S = int('HOSTILE_LIMIT_S', 240);
const started = Date.now();

let child: ChildProcess | undefined;
setTimeout(() => {
  console.error(`bench:hostile: still running after ${LIMIT_S} s, giving up`);
  child?.kill('SIGKILL');
  process.exit(2);
}, LIMIT_S * 1000).unref();

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const pinned = hasTaskset() && cpus().length >= 2;
if (pinned) execFileSync('taskset', ['-acp', '1', String(process.pid)], { stdio: 'ignore' });

interface Ready {
  type: 'ready';
  port: number;
  servername: string;
  other: ClientCertificate;
  valid: ClientCertificate;
  rootSubject: string;
}
interface Dist {
  p50: number;
  p99: number;
  max: number;
}
interface PhaseReport {
  type: 'phase';
  cpuUs: number;
  verifications: number;
  sigChecks: number;
  sigMs: number;
  eldMaxMs: number;
  eldP99Ms: number;
  guardWallMs: Dist;
  guardCpuMs: Dist;
  statuses: Record<string, number>;
  reasons: Record<string, number>;
  detailMax: number;
  cached: number;
  cachedBytes: number | null;
}
interface HeapReport {
  type: 'heap';
  heapUsed: number;
  cached: number;
  cachedBytes: number | null;
}

const script = join(here, 'lib', 'hostile-server.ts');
// --no-flush-bytecode: V8 otherwise drops idle functions' bytecode during GCs and compiles it again
// later, heap swings of hundreds of KB that would drown the retained-heap figure.
const nodeArgs = ['--import', 'tsx', '--expose-gc', '--no-flush-bytecode', script];
child = pinned
  ? spawn('taskset', ['-c', '0', process.execPath, ...nodeArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  : spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
child.on('exit', (code, signal) => {
  if (!done) {
    console.error(`bench:hostile: server exited early (${code ?? signal})`);
    process.exit(2);
  }
});
let done = false;

const waiting: ((m: { type: string }) => void)[] = [];
child.on('message', (m: { type: string }) => waiting.shift()?.(m));
const next = <T>(): Promise<T> => new Promise((r) => waiting.push(r as (m: { type: string }) => void));
const ask = <T>(cmd: string): Promise<T> => {
  const p = next<T>();
  child!.send({ cmd });
  return p;
};

const ready = await next<Ready>();

/** Runs `clients.length` connections, `CONCURRENCY` at a time; returns client-side statuses and failures. */
async function load(
  clients: readonly ClientCertificate[],
): Promise<{ statuses: Record<string, number>; errors: number; wallMs: number }> {
  const statuses: Record<string, number> = {};
  let errors = 0;
  let i = 0;
  const t = performance.now();
  const worker = async () => {
    while (i < clients.length) {
      const client = clients[i++]!;
      try {
        const r = await testRequest({ port: ready.port, servername: ready.servername, client, timeoutMs: 30_000 });
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, clients.length) }, worker));
  return { statuses, errors, wallMs: performance.now() - t };
}

interface PhaseResult {
  label: string;
  what: string;
  connections: number;
  usPerConnection: number;
  jsVerificationsPerConnection: number;
  jsSignatureChecksPerConnection: number;
  jsSignatureMsPerConnection: number;
  eventLoopDelayMaxMs: number;
  eventLoopDelayP99Ms: number;
  guardCallWallMs: Dist;
  guardCallCpuMs: Dist;
  serverStatuses: Record<string, number>;
  clientStatuses: Record<string, number>;
  clientErrors: number;
  reasons: Record<string, number>;
  detailMaxChars: number;
  wallMs: number;
}

async function phase(label: string, what: string, clients: readonly ClientCertificate[]): Promise<PhaseResult> {
  await ask('begin');
  const l = await load(clients);
  const r = await ask<PhaseReport>('end');
  const n = clients.length;
  return {
    label,
    what,
    connections: n,
    usPerConnection: r.cpuUs / n,
    jsVerificationsPerConnection: r.verifications / n,
    jsSignatureChecksPerConnection: r.sigChecks / n,
    jsSignatureMsPerConnection: r.sigMs / n,
    eventLoopDelayMaxMs: r.eldMaxMs,
    eventLoopDelayP99Ms: r.eldP99Ms,
    guardCallWallMs: r.guardWallMs,
    guardCallCpuMs: r.guardCpuMs,
    serverStatuses: r.statuses,
    clientStatuses: l.statuses,
    clientErrors: l.errors,
    reasons: r.reasons,
    detailMaxChars: r.detailMax,
    wallMs: l.wallMs,
  };
}

const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
const mintMs = (f: () => ClientCertificate[]) => {
  const t = performance.now();
  const out = f();
  return { out, ms: performance.now() - t };
};

/** Finding-2 variants: what each one tells apart. */
const VARIANTS: { label: string; what: string; make: () => ClientCertificate }[] = [
  {
    label: 'f2-literal',
    what: 'the chain as the review describes it: 9 hostile CAs, forged leaf signature (OpenSSL: CERT_SIGNATURE_FAILURE, checks the first hostile key itself)',
    make: () => hostileExponentChain({ decoy: false }),
  },
  {
    label: 'f2-literal-clientAuth',
    what: 'same, leaf EKU clientAuth: what OpenSSL alone pays (no JS verification either way)',
    make: () => hostileExponentChain({ decoy: false, leafEku: [OID.clientAuth] }),
  },
  {
    label: 'f2-literal-noKeyCertSign',
    what: 'same as f2-literal, hostile CAs keyUsage digitalSignature only',
    make: () => hostileExponentChain({ decoy: false, keyCertSign: false }),
  },
  {
    label: 'f2-decoy-clientAuth',
    what: 'decoy chain with a clientAuth leaf (OpenSSL: SELF_SIGNED_CERT_IN_CHAIN, never ambiguous)',
    make: () => hostileExponentChain({ leafEku: [OID.clientAuth] }),
  },
  {
    label: 'f2-decoy-noKeyCertSign',
    what: 'decoy chain, the 8 hostile CAs without keyCertSign',
    make: () => hostileExponentChain({ keyCertSign: false }),
  },
];

const rootName = rdnsOfNodeName(ready.rootSubject);
const out: PhaseResult[] = [];
const minting: Record<string, number> = {};

// Warm-up: every path once or more, not measured.
{
  const warm = [
    ...times(20, () => ready.other),
    ...times(3, () => hostileExponentChain()),
    ...times(3, () => hostileExponentChain({ decoy: false })),
    ...times(60, (i) => hugeSubjectLeaf(`warm-${i}`)),
  ];
  await load(warm);
}

// (a) and (b)
out.push(
  await phase(
    'ordinary',
    'client of another CA (OpenSSL: UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    times(N, () => ready.other),
  ),
);
{
  const m = mintMs(() => times(N, () => hostileExponentChain()));
  minting['f2-decoy'] = m.ms / N;
  out.push(
    await phase(
      'f2-decoy',
      'finding 2 as reproduced: genuine same-name RSA-3072 CA first, 8 hostile CAs shuffled, serverAuth leaf (OpenSSL: INVALID_PURPOSE)',
      m.out,
    ),
  );
}
for (const v of VARIANTS) {
  const m = mintMs(() => times(NV, v.make));
  minting[v.label] = m.ms / NV;
  out.push(await phase(v.label, v.what, m.out));
}
out.push(
  await phase(
    'valid',
    'valid client of the right CA (accepted)',
    times(NV, () => ready.valid),
  ),
);
out.push(
  await phase(
    'valid+9hostile',
    'valid leaf from the right CA + 9 hostile CAs with the CA name (accepted)',
    times(NV, () => ({ ...ready.valid, chain: ready.valid.cert + hostileCas(rootName, 9).join('') })),
  ),
);

// (c) retained heap
async function retained(label: string, clients: readonly ClientCertificate[]) {
  const before = await ask<HeapReport>('heap');
  const l = await load(clients);
  const after = await ask<HeapReport>('heap');
  return {
    label,
    connections: clients.length,
    bytesPerConnection: (after.heapUsed - before.heapUsed) / clients.length,
    heapUsedBefore: before.heapUsed,
    heapUsedAfter: after.heapUsed,
    cacheEntriesAdded: after.cached - before.cached,
    cachedBytesAfter: after.cachedBytes,
    clientStatuses: l.statuses,
    clientErrors: l.errors,
  };
}
// The event-loop figures of the finding-3 connections (compiled code, as in production).
const f3 = await phase(
  'f3-huge-subject',
  'finding 3: 60 KB control-character subject, unknown CA sent (OpenSSL: INVALID_PURPOSE)',
  times(Math.min(M, 50), (i) => hugeSubjectLeaf(`eld-${i}`)),
);
out.push(f3);
// Then retained heap, with the server's JIT off (see hostile-server.ts 'nojit') and a new warm-up.
await ask('nojit');
await load([...times(150, () => ready.other), ...times(100, (i) => hugeSubjectLeaf(`warm-nojit-${i}`))]);
const heapControl = await retained(
  'ordinary',
  times(M, () => ready.other),
);
const hugeLeaves = mintMs(() => times(M, (i) => hugeSubjectLeaf(`measure-${i}`)));
minting['f3-huge-subject'] = hugeLeaves.ms / M;
const heapHuge = await retained('f3-huge-subject', hugeLeaves.out);

done = true;
child.send({ cmd: 'exit' });

const ordinary = out.find((p) => p.label === 'ordinary')!;
const hostile = out.find((p) => p.label === 'f2-decoy')!;
const ratio = hostile.usPerConnection / ordinary.usPerConnection;

let source = 'unknown';
try {
  const repo = join(here, '..');
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  })
    .trim()
    .split('\n')
    .filter(Boolean).length;
  source = dirty ? `${head} + ${dirty} changed file(s) under src/` : head;
} catch {
  // not a git checkout
}

const fmt = (x: number, d = 0) => x.toFixed(d);
const reasonText = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k}:${v}`)
    .join(' ') || '-';
const statusText = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k}x${v}`)
    .join(' ');
const rows = out.map((p) => [
  p.label,
  String(p.connections),
  fmt(p.usPerConnection),
  fmt(p.usPerConnection / ordinary.usPerConnection, 2),
  fmt(p.jsVerificationsPerConnection, 2),
  fmt(p.jsSignatureChecksPerConnection, 1),
  `${fmt(p.eventLoopDelayP99Ms, 1)}/${fmt(p.eventLoopDelayMaxMs, 1)}`,
  `${fmt(p.guardCallCpuMs.p50, 2)}/${fmt(p.guardCallCpuMs.max, 1)}`,
  statusText(p.clientStatuses) + (p.clientErrors ? ` err${p.clientErrors}` : ''),
  reasonText(p.reasons),
]);
const header = [
  'phase',
  'conns',
  'µs/conn',
  'x ordinary',
  'JS verif/conn',
  'JS sig/conn',
  'ELD p99/max ms',
  'guard CPU p50/max ms',
  'statuses',
  'reasons',
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) =>
  r.map((c, i) => (i === 0 || i >= 8 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(
  `\nbench:hostile  node ${process.version}, OpenSSL ${process.versions.openssl}, ${cpus()[0]?.model ?? '?'}, server ${pinned ? 'pinned to core 0, load on core 1' : 'not pinned'}, src ${source}`,
);
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log(
  `\nfinding 2: hostile/ordinary CPU per connection = ${fmt(ratio, 2)} (target <= 2); ordinary ${fmt(ordinary.usPerConnection)} µs, hostile ${fmt(hostile.usPerConnection)} µs; ` +
    `event loop: guard call max ${fmt(hostile.guardCallCpuMs.max, 1)} ms CPU, delay max ${fmt(hostile.eventLoopDelayMaxMs, 1)} ms`,
);
console.log(
  'ELD: event-loop delay (monitorEventLoopDelay, wall clock, includes preemption); guard CPU: process CPU of one guard call; JS sig: X509Certificate#verify calls',
);
console.log(
  `finding 3: retained heap ${fmt(heapHuge.bytesPerConnection)} B per connection (target < 2048; ordinary control ${fmt(heapControl.bytesPerConnection)} B), ` +
    `cache entries +${heapHuge.cacheEntriesAdded}, cachedBytes ${heapHuge.cachedBytesAfter ?? 'n/a'}, onReject detail max ${f3.detailMaxChars} chars`,
);
console.log(`took ${fmt((Date.now() - started) / 1000, 1)} s`);

const results = {
  when: new Date().toISOString(),
  node: process.version,
  openssl: process.versions.openssl,
  cpu: cpus()[0]?.model,
  pinned,
  source,
  parameters: { N, M, NV, CONCURRENCY },
  finding2: {
    ordinaryUsPerConnection: ordinary.usPerConnection,
    hostileUsPerConnection: hostile.usPerConnection,
    ratio,
    target: 2,
    met: ratio <= 2,
    hostileGuardCallCpuMs: hostile.guardCallCpuMs,
    hostileEventLoopDelayMaxMs: hostile.eventLoopDelayMaxMs,
    literalUsPerConnection: out.find((p) => p.label === 'f2-literal')!.usPerConnection,
    floorTenCertificatesUsPerConnection: out.find((p) => p.label === 'f2-decoy-clientAuth')!.usPerConnection,
  },
  finding3: {
    retainedBytesPerConnection: heapHuge.bytesPerConnection,
    controlRetainedBytesPerConnection: heapControl.bytesPerConnection,
    target: 2048,
    met: heapHuge.bytesPerConnection < 2048,
    onRejectDetailMaxChars: f3.detailMaxChars,
    eventLoopDelayMaxMs: f3.eventLoopDelayMaxMs,
    guardCallCpuMs: f3.guardCallCpuMs,
    heap: [heapControl, heapHuge],
  },
  phases: out,
  mintingMsPerClient: minting,
  tookS: (Date.now() - started) / 1000,
};
const file = join(here, 'results', 'hostile.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${file}`);
