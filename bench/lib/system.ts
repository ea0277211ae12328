// The Node systems of the benchmark, each serving GET /v1/json over HTTPS with client certificates
// requested (a missing or bad one: 400 and close, as nginx and APISIX do):
//   gate:        the `mtls-gate serve` command's own code serving the bundled config
//                (examples/mtls-auth-app/gateway.yaml: HTTPS with h2 and HTTP/1.1 by ALPN, rejects
//                logged to a file as the command logs them); with storeSize > 1, a store + guard +
//                router composed by hand (the large-store scenarios)
//   node-proxy:  bare node:https with requestCert, forwarding with a keep-alive http.Agent (no library)
//   node-direct: bare node:https with requestCert answering the document itself (the ceiling)
//
//   node --import tsx bench/lib/system.ts <config.json>
// Prints one JSON line when listening: { port, pid, storeBuildMs?, sniLookupNs? }.

import { constants } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SLIDESHOW } from '../../examples/mtls-auth-app/httpbin.js';

// The built library (npm run build), as users run it; a non-literal specifier keeps type-checking
// independent of the build, the types come from the source.
// MTLS_GATE_DIST=<dir> runs another build (A/B comparisons of the gate).
const entry: string = process.env.MTLS_GATE_DIST
  ? pathToFileURL(`${process.env.MTLS_GATE_DIST}/index.js`).href
  : '../../dist/index.js';
const { createRouter, createSslStore, mtlsGuard } = (await import(entry)) as typeof import('../../src/index.js');
const dist = process.env.MTLS_GATE_DIST
  ? pathToFileURL(`${process.env.MTLS_GATE_DIST}/`).href
  : new URL('../../dist/', import.meta.url).href;

export interface SystemConfig {
  system: 'gate' | 'node-proxy' | 'node-direct';
  cert: string;
  key: string;
  ca: string;
  servername: string;
  upstream: string;
  /** Offer TLS session tickets (the resumption scenario). */
  tickets: boolean;
  /**
   * This many SSL objects, `store-<i>.bench.test` for i >= 1 (server certificates from `storeCerts`): for the gate a
   * store (and a service for any host), for the baselines plain TLS contexts by SNI.
   */
  storeSize?: number;
  storeCerts?: { cert: string; key: string }[];
}

const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as SystemConfig;
const document = Buffer.from(`${JSON.stringify(SLIDESHOW, null, 2)}\n`);
const extra: Record<string, number> = {};
let server: https.Server | undefined;

if (cfg.system === 'gate' && (cfg.storeSize ?? 1) <= 1) {
  // As users run it: the command's serve() from the build, the bundled gateway.yaml, the
  // certificates and upstream through its ${VAR}s, the listener through --listen.
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-gate-'));
  writeFileSync(join(dir, 'server.crt'), cfg.cert);
  writeFileSync(join(dir, 'server.key'), cfg.key);
  writeFileSync(join(dir, 'ca.crt'), cfg.ca);
  Object.assign(process.env, { MTLS_CERTS: dir, MTLS_HOST: cfg.servername, MTLS_UPSTREAM: cfg.upstream });
  const { serve } = (await import(`${dist}cli/serve.js`)) as typeof import('../../src/cli/serve.js');
  const { createLog } = (await import(`${dist}cli/log.js`)) as typeof import('../../src/cli/log.js');
  const log = createLog('human', createWriteStream(join(dir, 'gate.log')));
  const config = fileURLToPath(new URL('../../examples/mtls-auth-app/gateway.yaml', import.meta.url));
  const serving = await serve({
    config,
    workers: 1,
    listen: [{ host: '127.0.0.1', port: 0, sessionTickets: cfg.tickets }],
    log,
  });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  process.stdout.write(`${JSON.stringify({ port: serving.addresses[0]!.port, pid: process.pid })}\n`);
} else if (cfg.system === 'gate') {
  const store = createSslStore();
  const size = cfg.storeSize ?? 1;
  const t = performance.now();
  store.set({ id: 'bench', cert: cfg.cert, key: cfg.key, snis: [cfg.servername], client: { ca: cfg.ca } });
  for (let i = 1; i < size; i++) {
    const c = cfg.storeCerts![i % cfg.storeCerts!.length]!;
    store.set({ id: `store-${i}`, cert: c.cert, key: c.key, snis: [`store-${i}.bench.test`], client: { ca: cfg.ca } });
  }
  if (size > 1) {
    extra.storeBuildMs = performance.now() - t;
    // What every handshake pays to find its object: the store's SNI lookup, random names.
    const names = Array.from({ length: 4096 }, (_, i) =>
      i % 2
        ? `store-${1 + Math.floor(Math.random() * (size - 1))}.bench.test`
        : `STORE-${1 + Math.floor(Math.random() * (size - 1))}.Bench.Test.`,
    );
    let found = 0;
    const t0 = performance.now();
    for (let i = 0; i < 200_000; i++) if (store.match(names[i & 4095]!)) found++;
    extra.sniLookupNs = ((performance.now() - t0) * 1e6) / 200_000;
    if (found !== 200_000) throw new Error('SNI lookup missed');
  }
  const guard = mtlsGuard({ store, page: 'apisix' });
  const router = createRouter({
    page: 'apisix',
    services: [
      {
        name: 'mtls-auth-app',
        pathPrefix: '/v1',
        protocols: ['https'],
        // The large store's objects all route to the same service.
        ...(size > 1 ? {} : { hosts: [cfg.servername] }),
        upstream: cfg.upstream,
        routes: [{ name: 'json', path: '/json', pathType: 'exact', methods: ['GET'] }],
      },
    ],
  });
  // HTTP/1.1 only, like the baselines (no h2 on a node:https server).
  server = store.attach(
    https.createServer(
      { ...store.tlsOptions({ sessionTickets: cfg.tickets }), ALPNProtocols: ['http/1.1'] },
      (req, res) => guard(req, res, () => router(req, res)),
    ),
  );
} else {
  const tlsOptions = {
    cert: cfg.cert,
    key: cfg.key,
    ca: cfg.ca,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
    secureOptions: cfg.tickets ? 0 : constants.SSL_OP_NO_TICKET,
    ...baselineStore(),
  };
  const reject = (res: http.ServerResponse) => {
    res.writeHead(400, { connection: 'close', 'content-type': 'text/html', 'content-length': 11 });
    res.end('bad request');
  };
  const notFound = (res: http.ServerResponse) => {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
  };
  if (cfg.system === 'node-direct') {
    server = https.createServer(tlsOptions, (req, res) => {
      if (!(req.socket as TLSSocket).authorized) return reject(res);
      if (req.url !== '/v1/json' || req.method !== 'GET') return notFound(res);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': document.length });
      res.end(document);
    });
  } else {
    const up = new URL(cfg.upstream);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const hop = new Set([
      'connection',
      'keep-alive',
      'proxy-connection',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
    ]);
    server = https.createServer(tlsOptions, (req, res) => {
      const sock = req.socket as TLSSocket;
      if (!sock.authorized) return reject(res);
      if (req.url !== '/v1/json' || req.method !== 'GET') return notFound(res);
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!hop.has(k)) headers[k] = v;
      headers['x-forwarded-for'] = sock.remoteAddress;
      const p = http.request(
        { host: up.hostname, port: up.port, path: '/json', method: 'GET', headers, agent },
        (r) => {
          const out: http.OutgoingHttpHeaders = {};
          for (const [k, v] of Object.entries(r.headers)) if (!hop.has(k)) out[k] = v;
          res.writeHead(r.statusCode!, out);
          r.pipe(res);
        },
      );
      p.on('error', () => {
        res.writeHead(502, { 'content-length': 0 });
        res.end();
      });
      p.end();
    });
  }
  server.keepAliveTimeout = 60_000;
}
/**
 * With `storeSize` a baseline serves N - 1 more names, `store-<i>.bench.test`, each with its own
 * plain TLS context (certificate, key, client CA), picked by SNI: what Node itself pays for many
 * contexts, to compare with the gate's store (bench/ab.ts node-direct@store10000 ...).
 */
function baselineStore(): {
  SNICallback?: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
} {
  const size = cfg.storeSize ?? 1;
  if (size <= 1) return {};
  const contexts = new Map<string, SecureContext>();
  for (let i = 1; i < size; i++) {
    const c = cfg.storeCerts![i % cfg.storeCerts!.length]!;
    contexts.set(`store-${i}.bench.test`, createSecureContext({ cert: c.cert, key: c.key, ca: cfg.ca }));
  }
  return { SNICallback: (name, cb) => cb(null, contexts.get(name.toLowerCase())) };
}

process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
if (server)
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(
      `${JSON.stringify({ port: (server.address() as AddressInfo).port, pid: process.pid, ...extra })}\n`,
    ),
  );
