import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { describe } from '../internal/validate.js';
import type { SslStore, TlsOptionsOptions } from '../ssl/store.js';

/**
 * A Node request listener: a plain `(req, res)` handler, an Express app, or `koaApp.callback()`.
 * On an `h2` server, HTTP/2 requests arrive as the compatibility API's `Http2ServerRequest` and
 * `Http2ServerResponse`, which mtls-gate's guard and router take as well.
 */
export type TestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Something with a Koa-style `callback()` returning a request listener. */
export interface CallbackApp {
  callback(): TestHandler;
}

/** HTTP versions the test server speaks. */
export type TestProtocol = 'h2' | 'http1' | 'auto';

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /** The store whose SSL objects answer the handshakes (its `tlsOptions()` and `attach()` are used). */
  store: SslStore;
  /**
   * `h2`: HTTP/2 with HTTP/1.1 fallback (ALPN). `http1`: HTTP/1.1 only (node:https).
   * `auto` (default): `http1` for Express apps (Express does not run on HTTP/2's compatibility
   * API), `h2` for everything else.
   */
  protocol?: TestProtocol;
  /** Passed to `store.tlsOptions()`, e.g. `{ sessionTickets: true }`. */
  tls?: TlsOptionsOptions;
}

/** A server started by {@link startTestServer}. */
export interface TestServer {
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** `https://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly protocol: 'h2' | 'http1';
  readonly server: tls.Server;
  /** Open TLS connections right now. */
  readonly connections: number;
  /** Closes the listener and destroys open connections. */
  close(): Promise<void>;
}

const OPTIONS = new Set(['store', 'protocol', 'tls']);

function isExpressApp(app: unknown): boolean {
  const a = app as { handle?: unknown; set?: unknown; settings?: unknown };
  return typeof a.handle === 'function' && typeof a.set === 'function' && typeof a.settings === 'object';
}

/**
 * Starts `app` behind the store's TLS on `127.0.0.1`, on a free port, for tests. The handshake
 * asks for a client certificate and picks the SSL object by SNI exactly as in production; what
 * the app does with the request (usually: the guard, then your handlers) is up to the app.
 *
 * @example
 * ```ts
 * import { createSslStore, mtlsGuard, getClientIdentity } from 'mtls-gate';
 * import { createTestPki, startTestServer, testRequest } from 'mtls-gate/testing';
 *
 * const pki = await createTestPki({ serverNames: ['api.test'] });
 * const store = createSslStore();
 * store.set({ id: 'api', cert: pki.server.chain, key: pki.server.key, snis: ['api.test'], client: { ca: pki.root.cert } });
 * const guard = mtlsGuard({ store });
 * const server = await startTestServer((req, res) => guard(req, res, () => res.end(getClientIdentity(req)?.subject)), { store });
 * const reply = await testRequest({ port: server.port, servername: 'api.test', client: await pki.client('valid') });
 * console.log(reply.status, reply.body);
 * await server.close();
 * ```
 */
export async function startTestServer(app: TestHandler | CallbackApp, options: TestServerOptions): Promise<TestServer> {
  if (options === null || typeof options !== 'object') {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'options',
      `expected an object, received ${describe(options)}`,
    );
  }
  for (const k of Object.keys(options)) {
    if (!OPTIONS.has(k)) throw new MtlsGateConfigError(ErrorCodes.UNKNOWN_FIELD, k, 'unknown option');
  }
  const handler = typeof (app as CallbackApp).callback === 'function' ? (app as CallbackApp).callback() : app;
  if (typeof handler !== 'function') {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'app',
      `expected a request listener or an app with callback(), received ${describe(app)}`,
    );
  }
  const requested = options.protocol ?? 'auto';
  if (requested !== 'auto' && requested !== 'h2' && requested !== 'http1') {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'protocol',
      `expected "auto", "h2" or "http1", received ${describe(requested)}`,
    );
  }
  const protocol = requested === 'auto' ? (isExpressApp(handler) ? 'http1' : 'h2') : requested;
  const { store } = options;
  const tlsOptions = store.tlsOptions(options.tls);
  const listener = handler as (req: IncomingMessage, res: ServerResponse) => void;
  const server: tls.Server =
    protocol === 'h2'
      ? http2.createSecureServer(
          { ...tlsOptions, allowHTTP1: true },
          listener as unknown as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
        )
      : https.createServer(tlsOptions, listener);
  store.attach(server);

  const sockets = new Set<Socket>();
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    origin: `https://127.0.0.1:${port}`,
    protocol,
    server,
    get connections() {
      return sockets.size;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
