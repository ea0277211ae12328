// nginx for the benchmark: Debian's package (installed on demand when running as root), configs
// generated into a temporary directory, one worker, pinned with taskset.
//   - the system under test: APISIX's mTLS policy (`ssl_verify_client optional`, 400 when
//     `$ssl_client_verify` is not SUCCESS), `location = /v1/json` proxied to the upstream over an
//     upstream block with keepalive;
//   - the cheap upstream (on the load core): the httpbin /json document from a file.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnPinned, withChildren } from './run.js';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];

function locate(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/**
 * The nginx binary, installing Debian's nginx-light (or nginx) with apt-get when missing and
 * running as root. Returns the path and version, or the reason it is not available.
 */
export function findNginx(log: (s: string) => void): { bin: string; version: string } | { skipped: string } {
  let bin = locate();
  if (!bin && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    log('nginx not found: installing nginx-light with apt-get (as root) ...');
    // policy-rc.d 101 keeps the package's postinst from starting a system nginx on port 80.
    const policy = '/usr/sbin/policy-rc.d';
    const ownPolicy = !existsSync(policy);
    if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      for (const pkg of ['nginx-light', 'nginx']) {
        const r = spawnSync('apt-get', ['install', '-y', '-q', pkg], {
          env,
          stdio: ['ignore', 'ignore', 'pipe'],
          timeout: 240_000,
        });
        if (r.status !== 0) {
          spawnSync('apt-get', ['update', '-q'], { env, stdio: 'ignore', timeout: 120_000 });
          spawnSync('apt-get', ['install', '-y', '-q', pkg], {
            env,
            stdio: ['ignore', 'ignore', 'pipe'],
            timeout: 240_000,
          });
        }
        bin = locate();
        if (bin) break;
      }
    } finally {
      if (ownPolicy) unlinkSync(policy);
    }
  }
  if (!bin)
    return {
      skipped: `nginx skipped: not installed${process.getuid?.() === 0 ? ' (apt-get install failed)' : ' (run as root to install it, or apt-get install nginx-light)'}`,
    };
  const v = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return { bin, version: (v.stderr || v.stdout).trim().replace(/^nginx version: /, '') };
}

/** A port free right now on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nginx did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface NginxProcess {
  port: number;
  /** Master and worker. */
  pids(): number[];
  stop(): Promise<void>;
}

const common = (dir: string) => `
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
`;

const httpCommon = (dir: string) => `
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
`;

async function start(bin: string, core: number, dir: string, conf: string, port: number): Promise<NginxProcess> {
  // The worker runs as nobody (the master as root): it must be able to enter the directory.
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const t = spawnSync(bin, ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], {
    encoding: 'utf8',
  });
  if (t.status !== 0) throw new Error(`nginx -t failed for ${dir}/nginx.conf: ${t.stderr}`);
  const child: ChildProcess = spawnPinned(core, bin, [
    '-p',
    dir,
    '-e',
    join(dir, 'error.log'),
    '-c',
    join(dir, 'nginx.conf'),
  ]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPort(port, 5000);
  return {
    port,
    pids: () => withChildren(child.pid!),
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    },
  };
}

/** The system under test, pinned to `core`. */
export async function startNginxGate(
  bin: string,
  core: number,
  o: { cert: string; key: string; ca: string; servername: string; upstreamPort: number; tickets: boolean },
): Promise<NginxProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-nginx-'));
  const port = await freePort();
  const conf = `${common(dir)}
http {
${httpCommon(dir)}
  upstream backend {
    server 127.0.0.1:${o.upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${o.servername};
    # nginx 1.22's default leaves TLS 1.3 out; Node negotiates 1.3.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate ${o.cert};
    ssl_certificate_key ${o.key};
    ssl_client_certificate ${o.ca};
    ssl_verify_client optional;
    ssl_session_tickets ${o.tickets ? 'on' : 'off'};
    if ($ssl_client_verify != SUCCESS) { return 400; }
    location = /v1/json {
      proxy_pass http://backend/json;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
    location / { return 404; }
  }
}
`;
  return start(bin, core, dir, conf, port);
}

/** The cheap upstream: the document from a file, keep-alive, pinned to `core`. */
export async function startNginxUpstream(bin: string, core: number, document: Buffer): Promise<NginxProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-upstream-'));
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www', 'json'), document);
  const port = await freePort();
  const conf = `${common(dir)}
http {
${httpCommon(dir)}
  open_file_cache max=16 inactive=3600s;
  open_file_cache_valid 3600s;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /json { root ${dir}/www; default_type application/json; etag off; }
  }
}
`;
  return start(bin, core, dir, conf, port);
}
