#!/usr/bin/env node
import cluster from 'node:cluster';
/**
 * The `mtls-gate` command:
 *
 * ```
 * mtls-gate serve    --config FILE [--workers N] [--listen HOST:PORT]... [--status HOST:PORT] [--log-format human|json] [--access-log json|common|off]
 * mtls-gate validate --config FILE
 * mtls-gate schema   (prints the JSON Schema of config files)
 * ```
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import { configJsonSchema, validateConfig } from '../config/schema.js';
import { MtlsGateConfigError } from '../errors.js';
import { createLog, type LogFormat } from './log.js';
import { type Serving, serve } from './serve.js';

const USAGE = `usage:
  mtls-gate serve    --config FILE [--workers N] [--listen HOST:PORT]... [--status HOST:PORT] [--log-format human|json] [--access-log json|common|off]
  mtls-gate serve    --etcd URL[,URL...] [--prefix /mtls-gate] --listen HOST:PORT [--config SETTINGS] [--snapshot FILE] [--etcd-timeout MS] ...
  mtls-gate validate --config FILE
  mtls-gate etcd apply  --config FILE --etcd URL [--prefix P] [--prune]
  mtls-gate etcd put    ssl|service FILE.json --etcd URL [--prefix P] [--if-revision N]
  mtls-gate etcd delete ssl|service ID --etcd URL [--prefix P] [--if-revision N]
  mtls-gate schema
`;

import { UsageError } from './usage.js';

function address(v: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new UsageError(`${flag}: expected HOST:PORT (127.0.0.1:9443, [::1]:9443), received ${JSON.stringify(v)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** `--if-revision N`: a decimal revision (0 = the key must not exist). */
function ifRevision(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v))
    throw new UsageError(
      `--if-revision: expected a revision number (0 = the key must not exist), received ${JSON.stringify(v)}`,
    );
  return Number(v);
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

/** Prints a configuration error with every issue and its path. */
function printConfigError(err: unknown, write: (line: string) => void): void {
  if (err instanceof MtlsGateConfigError) {
    const n = err.issues.length;
    write(`${n} problem${n === 1 ? '' : 's'}:`);
    for (const i of err.issues) write(`  ${i.field}: ${i.message} [${i.code}]`);
  } else {
    write(`error: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** Runs the command with `argv` (without node and the script); resolves to the exit code, or to a running `serve`. */
export async function main(argv: string[]): Promise<number | Serving> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      workers: { type: 'string', default: '1' },
      listen: { type: 'string', multiple: true },
      status: { type: 'string' },
      'log-format': { type: 'string', default: 'human' },
      'access-log': { type: 'string' },
      etcd: { type: 'string' },
      prefix: { type: 'string', default: '/mtls-gate' },
      snapshot: { type: 'string' },
      'etcd-timeout': { type: 'string', default: '10000' },
      prune: { type: 'boolean', default: false },
      'if-revision': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  if (values.version) {
    console.log(version());
    return 0;
  }
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (command !== 'serve' && command !== 'validate' && command !== 'etcd')
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const prefix = values.prefix!;
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix) || prefix.length > 200)
    throw new UsageError(
      `--prefix: expected a key prefix such as /mtls-gate (no trailing /), received ${JSON.stringify(prefix)}`,
    );
  const endpoints = values.etcd?.split(',').map((u) => u.trim());
  for (const u of endpoints ?? [])
    if (!/^https?:\/\/[^/\s]+$/.test(u))
      throw new UsageError(`--etcd: expected http://HOST:PORT[,...], received ${JSON.stringify(u)}`);
  if (command === 'etcd') {
    if (!endpoints) throw new UsageError('--etcd URL is required');
    try {
      const { etcdCommand } = await import('./etcd.js');
      const out = await etcdCommand(positionals.slice(1), {
        endpoints,
        prefix,
        config: values.config,
        prune: values.prune!,
        ifRevision: ifRevision(values['if-revision']),
      });
      console.log(out);
      return 0;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      printConfigError(err, (l) => console.error(l));
      return 1;
    }
  }
  if (!values.config && !(command === 'serve' && endpoints)) throw new UsageError('--config FILE is required');
  if (command === 'validate') {
    try {
      const loaded = await loadConfigFile(values.config!);
      const config = validateConfig(loaded.config);
      const routes = (config.services ?? []).reduce((n, s) => n + s.routes.length, 0);
      const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
      console.log(
        `${values.config}: valid (${n((config.ssls ?? []).length, 'SSL object')}, ${n((config.services ?? []).length, 'service')}, ${n(routes, 'route')})`,
      );
      return 0;
    } catch (err) {
      printConfigError(err, (l) => console.error(l));
      return 1;
    }
  }
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw new UsageError(`--workers: expected 1 to 64, received ${JSON.stringify(values.workers)}`);
  const format = values['log-format'];
  if (format !== 'human' && format !== 'json')
    throw new UsageError(`--log-format: expected human or json, received ${JSON.stringify(format)}`);
  const log = createLog(format as LogFormat);
  const accessLog = values['access-log'];
  if (accessLog !== undefined && accessLog !== 'json' && accessLog !== 'common' && accessLog !== 'off')
    throw new UsageError(`--access-log: expected json, common or off, received ${JSON.stringify(accessLog)}`);
  const listen = values.listen?.map((v) => address(v, '--listen'));
  const status = values.status === undefined ? undefined : address(values.status, '--status');
  const etcdTimeout = Number(values['etcd-timeout']);
  if (!Number.isInteger(etcdTimeout) || etcdTimeout < 0)
    throw new UsageError(`--etcd-timeout: expected milliseconds, received ${JSON.stringify(values['etcd-timeout'])}`);
  const etcd = endpoints ? { endpoints, prefix, snapshot: values.snapshot, startTimeoutMs: etcdTimeout } : undefined;
  const what = etcd ? `etcd ${endpoints!.join(',')}${prefix}` : values.config;
  if (cluster.isPrimary)
    log.write({
      type: 'info',
      message: `mtls-gate ${version()} serving ${what}${workers > 1 ? ` with ${workers} workers` : ''}`,
    });
  try {
    return await serve({
      config: values.config,
      workers,
      listen,
      status,
      log,
      etcd,
      ...(accessLog ? { accessLog: accessLog as 'json' | 'common' | 'off' } : {}),
    });
  } catch (err) {
    printConfigError(err, (l) => log.write({ type: 'error', message: l }));
    await log.flush();
    return 1;
  }
}

// Run when executed (the bin), not when imported (npm start, tests).
// npm's bin is a symlink: compare real paths.
const invoked = (() => {
  try {
    return process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
})();
if (invoked || process.env.MTLS_GATE_CLI === '1') {
  main(process.argv.slice(2)).then(
    (result) => {
      if (typeof result === 'number') process.exitCode = result;
    },
    (err: unknown) => {
      process.stderr.write(
        err instanceof UsageError
          ? `mtls-gate: ${err.message}\n${USAGE}`
          : `mtls-gate: ${(err as Error)?.stack ?? String(err)}\n`,
      );
      process.exitCode = 2;
    },
  );
}
