// The guide's service, built from mtls-gate: an SSL object with the guide's certificates and client
// CA, the mtls-auth-app service (prefix /v1, host mtls.httpbin.org, HTTPS, route json = GET /json
// exact, prefix stripped), HTTP/2 and HTTP/1.1 on one port.
import http2 from 'node:http2';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRouter, createSslStore, mtlsGuard, type Router, type SslStore } from '../../src/index.js';
import { createTestPki } from '../../src/testing/index.js';
import { startHttpbin } from './httpbin.js';

export interface AppOptions {
  port: number;
  host: string;
  certs: string;
  /** A real upstream; without it an httpbin-compatible one starts on loopback. */
  upstream?: string;
  log?: (line: string) => void;
}

export interface App {
  port: number;
  upstream: string;
  store: SslStore;
  router: Router;
  close(): Promise<void>;
}

/** Writes ca.crt, server.crt/key and client.crt/key into `dir` (the guide's file names) unless ca.crt, server.crt and server.key exist. */
export async function ensureCertificates(dir: string, host: string): Promise<boolean> {
  if (['ca.crt', 'server.crt', 'server.key'].every((f) => existsSync(join(dir, f)))) return false;
  mkdirSync(dir, { recursive: true });
  // The guide's shape (an RSA CA "OU=web, CN=private_ca", server CN = the host, client OU=web),
  // minted in-process; v3 certificates valid for a year.
  const pki = await createTestPki({ keyType: 'rsa', serverNames: [host], name: 'mtls-auth-app' });
  const year = new Date(Date.now() + 365 * 86400_000);
  const ca = await pki.createRoot({ subject: 'OU=web, CN=private_ca', keyType: 'rsa', notAfter: year });
  const server = await ca.issue({ subject: `CN=${host}`, san: { dns: [host] }, notAfter: year });
  const client = await ca.issue({ subject: 'OU=web, CN=mtls-auth-app client', notAfter: year });
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  writeFileSync(join(dir, 'server.crt'), server.cert);
  writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
  writeFileSync(join(dir, 'client.crt'), client.cert);
  writeFileSync(join(dir, 'client.key'), client.key, { mode: 0o600 });
  return true;
}

export async function startApp(o: AppOptions): Promise<App> {
  const log = o.log ?? (() => {});
  const read = (f: string) => readFileSync(join(o.certs, f), 'utf8');
  const embedded = o.upstream ? undefined : await startHttpbin();
  const upstream = o.upstream ?? embedded!.url;

  const store = createSslStore();
  // snis come from the server certificate (its DNS SANs, else its CN: the guide's v1 certificate).
  store.set({ id: 'mtls-auth-app', cert: read('server.crt'), key: read('server.key'), client: { ca: read('ca.crt') } });
  const guard = mtlsGuard({ store, page: 'apisix', onReject: (i) => log(`400 ${i.reason} sni=${i.servername ?? '-'} host=${i.host ?? '-'}: ${i.detail}`) });
  const router = createRouter({
    page: 'apisix',
    ...(o.port ? { httpsPort: o.port } : {}),
    services: [
      {
        name: 'mtls-auth-app',
        pathPrefix: '/v1',
        protocols: ['https'],
        hosts: [o.host],
        upstream: upstream.startsWith('https:') ? { ...urlUpstream(upstream), passHost: 'node' } : upstream,
        routes: [{ name: 'json', path: '/json', pathType: 'exact', methods: ['GET'] }],
      },
    ],
    onProxyError: (i) => log(`${i.status} ${i.kind} ${i.upstream ?? ''}`),
  });
  const server = store.attach(
    http2.createSecureServer(store.tlsOptions(), (req, res) => {
      res.setHeader('server', 'mtls-gate');
      guard(req, res, () => router(req, res));
    }),
  );
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s: import('node:net').Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    upstream,
    store,
    router,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await router.close();
      if (embedded) {
        embedded.server.closeAllConnections();
        await new Promise<void>((resolve) => embedded.server.close(() => resolve()));
      }
    },
  };
}

/** A real https upstream given as URL: the Host sent is the upstream's own (httpbin.org), as API7 Cloud does for a URL. */
function urlUpstream(url: string) {
  const u = new URL(url);
  return { scheme: 'https' as const, nodes: [{ host: u.hostname, port: u.port ? Number(u.port) : 443 }], pathPrefix: u.pathname === '/' ? '' : u.pathname };
}
