// A one-off cross-check of the Node load generator's keep-alive, handshake and 400-path figures with wrk 4.1 and the
// client-certificate shim from ../shared/tools/wrk-clientcert (a tool, not a dependency: the
// bench skips this step with a line when wrk or the built shim is missing).
//   shim: cc -O2 -shared -fPIC -o /tmp/wrk-clientcert.so wrk-clientcert.c -ldl -lssl -lcrypto
//   (or WRK_CLIENTCERT_SO=path)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, spawnPinned } from './run.js';

export interface WrkRun {
  rps: number;
  p50: number;
  p99: number;
  cpuUs: number;
  serverCores: number;
  loadCores: number;
  handshakes: unknown;
}
export interface WrkResult {
  version: string;
  durationMs: number;
  warmupMs: number;
  handshakeWarmupMs: number;
  /** By mode (ka, new, nocert), then system. */
  runs: Record<string, Record<string, WrkRun>>;
}

interface Server {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
}

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** wrk's latency ("1.23ms", "870.00us", "1.01s") in ms. */
function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

export async function wrkCrossCheck(o: {
  systems: string[];
  durationMs: number;
  warmupMs: number;
  /** Warm-up of the handshake modes (new, nocert). */
  handshakeWarmupMs: number;
  /** Which of ka, new, nocert to run. */
  modes: string[];
  loadCore: number;
  start(system: string): Promise<Server>;
  files: { clientCert: string; clientKey: string };
  servername: string;
  serverCpu(pids: number[]): number;
  log(s: string): void;
}): Promise<WrkResult | { skipped: string }> {
  const wrk = which('wrk');
  const shim = process.env.WRK_CLIENTCERT_SO ?? '/tmp/wrk-clientcert.so';
  if (!wrk) return { skipped: 'wrk cross-check skipped: wrk not installed (apt-get install wrk)' };
  if (!existsSync(shim))
    return {
      skipped: `wrk cross-check skipped: no client-certificate shim at ${shim} (build it from ../shared/tools/wrk-clientcert, see bench/lib/wrk.ts)`,
    };
  const version = /wrk (\S+)/.exec(spawnSync(wrk, ['-v'], { encoding: 'utf8' }).stdout || '')?.[1] ?? 'unknown';
  const report = join(tmpdir(), `mtls-gate-bench-wrk-${process.pid}.jsonl`);
  const runs: Record<string, Record<string, WrkRun>> = {};
  // ka: keep-alive with the certificate; new: a full handshake per request (Connection: close; the
  // shim stops wrk's hidden resumption); nocert: the same without a certificate (the 400 path).
  const modes = [
    { id: 'ka', connections: 50, close: false, cert: true },
    { id: 'new', connections: 32, close: true, cert: true },
    { id: 'nocert', connections: 32, close: true, cert: false },
  ].filter((m) => o.modes.includes(m.id));
  for (const mode of modes) {
    runs[mode.id] = {};
    for (const system of o.systems) {
      // A fresh server per run, as in the main scenarios.
      const server = await o.start(system);
      try {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          LD_PRELOAD: shim,
          BENCH_SNI: o.servername,
          BENCH_SHIM_REPORT: report,
        };
        if (mode.cert) {
          env.BENCH_CLIENT_CERT = o.files.clientCert;
          env.BENCH_CLIENT_KEY = o.files.clientKey;
        }
        const url = `https://127.0.0.1:${server.port}/v1/json`;
        const args = [
          '-t1',
          `-c${mode.connections}`,
          '--latency',
          '-H',
          `Host: ${o.servername}`,
          ...(mode.close ? ['-H', 'Connection: close'] : []),
          url,
        ];
        const wrkRun = async (seconds: number) => {
          const child = spawnPinned(o.loadCore, wrk, [`-d${seconds}s`, ...args], env);
          let text = '';
          child.stdout!.setEncoding('utf8');
          child.stdout!.on('data', (d: string) => (text += d));
          const pid = child.pid!;
          let loadCpu = 0;
          const t = setInterval(() => (loadCpu = Math.max(loadCpu, cpuSeconds(pid))), 250);
          await new Promise<void>((resolve) => child.once('exit', () => resolve()));
          clearInterval(t);
          return { text, loadCpu };
        };
        rmSync(report, { force: true });
        await wrkRun(Math.max(1, Math.round((mode.id === 'ka' ? o.warmupMs : o.handshakeWarmupMs) / 1000)));
        rmSync(report, { force: true });
        const pids = server.pids();
        const c0 = o.serverCpu(pids);
        const t0 = performance.now();
        const { text, loadCpu } = await wrkRun(Math.round(o.durationMs / 1000));
        const dt = (performance.now() - t0) / 1000;
        const cpu = o.serverCpu(pids) - c0;
        const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
        const p50 = ms(/\s50%\s+(\S+)/.exec(text)?.[1] ?? '');
        const p99 = ms(/\s99%\s+(\S+)/.exec(text)?.[1] ?? '');
        const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
        const errs = /Socket errors:.*/.exec(text)?.[0];
        const shimLines = existsSync(report) ? readFileSync(report, 'utf8').trim().split('\n') : [];
        const handshakes = shimLines.length ? JSON.parse(shimLines[shimLines.length - 1]!) : undefined;
        // Every answer must be the expected one: 200 with the certificate, 400 without.
        if (mode.cert ? non2xx > 0 : !/Non-2xx/.test(text))
          throw new Error(`wrk ${mode.id} against ${system}: unexpected statuses\n${text}`);
        const r: WrkRun = {
          rps,
          p50,
          p99,
          cpuUs: (cpu * 1e6) / (rps * dt),
          serverCores: cpu / dt,
          loadCores: loadCpu / dt,
          handshakes,
        };
        runs[mode.id]![system] = r;
        o.log(
          `   ${mode.id.padEnd(6)} ${system.padEnd(11)} wrk ${rps.toFixed(0).padStart(7)}/s  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  ${r.cpuUs.toFixed(0)} µs CPU/resp  server ${(cpu / dt).toFixed(2)} cores  wrk ${(loadCpu / dt).toFixed(2)} cores${errs ? `  ${errs}` : ''}  ${handshakes ? `full ${handshakes.full_handshakes} resumed ${handshakes.resumed_handshakes} ${handshakes.protocol}` : ''}`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  rmSync(report, { force: true });
  return { version, durationMs: o.durationMs, warmupMs: o.warmupMs, handshakeWarmupMs: o.handshakeWarmupMs, runs };
}
