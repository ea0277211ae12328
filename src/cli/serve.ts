/**
 * `mtls-gate serve`: a gateway from a config file, reloaded when the file (or a file it references)
 * changes and on SIGHUP, drained on SIGTERM/SIGINT; with `--workers N`, N node:cluster workers, each
 * with its own gateway fed by the same file, and the primary watching the file and serving status.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadConfigFileOffThread } from '../config/load.js';
import { createGateway, type Gateway, type GatewayEvent } from '../gateway/gateway.js';
import { mergeMetrics, renderMetrics } from '../gateway/metrics.js';
import { type GatewayStatus, serveStatus } from '../gateway/status.js';
import { type EtcdSource, etcdSource } from '../sources/etcd.js';
import type { Log } from './log.js';

export interface ServeOptions {
  /** The config file; with `etcd`, optional and without `ssls` / `services`. */
  config: string | undefined;
  /** `--etcd URL[,URL...]`: SSL objects and services come from etcd (see sources/etcd.ts). */
  etcd?: { endpoints: string[]; prefix: string; snapshot?: string; startTimeoutMs?: number };
  workers: number;
  /** `--listen HOST:PORT` (repeatable): replaces the file's `listen` with these TLS listeners. */
  listen?: { host: string; port: number; sessionTickets?: boolean }[];
  /** `--status HOST:PORT`: replaces the file's `status`. */
  status?: { host: string; port: number };
  /** `--access-log json|common|off`: replaces the file's `accessLog`. */
  accessLog?: 'json' | 'common' | 'off';
  log: Log;
}

/** A running `serve`: what it listens on, and how to stop it. */
export interface Serving {
  addresses: readonly { host: string; port: number; tls: boolean }[];
  statusAddress: { host: string; port: number } | undefined;
  stop(): Promise<void>;
}

const DEBOUNCE_MS = 100;
const MAX_WAIT_MS = 500;

/** The file as the gateway takes it, with the command line's overrides. */
async function load(o: ServeOptions) {
  const loaded =
    o.config === undefined ? { config: {}, files: [], digest: '' } : await loadConfigFileOffThread(o.config);
  const config = loaded.config as Record<string, unknown>;
  if (o.etcd && (config.ssls !== undefined || config.services !== undefined)) {
    throw new Error(
      `${o.config}: with --etcd, SSL objects and services come from etcd only; remove ssls and services from the file`,
    );
  }
  if (o.etcd && config.listen === undefined && !o.listen)
    throw new Error('with --etcd, give --listen HOST:PORT (or a --config file with listen)');
  if (typeof config === 'object' && config !== null && !Array.isArray(config)) {
    if (o.listen) config.listen = o.listen;
    if (o.status) config.status = o.status;
    if (o.accessLog === 'off') delete config.accessLog;
    else if (o.accessLog) config.accessLog = { format: o.accessLog };
  }
  return { config, files: loaded.files, digest: loaded.digest };
}

/**
 * Calls `onChange` when one of `files` changes. Directories are watched, not the files: editors save
 * by writing a new file and renaming it over the old one, which ends a watch on the old file.
 * Changes are debounced, but a file rewritten continuously is still reloaded every half second.
 */
function watchFiles(onChange: () => void): { set(files: readonly string[]): void; close(): void } {
  let watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let firstAt = 0;
  const fire = () => {
    timer = undefined;
    firstAt = 0;
    onChange();
  };
  const changed = () => {
    const now = Date.now();
    if (firstAt === 0) firstAt = now;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, now - firstAt >= MAX_WAIT_MS ? 0 : DEBOUNCE_MS);
  };
  return {
    set(files) {
      for (const w of watchers) w.close();
      const byDir = new Map<string, Set<string>>();
      for (const f of files) {
        const names = byDir.get(dirname(f)) ?? new Set<string>();
        names.add(basename(f));
        byDir.set(dirname(f), names);
      }
      watchers = [...byDir].map(([dir, names]) => {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (name === null || names.has(String(name))) changed();
        });
        w.on('error', () => {});
        return w;
      });
    },
    close() {
      for (const w of watchers) w.close();
      if (timer) clearTimeout(timer);
    },
  };
}

function summary(e: Extract<GatewayEvent, { type: 'applied' }>): string {
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  return `revision ${e.revision}: ${n(e.ssls, 'SSL object')}, ${n(e.services, 'service')}, ${n(e.routes, 'route')}${e.restartNeeded.length ? ` (changes to ${e.restartNeeded.join(', ')} need a restart)` : ''}`;
}

/** One gateway in this process (the single-process command, or a worker). */
async function runGateway(
  o: ServeOptions,
  worker: boolean,
): Promise<{ gateway: Gateway; source: EtcdSource | undefined; files: readonly string[] }> {
  const first = await load(o);
  let files = first.files;
  const onEvent = (e: GatewayEvent) => {
    o.log.write(
      e.type === 'applied' ? { type: 'info', message: summary(e), event: 'applied', revision: e.revision } : e,
    );
    if (worker && (e.type === 'applied' || e.type === 'config_error')) report(gateway);
  };
  let source: EtcdSource | undefined;
  const gateway: Gateway = await createGateway(first.config as never, {
    // Access log lines share the log's buffered writer (and its stdout).
    accessLog: (line) => o.log.line(line),
    load: async () => {
      const l = await load(o);
      files = l.files;
      return l;
    },
    // Workers always have one (from the primary); a single process only when the operator gives one
    // (resumption across machines serving the same file).
    ...(process.env.MTLS_GATE_TICKET_SECRET
      ? { ticketSecret: Buffer.from(process.env.MTLS_GATE_TICKET_SECRET, 'base64') }
      : {}),
    onEvent,
    noStatus: worker,
    awaitSource: o.etcd !== undefined,
  });
  if (o.etcd) {
    source = etcdSource({ ...o.etcd, onLog: (r) => o.log.write(r) });
    const s = source;
    gateway.setSourceStatus(() => s.status());
    try {
      await s.start((changes) => gateway.applyChanges(changes));
    } catch (err) {
      await gateway.close();
      throw err;
    }
  }
  return {
    gateway,
    source,
    get files() {
      return files;
    },
  };
}

function report(gateway: Gateway | undefined): void {
  if (gateway && process.send)
    process.send({ type: 'mtls-gate:status', pid: process.pid, status: gateway.status(), metrics: gateway.metrics() });
}

/** `mtls-gate serve`. Resolves once serving (the primary: once every worker serves). */
export async function serve(o: ServeOptions): Promise<Serving> {
  if (o.workers > 1 && cluster.isPrimary) return servePrimary(o);
  const worker = cluster.isWorker;
  const run = await runGateway(o, worker);
  const { gateway } = run;
  // With etcd, a settings file applies at start only: a reload would replace etcd's objects by the file's none.
  const reload = () => void (o.etcd ? Promise.resolve() : gateway.reload()).catch(() => {});
  let watcher: ReturnType<typeof watchFiles> | undefined;
  if (!worker && !o.etcd) {
    watcher = watchFiles(() => {
      reload();
      // The set of referenced files may have changed with the file.
      setTimeout(() => watcher?.set(run.files), 50).unref();
    });
    watcher.set(run.files);
  }
  if (o.log && gateway.statusAddress)
    o.log.write({
      type: 'info',
      message: `status on http://${gateway.statusAddress.host}:${gateway.statusAddress.port} (/ready, /status)`,
    });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      watcher?.close();
      o.log.write({ type: 'info', message: 'stopping: draining requests in flight' });
      await run.source?.stop();
      await gateway.close();
      await o.log.flush();
    })());
  const onSignal = () => void stop().then(() => process.exit(0));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', reload);
  if (worker) {
    process.on('message', (m: { type?: string }) => {
      if (m?.type === 'mtls-gate:reload') reload();
      if (m?.type === 'mtls-gate:stop') onSignal();
    });
    setInterval(() => report(gateway), 2000).unref();
    report(gateway);
  }
  return { addresses: gateway.addresses, statusAddress: gateway.statusAddress, stop };
}

/** The primary of `--workers N`: forks, watches, forwards reloads, serves status, restarts a worker that died. */
async function servePrimary(o: ServeOptions): Promise<Serving> {
  // Validated here first: a broken file at start is an error, not N crashing workers.
  const first = await load(o);
  // Every worker derives its ticket keys from this secret and its SSL objects: a session made with
  // one worker resumes with another, and across a reload that left the SSL objects alone.
  const secret = process.env.MTLS_GATE_TICKET_SECRET ?? randomBytes(32).toString('base64');
  const statuses = new Map<number, GatewayStatus & { pid: number }>();
  const workerMetrics = new Map<number, Record<string, number> | undefined>();
  let stopping = false;
  const fork = (): Worker => {
    const w = cluster.fork({ MTLS_GATE_TICKET_SECRET: secret });
    w.on('message', (m: { type?: string; pid: number; status: GatewayStatus; metrics?: Record<string, number> }) => {
      if (m?.type === 'mtls-gate:status') {
        statuses.set(w.id, { pid: m.pid, ...m.status });
        workerMetrics.set(w.id, m.metrics);
      }
    });
    w.on('exit', (code, signal) => {
      statuses.delete(w.id);
      workerMetrics.delete(w.id);
      // Exit code 0 is a worker that was told to stop (a terminal's Ctrl-C reaches workers too).
      if (stopping || code === 0) return;
      o.log.write({ type: 'warning', message: `worker ${w.process.pid} exited (${signal ?? code}); starting another` });
      fork();
    });
    return w;
  };
  const online = Array.from({ length: o.workers }, fork).map(
    (w) =>
      new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          if (statuses.has(w.id)) {
            clearInterval(t);
            resolve();
          }
        }, 20);
        w.once('exit', () => {
          clearInterval(t);
          reject(new Error('a worker exited before serving'));
        });
      }),
  );
  await Promise.all(online);
  const files = { list: first.files };
  const reloadAll = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.send({ type: 'mtls-gate:reload' });
    // Learn the referenced files as they are now.
    void load(o).then(
      (l) => {
        files.list = l.files;
        watcher.set(l.files);
      },
      () => {},
    );
  };
  const watcher = watchFiles(reloadAll);
  if (!o.etcd) watcher.set(files.list);
  const all = () => [...statuses.values()];
  const statusAt = o.status ?? (first.config as { status?: { host?: string; port: number } }).status;
  const statusServer = statusAt
    ? await serveStatus(statusAt, {
        ready: () => all().length === o.workers && all().every((s) => s.ready),
        body: () => ({ workers: all(), ready: all().length === o.workers && all().every((s) => s.ready) }),
        // The workers' counters, summed (each reports every 2 s).
        metrics: () => renderMetrics(mergeMetrics([...workerMetrics.values()])),
      })
    : undefined;
  if (statusServer)
    o.log.write({
      type: 'info',
      message: `status on http://${statusServer.address.host}:${statusServer.address.port} (/ready, /status)`,
    });
  const stop = async () => {
    stopping = true;
    watcher.close();
    o.log.write({ type: 'info', message: 'stopping: draining the workers' });
    await Promise.all(
      Object.values(cluster.workers ?? {}).map(
        (w) =>
          new Promise<void>((resolve) => {
            if (!w || w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.send({ type: 'mtls-gate:stop' });
          }),
      ),
    );
    await statusServer?.close();
    await o.log.flush();
  };
  let stopped: Promise<void> | undefined;
  const onSignal = () => void (stopped ??= stop()).then(() => process.exit(0));
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', reloadAll);
  const addresses = all()[0]?.listeners ?? [];
  return {
    addresses: addresses.map((u) => {
      const url = new URL(u);
      return { host: url.hostname, port: Number(url.port), tls: url.protocol === 'https:' };
    }),
    statusAddress: statusServer?.address,
    stop: () => (stopped ??= stop()),
  };
}
