import type http from 'node:http';
import type { ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type tls from 'node:tls';
import {
  createRouter,
  createSslStore,
  type GuardOptions,
  getClientIdentity,
  mtlsGuard,
  type ProxyErrorInfo,
  type Router,
  type ServiceConfig,
  type SslStore,
} from '../src/index.js';
import { type TestPki, type TestRequestOptions, type TestResponse, testRequest } from '../src/testing/index.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface TestServer {
  port: number;
  store: SslStore;
  rejects: { reason: string; sslId: string | undefined }[];
  close(): Promise<void>;
}

/** An HTTPS (HTTP/2 + HTTP/1.1) server on 127.0.0.1:0 with the guard in front of a handler that echoes the identity. */
export async function startGuarded(
  store: SslStore,
  guardOptions: Partial<GuardOptions> = {},
  tlsOpts: Parameters<SslStore['tlsOptions']>[0] = {},
): Promise<TestServer> {
  const rejects: TestServer['rejects'] = [];
  const guard = mtlsGuard({
    store,
    onReject: (i) => rejects.push({ reason: i.reason, sslId: i.sslId }),
    ...guardOptions,
  });
  const server = store.attach(
    http2.createSecureServer(store.tlsOptions(tlsOpts), (req, res) => {
      guard(req, res, () => {
        const id = getClientIdentity(req);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ok: true, subject: id?.subject ?? null, sslId: id?.sslId ?? null, path: req.url }));
      });
    }),
  );
  const listening = await listen(server);
  return { port: listening.port, store, rejects, close: listening.close };
}

export interface Listening {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0; close() destroys open connections (handshaking ones too) first. */
export async function listen(server: http.Server | http2.Http2SecureServer | tls.Server): Promise<Listening> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Gateway {
  port: number;
  server: http2.Http2SecureServer;
  router: Router;
  /** What the router's onProxyError saw. */
  errors: { url: string; info: ProxyErrorInfo }[];
  /** Open connections on the gateway's server. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

/** store + guard + router on an HTTP/2 server (HTTP/1.1 fallback) for `gw.test`, attached with the default limits. */
export async function startGateway(pki: TestPki, services: ServiceConfig[]): Promise<Gateway> {
  const store = createSslStore();
  store.set({
    id: 'gw',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['gw.test'],
    client: { ca: pki.root.cert },
  });
  const guard = mtlsGuard({ store });
  const errors: Gateway['errors'] = [];
  const router = createRouter({ services, onProxyError: (info, req) => errors.push({ url: req.url ?? '', info }) });
  const server = store.attach(
    http2.createSecureServer(store.tlsOptions(), (req, res) => guard(req, res, () => router(req, res))),
  );
  const listening = await listen(server);
  return {
    port: listening.port,
    server,
    router,
    errors,
    connections: () => new Promise((r, j) => server.getConnections((e, n) => (e ? j(e) : r(n)))),
    close: async () => {
      await listening.close();
      await router.close();
    },
  };
}

export type RequestOptions = Omit<TestRequestOptions, 'protocol'>;

/** One HTTP/1.1 request over a fresh TLS connection (the product's test client). */
export function request1(o: RequestOptions): Promise<TestResponse> {
  return testRequest({ ...o, protocol: 'http1' });
}

/** One HTTP/2 request over a fresh session. */
export function request2(o: RequestOptions): Promise<TestResponse> {
  return testRequest({ ...o, protocol: 'h2' });
}

export { createSslStore, type ServerResponse };
