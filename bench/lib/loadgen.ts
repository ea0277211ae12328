// An HTTP/1.1 load generator over TLS that presents client certificates (wrk and h2load cannot).
// Run it on another core than the server (taskset).
//
//   node --import tsx bench/lib/loadgen.ts <config.json | inline JSON>
//
// Modes:
//   ka   keep-alive: each connection sends a request, reads the whole response (Content-Length
//        framed), sends the next; a response with `Connection: close` makes it reconnect.
//   new  a new TCP + TLS connection per request (`Connection: close`): handshakes per second.
//        `resume` offers the last TLS session ticket the connection slot received (TLS 1.3
//        resumption); otherwise every handshake is full. `fleetFile` presents each of those client
//        certificates once, in order, to every server (a fleet of devices, the verification cache
//        cold for each); the run ends when the fleet is used up or the time is over. Warm-up uses
//        `cert`, or the distinct certificates of `fleetWarmupFile` in turn, each server its own
//        turn (so that the code a new certificate runs is warm, as on a server that has seen
//        devices before, while every measured one is new).
// Without `cert` the client sends no certificate (the 400 path).
//
// Prints a line `{"measuring":true}` when the warm-up ends, then one JSON line:
//   { requests, seconds, rps, p50, p99, errors, statuses, full, resumed }

import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { cpuSeconds } from './run.js';

export interface LoadConfig {
  mode: 'ka' | 'new';
  port: number;
  servername: string;
  path: string;
  connections: number;
  durationMs: number;
  warmupMs: number;
  cert?: string;
  key?: string;
  resume?: boolean;
  /** Server names to pick from at random per connection (SNI and Host); default `servername`. */
  servernames?: string[];
  /** A file with a JSON array of { cert, key }: each used once per server, in new mode. */
  fleetFile?: string;
  /** Other certificates, in the same form, cycled through during the warm-up of a fleet run. */
  fleetWarmupFile?: string;
  /**
   * New mode: alternate between several servers (`port`, `servername(s)` above are then unused),
   * A B A B ..., one phase of `phaseMs` each, warm-up included. A drift of the machine lasting
   * longer than a phase falls on every server alike. Each target's server CPU is read from
   * /proc/<pid> of its processes at the start and end of the window; the result line gains
   * `targets` (per server: requests, seconds of its phases, rps, p50, p99, statuses, cpuSeconds).
   * With a fleet, a server that has been shown the whole fleet leaves the rotation and the others
   * go on.
   */
  alternate?: {
    phaseMs: number;
    targets: { port: number; pids: number[]; servername: string; servernames?: string[] }[];
  };
}

const arg = process.argv[2]!;
const cfg = JSON.parse(arg.startsWith('{') ? arg : readFileSync(arg, 'utf8')) as LoadConfig;
// One TLS context per identity, made before the load starts: given cert and key, tls.connect would
// build a new context (parse the PEM key and certificate) for every connection, which costs the
// client more than the handshake itself.
const contextOf = (id: { cert?: string; key?: string }) =>
  tls.createSecureContext(id.cert ? { cert: id.cert, key: id.key } : {});
const ownContext = contextOf(cfg);
const contextsIn = (file: string | undefined) =>
  file ? (JSON.parse(readFileSync(file, 'utf8')) as { cert: string; key: string }[]).map(contextOf) : undefined;
const fleet = contextsIn(cfg.fleetFile);
const fleetWarmup = contextsIn(cfg.fleetWarmupFile);
let activeSlots = 0;
const requestFor = (host: string) =>
  Buffer.from(`GET ${cfg.path} HTTP/1.1\r\nHost: ${host}\r\n${cfg.mode === 'new' ? 'Connection: close\r\n' : ''}\r\n`);
interface Target {
  port: number;
  servername: string;
  names: string[] | undefined;
  request: Buffer;
  pids: number[];
  /** The next fleet certificate, and the next warm-up one, this server is shown. */
  fleetNext: number;
  warmupNext: number;
  /** When its last fleet certificate was handed out. */
  usedUpAt: number;
}
const targets: Target[] = (
  cfg.alternate?.targets ?? [{ port: cfg.port, pids: [], servername: cfg.servername, servernames: cfg.servernames }]
).map((t) => ({
  port: t.port,
  servername: t.servername,
  names: t.servernames,
  request: requestFor(t.servername),
  pids: t.pids,
  fleetNext: 0,
  warmupNext: 0,
  usedUpAt: 0,
}));
/** Has this server been shown the whole fleet? */
const usedUp = (t: Target) => fleet !== undefined && t.fleetNext >= fleet.length;
/** The target of new connections (the phase's, with `alternate`). */
let current = 0;
/** Port, SNI and request for a new connection. */
const target = (): [number, string, Buffer] => {
  const t = targets[current]!;
  if (!t.names) return [t.port, t.servername, t.request];
  const n = t.names[Math.floor(Math.random() * t.names.length)]!;
  return [t.port, n, requestFor(n)];
};
let measuring = false;
let stopped = false;
let requests = 0;
let errors = 0;
let full = 0;
let resumed = 0;
let start = 0;
let lastDone = 0;
const statuses: Record<string, number> = {};
const latencies: number[] = [];

// Reads Content-Length framed responses off a socket; calls `onResponse(status, close)` for each.
function reader(sock: tls.TLSSocket, onResponse: (status: string, close: boolean) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.subarray(0, end).toString('latin1');
      const m = /content-length: *(\d+)/i.exec(head);
      const total = end + 4 + (m ? Number(m[1]) : 0);
      if (buf.length < total) return;
      buf = buf.subarray(total);
      onResponse(head.slice(9, 12), /connection: *close/i.test(head));
      if (sock.destroyed) return;
    }
  });
}

function count(status: string, sentAt: number, t = 0): void {
  if (!measuring) return;
  requests++;
  const pt = perTarget[t]!;
  pt.requests++;
  pt.statuses[status] = (pt.statuses[status] ?? 0) + 1;
  statuses[status] = (statuses[status] ?? 0) + 1;
  const now = performance.now();
  latencies.push(now - sentAt);
  if (cfg.alternate) pt.latencies.push(now - sentAt);
  lastDone = now;
}

function keepAlive(): void {
  const [port, servername, request] = target();
  const sock = tls.connect({
    host: '127.0.0.1',
    port,
    servername,
    rejectUnauthorized: false,
    secureContext: ownContext,
  });
  let sentAt = 0;
  const send = () => {
    if (stopped) return void sock.destroy();
    sentAt = performance.now();
    sock.write(request);
  };
  sock.on('secureConnect', send);
  reader(sock, (status, close) => {
    count(status, sentAt);
    if (close) {
      sock.destroy();
      if (!stopped) keepAlive();
      return;
    }
    send();
  });
  sock.on('error', () => {
    if (measuring) errors++;
    if (!stopped) setTimeout(keepAlive, 10);
  });
}

// One connection slot of the new-connection mode: connect, one request, close, again.
function slot(): void {
  activeSlots++;
  let session: Buffer | undefined;
  const once = () => {
    if (stopped) return;
    let context = ownContext;
    let fromFleet = false;
    if (fleet && measuring) {
      if (usedUp(targets[current]!)) {
        if (targets.every(usedUp)) {
          // This slot is done; the run ends when the last slot's answer is in.
          if (--activeSlots === 0) finish();
          return;
        }
        nextPhase();
      }
      const shown = targets[current]!;
      context = fleet[shown.fleetNext++]!;
      if (usedUp(shown)) shown.usedUpAt = performance.now();
      fromFleet = true;
    } else if (fleetWarmup && !measuring) {
      context = fleetWarmup[targets[current]!.warmupNext++ % fleetWarmup.length]!;
    }
    const t = current;
    const [port, servername, request] = target();
    const sentAt = performance.now();
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      servername,
      rejectUnauthorized: false,
      secureContext: context,
      ...(cfg.resume && session ? { session } : {}),
    });
    let done = false;
    if (cfg.resume) sock.on('session', (s: Buffer) => (session = s));
    sock.on('secureConnect', () => {
      if (measuring) {
        if (sock.isSessionReused()) resumed++;
        else full++;
      }
      sock.write(request);
    });
    reader(sock, (status) => {
      if (done) return;
      done = true;
      // Counted only for handshakes that started inside the window (a fleet certificate).
      if (!fleet || fromFleet) count(status, sentAt, t);
      // Let a TLS 1.3 ticket that arrives with or after the response land first.
      sock.end();
      sock.destroy();
      once();
    });
    sock.on('error', () => {
      if (done) return;
      done = true;
      if (measuring) errors++;
      setTimeout(once, 10);
    });
    sock.on('close', () => {
      if (done) return;
      done = true;
      if (measuring) errors++;
      once();
    });
  };
  once();
}

const perTarget = targets.map(() => ({
  requests: 0,
  cpu0: 0,
  ms: 0,
  statuses: {} as Record<string, number>,
  latencies: [] as number[],
}));
const cpuNow = () => targets.map((t) => t.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0));
let phaseStart = 0;
/**
 * Ends the current phase (while measuring, its time counts for its target) and starts the next,
 * skipping servers that have been shown the whole fleet. The phase of a server whose fleet is used
 * up ends when its last certificate was handed out: the answers still in flight then count for it,
 * as at every change of phase, and the last server's are not charged the idle end of the run.
 */
function nextPhase(): void {
  const now = performance.now();
  if (measuring) {
    const t = targets[current]!;
    perTarget[current]!.ms += (usedUp(t) ? t.usedUpAt : now) - phaseStart;
  }
  phaseStart = now;
  for (let i = 0; i < targets.length; i++) {
    current = (current + 1) % targets.length;
    if (!measuring || !usedUp(targets[current]!)) break;
  }
}

let finished = false;
function finish(): void {
  if (finished) return;
  if (cfg.alternate) nextPhase();
  finished = true;
  measuring = false;
  stopped = true;
  // With a fleet the window ends at the last answer (the fleet may run out before the time).
  const seconds = ((fleet && lastDone > start ? lastDone : performance.now()) - start) / 1000;
  const q = (p: number, xs = latencies) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;
  for (const xs of [latencies, ...perTarget.map((t) => t.latencies)]) xs.sort((a, b) => a - b);
  const cpu = cpuNow();
  const alternate = cfg.alternate
    ? {
        targets: perTarget.map((t, i) => ({
          requests: t.requests,
          seconds: t.ms / 1000,
          rps: t.requests / (t.ms / 1000),
          p50: q(0.5, t.latencies),
          p99: q(0.99, t.latencies),
          statuses: t.statuses,
          cpuSeconds: cpu[i]! - t.cpu0,
        })),
      }
    : {};
  process.stdout.write(
    `${JSON.stringify({ requests, seconds, rps: requests / seconds, p50: q(0.5), p99: q(0.99), errors, statuses, full, resumed, ...alternate })}\n`,
    () => process.exit(0),
  );
}

for (let i = 0; i < cfg.connections; i++) (cfg.mode === 'ka' ? keepAlive : slot)();
let phaseTimer = cfg.alternate ? setInterval(nextPhase, cfg.alternate.phaseMs).unref() : undefined;
setTimeout(() => {
  measuring = true;
  start = performance.now();
  const cpu0 = cpuNow();
  for (const [i, t] of perTarget.entries()) t.cpu0 = cpu0[i]!;
  if (cfg.alternate) {
    // The measured phases start here, on the first target, and the phase timer starts over.
    current = 0;
    phaseStart = start;
    clearInterval(phaseTimer);
    phaseTimer = setInterval(nextPhase, cfg.alternate.phaseMs).unref();
  }
  process.stdout.write('{"measuring":true}\n');
  setTimeout(finish, cfg.durationMs);
}, cfg.warmupMs);
