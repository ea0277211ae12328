// The `mtls-gate` command as users run it: the built bin in a child process, a config file in a
// temp dir with its certificates, and a loopback upstream.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

export interface Cli {
  child: ChildProcess;
  output: string[];
  /** Resolves with the first output line matching `re` (already printed ones included). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
}

/** Starts `node dist/cli/main.js ...args`; stdout and stderr lines are collected. */
export function startCli(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Cli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  const onLine = (line: string) => {
    output.push(line);
    for (const w of [...waiters]) {
      const m = w.re.exec(line);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    output,
    exited,
    waitFor(re, timeoutMs = 15_000) {
      for (const line of output) {
        const m = re.exec(line);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolvePromise, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${output.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolvePromise(m);
          },
        });
        void exited.then(() => setTimeout(() => reject(new Error(`exited before ${re}:\n${output.join('\n')}`)), 50));
      });
    },
  };
}

/** Stops a CLI process (SIGTERM) and resolves with its exit code. */
export async function stopCli(cli: Cli): Promise<number | null> {
  if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGTERM');
  return cli.exited;
}

export interface Tenant {
  name: string;
  host: string;
  pki: TestPki;
  client: TestCert;
}

/**
 * A temp dir with two tenants' certificates (`a.test`, `b.test`, each its own CA) and an upstream that names itself.
 */
export async function fixture(): Promise<{
  dir: string;
  a: Tenant;
  b: Tenant;
  upstream: http.Server;
  upstreamUrl: string;
  write(name: string, text: string): string;
  cleanup(): Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-cli-'));
  const tenants: Tenant[] = [];
  for (const name of ['a', 'b']) {
    const host = `${name}.test`;
    const pki = await createTestPki({ serverNames: [host], name });
    writeFileSync(join(dir, `${name}-ca.crt`), pki.root.cert);
    writeFileSync(join(dir, `${name}-server.crt`), pki.server.chain);
    writeFileSync(join(dir, `${name}-server.key`), pki.server.key);
    tenants.push({ name, host, pki, client: await pki.client('valid') });
  }
  const upstream = http.createServer((req, res) => {
    const delay = /^\/slow\/(\d+)/.exec(req.url ?? '');
    const answer = () => res.end(JSON.stringify({ path: req.url, host: req.headers.host }));
    if (delay) setTimeout(answer, Number(delay[1]));
    else answer();
  });
  upstream.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  return {
    dir,
    a: tenants[0]!,
    b: tenants[1]!,
    upstream,
    upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    write(name, text) {
      const path = join(dir, name);
      // Written as editors save: a new file renamed over the old one.
      writeFileSync(`${path}.tmp`, text);
      rmSync(path, { force: true });
      writeFileSync(path, text);
      rmSync(`${path}.tmp`, { force: true });
      return path;
    },
    async cleanup() {
      upstream.closeAllConnections();
      await new Promise<void>((r) => upstream.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A gateway.yaml serving the given tenants, each at /t/<name>/*, with `extra` appended. */
export function gatewayYaml(tenants: string[], upstreamUrl: string, extra = ''): string {
  return [
    'listen:',
    '  - { host: 127.0.0.1, port: 0, sessionTickets: true }',
    'ssls:',
    ...tenants.flatMap((t) => [
      `  - id: ${t}`,
      `    cert: { file: ${t}-server.crt }`,
      `    key: { file: ${t}-server.key }`,
      `    snis: [${t}.test]`,
      `    client: { ca: { file: ${t}-ca.crt } }`,
    ]),
    'services:',
    ...tenants.flatMap((t) => [
      `  - name: ${t}`,
      `    hosts: [${t}.test]`,
      `    upstream: ${upstreamUrl}`,
      '    routes:',
      `      - { name: all, path: "/*" }`,
    ]),
    extra,
  ].join('\n');
}
