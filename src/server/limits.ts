import type { Http2SecureServer, Http2Session, ServerHttp2Stream } from 'node:http2';
import type tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { plainCopy } from '../internal/plain.js';
import { lazySchema, parse, type SchemaInput, z } from '../internal/schema.js';
import { describe, isPlainObject } from '../internal/validate.js';

// Node's timers take at most a signed 32-bit millisecond count (about 24.8 days).
const MAX_TIMEOUT = 2 ** 31 - 1;
const MAX_STREAMS = 2 ** 32 - 1;
const timeout = (description: string, dflt: number) =>
  z.number().int().min(0).max(MAX_TIMEOUT).optional().meta({ description, default: dflt });

/**
 * Per-connection limits a server applies to its clients (the schema: {@link ServerLimits} is its
 * type). Timeouts in milliseconds; 0 turns a timeout off.
 */
export const serverLimitsSchema = lazySchema(() =>
  z
    .strictObject({
      /**
       * The TLS handshake must finish within this time, counted from the TCP accept. Default 10,000 (Node's is 120 s,
       * long enough for a few thousand silent sockets to pile up).
       */
      handshakeTimeoutMs: timeout(
        'The TLS handshake must finish within this time, counted from the TCP accept.',
        10_000,
      ),
      /**
       * HTTP/1.1: the request line and headers must arrive within this time (408 after it). Default 60,000, nginx's
       * `client_header_timeout`.
       */
      headersTimeoutMs: timeout(
        'HTTP/1.1: the request line and headers must arrive within this time (408 after it).',
        60_000,
      ),
      /**
       * HTTP/1.1: the whole request, body included, must arrive within this time. Default 300,000 (Node's); 0 for big
       * streamed uploads.
       */
      requestTimeoutMs: timeout('HTTP/1.1: the whole request, body included, must arrive within this time.', 300_000),
      /**
       * How long a connection with no request in progress stays open (HTTP/1.1 keep-alive; an idle HTTP/2 session gets a
       * GOAWAY). Default 5,000.
       */
      keepAliveTimeoutMs: timeout('How long a connection with no request in progress stays open.', 5_000),
      /**
       * Largest request head in bytes (HTTP/1.1: 431 beyond it; HTTP/2: SETTINGS_MAX_HEADER_LIST_SIZE). Default 16,384.
       * Below 1 KiB not even a browser's request head fits.
       */
      maxHeaderSize: z
        .number()
        .int()
        .min(1024)
        .max(MAX_STREAMS)
        .optional()
        .meta({ description: 'Largest request head in bytes.', default: 16_384 }),
      /** HTTP/2: streams one session may have open at once. Default 128 (nginx's); Node's is unlimited. */
      maxConcurrentStreams: z
        .number()
        .int()
        .min(1)
        .max(MAX_STREAMS)
        .optional()
        .meta({ description: 'HTTP/2: streams one session may have open at once.', default: 128 }),
      /**
       * Connections the server accepts at once; more are closed on accept. Default none: the timeouts reclaim a flood's
       * connections, a cap would refuse well-behaved clients too.
       */
      maxConnections: z
        .number()
        .int()
        .min(1)
        .max(Number.MAX_SAFE_INTEGER)
        .optional()
        .meta({ description: 'Connections the server accepts at once. Default: no cap.' }),
    })
    .check((ctx) => {
      // Node's own rule (http.createServer throws ERR_OUT_OF_RANGE): headers arrive within the request.
      const l = ctx.value;
      const request = l.requestTimeoutMs ?? 300_000;
      const headers = l.headersTimeoutMs ?? 60_000;
      if (request > 0 && headers > request) {
        ctx.issues.push({
          code: 'custom',
          input: l,
          path: [l.headersTimeoutMs === undefined ? 'requestTimeoutMs' : 'headersTimeoutMs'],
          message: `headersTimeoutMs (${headers}) must not exceed requestTimeoutMs (${request}) unless requestTimeoutMs is 0`,
        });
      }
    }),
);

/**
 * Per-connection limits a server applies to its clients, so that slow, idle or oversized clients
 * cannot hold a gateway's connections or memory. Applied by {@link SslStore.attach} to
 * `node:https` servers and `node:http2` secure servers (HTTP/2 and its HTTP/1.1 fallback).
 */
export interface ServerLimits extends SchemaInput<typeof serverLimitsSchema> {}

/** Options of {@link SslStore.attach}. */
export interface AttachOptions {
  /**
   * Limits applied to the server; fields left out take their defaults. `false` leaves the
   * server's own settings untouched.
   */
  limits?: ServerLimits | false;
}

/** The limits with every default filled in (`maxConnections` undefined = no cap). */
export type ResolvedLimits = Required<Omit<ServerLimits, 'maxConnections'>> & { maxConnections: number | undefined };

/** The defaults of {@link ServerLimits}. */
export const defaultLimits: Readonly<ResolvedLimits> = Object.freeze({
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 60_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderSize: 16_384,
  maxConcurrentStreams: 128,
  maxConnections: undefined,
});

const attachOptionsSchema = lazySchema(() =>
  z.strictObject({
    limits: z
      .union([z.literal(false), serverLimitsSchema()], {
        error: (i) => (i.input === undefined ? undefined : 'expected an object or false'),
      })
      .optional(),
  }),
);

/** The limits with every default filled in. */
export function resolveLimits(limits: ServerLimits): ResolvedLimits {
  const d = defaultLimits;
  return {
    handshakeTimeoutMs: limits.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    headersTimeoutMs: limits.headersTimeoutMs ?? d.headersTimeoutMs,
    requestTimeoutMs: limits.requestTimeoutMs ?? d.requestTimeoutMs,
    keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? d.keepAliveTimeoutMs,
    maxHeaderSize: limits.maxHeaderSize ?? d.maxHeaderSize,
    maxConcurrentStreams: limits.maxConcurrentStreams ?? d.maxConcurrentStreams,
    maxConnections: limits.maxConnections,
  };
}

/** Validates the options of `attach`; returns the limits to apply, or undefined for `limits: false`. */
export function resolveAttachOptions(input: unknown): ResolvedLimits | undefined {
  if (input === undefined) input = {};
  if (!isPlainObject(input))
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'options',
      `expected an object, received ${describe(input)}`,
    );
  const options = parse(attachOptionsSchema(), plainCopy(input, ''));
  if (options.limits === false) return undefined;
  return resolveLimits(options.limits ?? {});
}

/**
 * The HTTP-level properties Node reads from `node:https` servers and from HTTP/2 servers for their HTTP/1.1 fallback.
 */
interface Http1Knobs {
  headersTimeout?: number;
  requestTimeout?: number;
  keepAliveTimeout?: number;
  maxHeaderSize?: number;
  connectionsCheckingInterval?: number;
  maxConnections?: number;
}

const applied = new WeakMap<tls.Server, ResolvedLimits>();

function isHttp2Server(server: tls.Server): server is tls.Server & Http2SecureServer {
  return typeof (server as Partial<Http2SecureServer>).updateSettings === 'function';
}

/**
 * Applies `limits` to a server, before it listens. Calling it again replaces the limits without
 * adding listeners.
 */
export function applyLimits(server: tls.Server, limits: ResolvedLimits): void {
  const previous = applied.get(server);
  applied.set(server, limits);
  const s = server as unknown as Http1Knobs;

  // The handshake timeout is a constructor option only; tls.Server keeps it under a symbol that
  // every new connection reads (Node 12 to 24: lib/_tls_wrap.js kHandshakeTimeout). A 0 turns it off.
  const kHandshakeTimeout = Object.getOwnPropertySymbols(server).find((sym) => sym.description === 'handshake-timeout');
  if (kHandshakeTimeout) (server as unknown as Record<symbol, number>)[kHandshakeTimeout] = limits.handshakeTimeoutMs;

  // HTTP/1.1 (node:https, and HTTP/1.1 on an HTTP/2 server with allowHTTP1): read per connection.
  s.headersTimeout = limits.headersTimeoutMs;
  s.requestTimeout = limits.requestTimeoutMs;
  s.keepAliveTimeout = limits.keepAliveTimeoutMs;
  s.maxHeaderSize = limits.maxHeaderSize;
  // Node checks the headers and request timeouts of open connections only every
  // connectionsCheckingInterval (default 30 s, so a 60 s headersTimeout really meant 60 to 90 s).
  // The interval is read when the server starts listening.
  const timeouts = [limits.headersTimeoutMs, limits.requestTimeoutMs].filter((t) => t > 0);
  if (timeouts.length > 0)
    s.connectionsCheckingInterval = Math.max(25, Math.min(1000, Math.floor(Math.min(...timeouts) / 4)));
  // Without the option the server's own cap stays, unless an earlier attach set it.
  if (limits.maxConnections !== undefined || previous?.maxConnections !== undefined)
    s.maxConnections = limits.maxConnections;

  if (isHttp2Server(server)) {
    server.updateSettings({
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderSize,
    });
    if (!previous) server.on('session', onSession);
  }
}

/**
 * An HTTP/2 session idle (no open stream, no traffic) for keepAliveTimeoutMs gets a GOAWAY.
 * Node's session timeout counts inactivity only, so a stream waiting on a slow upstream would
 * trip it: the timeout is ignored while streams are open, and re-armed by their traffic.
 */
function onSession(this: tls.Server, session: Http2Session): void {
  const ms = applied.get(this)?.keepAliveTimeoutMs ?? 0;
  if (ms === 0) return;
  let open = 0;
  session.on('stream', (stream: ServerHttp2Stream) => {
    open++;
    stream.once('close', () => open--);
  });
  session.setTimeout(ms);
  session.on('timeout', () => {
    if (open === 0 && !session.closed && !session.destroyed) session.close();
  });
}
