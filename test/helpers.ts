import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import { createSslStore, mtlsGuard, getClientIdentity, type GuardOptions, type SslStore } from '../src/index.js';
import { testRequest, type TestRequestOptions, type TestResponse } from '../src/testing/index.js';

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
  const server = store.attach(http2.createSecureServer(store.tlsOptions(tlsOpts), (req, res) => {
    guard(req, res, () => {
      const id = getClientIdentity(req);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, subject: id?.subject ?? null, sslId: id?.sslId ?? null, path: req.url }));
    });
  }));
  const sockets = new Set<import('node:net').Socket>();
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    store,
    rejects,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
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
