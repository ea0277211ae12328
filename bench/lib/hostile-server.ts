// The server of bench/hostile.ts, run as a child process (pinned to one core by the parent, started
// with --expose-gc): mtls-gate used as the product is used (store + guard on node:http2 with
// HTTP/1.1 fallback, attached with the default limits), from the source tree through tsx.
//
// Speaks over the IPC channel:
//   -> { type: 'ready', port, servername, other: { cert, key }, valid: { cert, key }, rootSubject }
//   <- { cmd: 'begin' }                 starts a phase: CPU, counters and event-loop delay from now
//   -> { type: 'begun' }
//   <- { cmd: 'end' }                   ends it
//   -> { type: 'phase', cpuUs, verifications, sigChecks, sigMs, eldMaxMs, eldP99Ms, guardWallMs, guardCpuMs, statuses,
// reasons, detailMax, cached, cachedBytes }
//   <- { cmd: 'nojit' }                 turns V8's compilers off (before the heap phases)
//   -> { type: 'nojit' }
//   <- { cmd: 'heap' }                  full GCs, then heapUsed
//   -> { type: 'heap', heapUsed, cached, cachedBytes }
//   <- { cmd: 'exit' }

import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import { createSslStore, mtlsGuard } from '../../src/index.js';
import { createTestPki } from '../../src/testing/index.js';

const SERVERNAME = 'hostile.bench.test';
const send = (m: object) => process.send!(m);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc || !process.send) {
  console.error('hostile-server: run by bench/hostile.ts (needs --expose-gc and an IPC channel)');
  process.exit(2);
}

// JS signature checks, counted from outside the library: the verifier checks signatures with
// X509Certificate#verify (src/verify/cert.ts signedBy). OpenSSL's own checks in the handshake are
// not seen here; they show in the CPU figures only.
let sigChecks = 0;
let sigMs = 0;
const verify = X509Certificate.prototype.verify;
X509Certificate.prototype.verify = function (this: X509Certificate, key) {
  sigChecks++;
  const t = performance.now();
  try {
    return verify.call(this, key);
  } finally {
    sigMs += performance.now() - t;
  }
};

const pki = await createTestPki({ serverNames: [SERVERNAME], name: 'hostile bench' });
const store = createSslStore();
store.set({
  id: 'hostile',
  cert: pki.server.chain,
  key: pki.server.key,
  snis: [SERVERNAME],
  client: { ca: pki.root.cert },
});

let statuses: Record<string, number> = {};
let reasons: Record<string, number> = {};
let detailMax = 0;
/**
 * Per guard call in this phase: wall ms and process CPU ms (the wall figure includes preemption on a shared machine).
 */
let guardWall: number[] = [];
let guardCpu: number[] = [];
const guard = mtlsGuard({
  store,
  onReject: (i) => {
    reasons[i.reason] = (reasons[i.reason] ?? 0) + 1;
    detailMax = Math.max(detailMax, i.detail.length);
  },
});
const server = store.attach(
  http2.createSecureServer(store.tlsOptions(), (req, res) => {
    const t = performance.now();
    const c = process.cpuUsage();
    guard(req, res, () => res.end('ok\n'));
    const d = process.cpuUsage(c);
    guardWall.push(performance.now() - t);
    guardCpu.push((d.user + d.system) / 1000);
    res.once('finish', () => {
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
    });
  }),
);
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

function summary(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : 0);
  return { p50: at(0.5), p99: at(0.99), max: s.length ? s[s.length - 1]! : 0 };
}

const eld = monitorEventLoopDelay({ resolution: 1 });
let cpu0 = process.cpuUsage();
let stats0 = store.verifierStats();
let sig0 = 0;
let sigMs0 = 0;

process.on('message', async (m: { cmd: string }) => {
  switch (m.cmd) {
    case 'begin':
      statuses = {};
      reasons = {};
      detailMax = 0;
      guardWall = [];
      guardCpu = [];
      eld.disable();
      eld.reset();
      eld.enable();
      stats0 = store.verifierStats();
      sig0 = sigChecks;
      sigMs0 = sigMs;
      cpu0 = process.cpuUsage();
      send({ type: 'begun' });
      break;
    case 'end': {
      const cpu = process.cpuUsage(cpu0);
      eld.disable();
      const s = store.verifierStats();
      send({
        type: 'phase',
        cpuUs: cpu.user + cpu.system,
        verifications: s.verifications - stats0.verifications,
        sigChecks: sigChecks - sig0,
        sigMs: sigMs - sigMs0,
        eldMaxMs: eld.max / 1e6,
        eldP99Ms: eld.percentile(99) / 1e6,
        guardWallMs: summary(guardWall),
        guardCpuMs: summary(guardCpu),
        statuses,
        reasons,
        detailMax,
        cached: s.cached,
        cachedBytes: (s as { cachedBytes?: number }).cachedBytes ?? null,
      });
      break;
    }
    case 'heap': {
      // Let closing sockets finish, then collect until heapUsed settles.
      await sleep(500);
      let last = Infinity;
      for (let i = 0; i < 6; i++) {
        gc!();
        await sleep(20);
        const h = process.memoryUsage().heapUsed;
        if (Math.abs(h - last) < 4096) break;
        last = h;
      }
      const s = store.verifierStats();
      send({
        type: 'heap',
        heapUsed: process.memoryUsage().heapUsed,
        cached: s.cached,
        cachedBytes: (s as { cachedBytes?: number }).cachedBytes ?? null,
      });
      break;
    }
    case 'nojit':
      // For the retained-heap phases: V8's optimising tiers keep compiling hot functions for
      // thousands of connections, code that would count as retained heap (measured ~650 B per
      // connection, all code). From here on the server runs interpreted only.
      for (const flag of ['--no-opt', '--no-maglev', '--no-sparkplug']) v8.setFlagsFromString(flag);
      send({ type: 'nojit' });
      break;
    case 'exit':
      server.close();
      process.exit(0);
  }
});

const valid = await pki.client('valid');
const other = await pki.client('otherCa');
send({
  type: 'ready',
  port: (server.address() as AddressInfo).port,
  servername: SERVERNAME,
  other: { cert: other.cert, key: other.key },
  valid: { cert: valid.cert, key: valid.key },
  rootSubject: new X509Certificate(pki.root.cert).subject,
});
