import https from 'node:https';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSslStore, mtlsGuard, getClientIdentity, type GuardOptions, type SslStore } from '../src/index.js';
import type { TestCert } from '../src/testing/index.js';

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

export interface RequestOptions {
  port: number;
  servername?: string;
  host?: string;
  path?: string;
  client?: TestCert;
  ca?: string;
  method?: string;
  headers?: Record<string, string>;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  session?: Buffer;
  agent?: https.Agent | false;
}

/** One HTTP/1.1 request over a fresh TLS connection (unless an agent is given). */
export function request1(o: RequestOptions): Promise<Reply & { session?: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const options: https.RequestOptions & { session?: Buffer } = {
        host: '127.0.0.1',
        port: o.port,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        servername: o.servername,
        headers: { host: o.host ?? o.servername ?? 'localhost', ...o.headers },
        rejectUnauthorized: false,
        agent: o.agent ?? false,
        maxVersion: o.maxVersion,
        session: o.session,
        ...(o.client ? { cert: o.client.chain, key: o.client.key } : {}),
    };
    const req = https.request(
      options,
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const sock = res.socket as import('node:tls').TLSSocket;
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('latin1'), session: session ?? sock.getSession?.(), reused: sock.isSessionReused?.() ?? false });
        });
      },
    );
    req.on('socket', (s) => s.on('session', (sess: Buffer) => (session = sess)));
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request over a fresh session. */
export function request2(o: RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${o.port}`, {
      servername: o.servername,
      rejectUnauthorized: false,
      ...(o.client ? { cert: o.client.chain, key: o.client.key } : {}),
    });
    session.on('error', reject);
    const stream = session.request({ ':path': o.path ?? '/', ':method': o.method ?? 'GET', ':authority': o.host ?? o.servername ?? 'localhost', ...o.headers });
    let headers: Reply['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h as Reply['headers']));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks).toString('latin1') });
    });
    stream.on('error', reject);
    stream.end();
  });
}

export { createSslStore, type ServerResponse };
