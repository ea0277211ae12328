import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { describe } from '../internal/validate.js';

/** A client certificate: a minted `TestCert`, or any PEM certificate (chain) and key. */
export interface ClientCertificate {
  /** The certificate alone; used when `chain` is absent. */
  cert: string;
  key: string;
  /** The certificate followed by intermediates, sent when present. */
  chain?: string;
}

/** Options of {@link testRequest}. */
export interface TestRequestOptions {
  /** Port on `address`. */
  port: number;
  /** Address to connect to. Default `127.0.0.1`. */
  address?: string;
  /** `http1` (default) or `h2`. */
  protocol?: 'http1' | 'h2';
  /** TLS SNI. Default none (an IP address sends no SNI). */
  servername?: string;
  /** The Host header (`:authority` on HTTP/2). Default `servername`, else `localhost`. */
  host?: string;
  method?: string;
  /** Path and query. Default `/`. */
  path?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Uint8Array;
  /** Client certificate to present; none when absent. */
  client?: ClientCertificate;
  /** CA to verify the server with. Default: the server is not verified (test servers use minted certificates). */
  ca?: string;
  /** TLS session to resume (the `session` of an earlier reply, HTTP/1.1). */
  session?: Buffer;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Gives up after this long. Default 10,000 ms. */
  timeoutMs?: number;
}

/** What {@link testRequest} returns. */
export interface TestResponse {
  status: number;
  /** Response headers, lower-case names (HTTP/2 pseudo-headers left out). */
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text. */
  body: string;
  /** The body as bytes. */
  raw: Buffer;
  /** The body parsed as JSON (throws when it is not JSON). */
  json<T = unknown>(): T;
  protocol: 'http1' | 'h2';
  /** Whether the TLS session was resumed. */
  reused: boolean;
  /** The TLS session to pass as `session` to resume it (HTTP/1.1; TLS 1.3 tickets arrive after the handshake). */
  session: Buffer | undefined;
}

const OPTIONS = new Set([
  'port',
  'address',
  'protocol',
  'servername',
  'host',
  'method',
  'path',
  'headers',
  'body',
  'client',
  'ca',
  'session',
  'minVersion',
  'maxVersion',
  'timeoutMs',
]);

function checkOptions(o: TestRequestOptions): void {
  if (o === null || typeof o !== 'object')
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'options', `expected an object, received ${describe(o)}`);
  for (const k of Object.keys(o))
    if (!OPTIONS.has(k)) throw new MtlsGateConfigError(ErrorCodes.UNKNOWN_FIELD, k, 'unknown option');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'port',
      `expected 1 to 65535, received ${describe(o.port)}`,
    );
  if (o.protocol !== undefined && o.protocol !== 'http1' && o.protocol !== 'h2') {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'protocol',
      `expected "http1" or "h2", received ${describe(o.protocol)}`,
    );
  }
  if (o.client !== undefined && (typeof o.client?.cert !== 'string' || typeof o.client.key !== 'string')) {
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'client', 'expected { cert, key } PEM strings');
  }
}

function tlsFields(o: TestRequestOptions) {
  return {
    servername: o.servername,
    rejectUnauthorized: o.ca !== undefined,
    ...(o.ca !== undefined ? { ca: o.ca } : {}),
    ...(o.client ? { cert: o.client.chain ?? o.client.cert, key: o.client.key } : {}),
    ...(o.minVersion ? { minVersion: o.minVersion } : {}),
    ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
  };
}

function reply(
  status: number,
  headers: IncomingHttpHeaders,
  raw: Buffer,
  protocol: 'http1' | 'h2',
  socket: TLSSocket | undefined,
  session: Buffer | undefined,
): TestResponse {
  const body = raw.toString('utf8');
  return {
    status,
    headers,
    body,
    raw,
    json: <T>() => JSON.parse(body) as T,
    protocol,
    reused: socket?.isSessionReused() ?? false,
    session: session ?? socket?.getSession(),
  };
}

function request1(o: TestRequestOptions): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const req = https.request(
      {
        host: o.address ?? '127.0.0.1',
        port: o.port,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        headers: { host: o.host ?? o.servername ?? 'localhost', ...o.headers },
        agent: false,
        ...tlsFields(o),
        ...(o.session ? { session: o.session } : {}),
        timeout: o.timeoutMs ?? 10_000,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve(
            reply(res.statusCode ?? 0, res.headers, Buffer.concat(chunks), 'http1', res.socket as TLSSocket, session),
          ),
        );
      },
    );
    req.on('socket', (s) => s.on('session', (sess: Buffer) => (session = sess)));
    req.on('timeout', () => req.destroy(new Error(`no response within ${o.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

function request2(o: TestRequestOptions): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const timeoutMs = o.timeoutMs ?? 10_000;
    const session = http2.connect(`https://${o.address ?? '127.0.0.1'}:${o.port}`, {
      ...tlsFields(o),
      ...(o.session ? { session: o.session } : {}),
    });
    const timer = setTimeout(() => session.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    session.on('error', fail);
    const stream = session.request({
      ':path': o.path ?? '/',
      ':method': o.method ?? 'GET',
      ':authority': o.host ?? o.servername ?? 'localhost',
      ...o.headers,
    });
    let status = 0;
    const headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) headers[k] = v as string;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', fail);
    stream.on('end', () => {
      clearTimeout(timer);
      const socket = session.socket as TLSSocket;
      const r = reply(status, headers, Buffer.concat(chunks), 'h2', socket, undefined);
      session.close();
      resolve(r);
    });
    stream.end(o.body);
  });
}

/**
 * One request over a new TLS connection, with or without a client certificate, over HTTP/1.1 or
 * HTTP/2; resolves with status, headers and body. Meant for tests against {@link startTestServer}
 * (or any TLS server on loopback): the server certificate is not verified unless `ca` is given.
 *
 * @example
 * ```ts
 * import { createTestPki, testRequest } from 'mtls-gate/testing';
 *
 * declare const port: number;
 * const pki = await createTestPki({ serverNames: ['api.test'] });
 * const ok = await testRequest({ port, servername: 'api.test', client: await pki.client('valid'), protocol: 'h2' });
 * const refused = await testRequest({ port, servername: 'api.test' });
 * console.log(ok.status, refused.status); // 200 400
 * ```
 */
export function testRequest(options: TestRequestOptions): Promise<TestResponse> {
  checkOptions(options);
  return options.protocol === 'h2' ? request2(options) : request1(options);
}
