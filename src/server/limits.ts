import type { Http2SecureServer, Http2Session, ServerHttp2Stream } from 'node:http2';
import type tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { describe, isPlainObject, rejectUnknown } from '../internal/validate.js';
import { plainCopy } from '../internal/plain.js';

/**
 * Per-connection limits a server applies to its clients, so that slow, idle or oversized clients
 * cannot hold a gateway's connections or memory. Applied by {@link SslStore.attach} to
 * `node:https` servers and `node:http2` secure servers (HTTP/2 and its HTTP/1.1 fallback).
 * Timeouts are in milliseconds; 0 turns a timeout off.
 */
export interface ServerLimits {
  /**
   * The TLS handshake must finish within this time, counted from the TCP accept. Default 10,000.
   * Node's default is 120 s, long enough for a few thousand silent sockets to pile up.
   */
  handshakeTimeoutMs?: number;
  /**
   * HTTP/1.1: the request line and headers must arrive within this time, counted from the
   * connection (first request) or from the first byte of a keep-alive request; the answer is 408.
   * Default 60,000, nginx's `client_header_timeout` and Node's own value.
   */
  headersTimeoutMs?: number;
  /**
   * HTTP/1.1: the whole request, body included, must arrive within this time. Default 300,000
   * (Node's). nginx has no total limit; a gateway that streams big uploads may want 0.
   */
  requestTimeoutMs?: number;
  /**
   * How long a connection with no request in progress stays open: an HTTP/1.1 keep-alive
   * connection between requests (Node adds a 1 s grace), an HTTP/2 session with no open stream
   * (it gets a GOAWAY). Default 5,000 (Node's HTTP/1.1 value; Node sets none for HTTP/2 sessions,
   * nor for HTTP/1.1 on an HTTP/2 server).
   */
  keepAliveTimeoutMs?: number;
  /**
   * Largest request head in bytes: HTTP/1.1 request line and headers (431 beyond it), HTTP/2
   * header list (`SETTINGS_MAX_HEADER_LIST_SIZE`; the stream is reset with ENHANCE_YOUR_CALM
   * beyond it, the session carries on). Default 16,384 (Node's HTTP/1.1 value).
   */
  maxHeaderSize?: number;
  /** HTTP/2: streams one session may have open at once. Default 128 (nginx's); Node's is unlimited. */
  maxConcurrentStreams?: number;
  /**
   * Connections the server accepts at once (`server.maxConnections`); more are closed on accept.
   * Default none: under a flood a cap refuses well-behaved clients too, while the timeouts above
   * reclaim the flood's connections.
   */
  maxConnections?: number;
}

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

const ATTACH_OPTIONS = new Set(['limits']);
const LIMITS = new Set(['handshakeTimeoutMs', 'headersTimeoutMs', 'requestTimeoutMs', 'keepAliveTimeoutMs', 'maxHeaderSize', 'maxConcurrentStreams', 'maxConnections']);
// Node's timers take at most a signed 32-bit millisecond count (about 24.8 days).
const MAX_TIMEOUT = 2 ** 31 - 1;
const MAX_STREAMS = 2 ** 32 - 1;

function integer(limits: Record<string, unknown>, name: keyof ServerLimits, min: number, max: number): number | undefined {
  const v = limits[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, `limits.${name}`, `expected an integer from ${min} to ${max}, received ${describe(v)}`);
  }
  return v;
}

/** Validates the options of `attach`; returns the limits to apply, or undefined for `limits: false`. */
export function resolveAttachOptions(input: unknown): ResolvedLimits | undefined {
  if (input === undefined) input = {};
  const options = plainCopy(input, '');
  if (!isPlainObject(options)) throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'options', `expected an object, received ${describe(options)}`);
  rejectUnknown(options, ATTACH_OPTIONS, '');
  const limits = options.limits ?? {};
  if (limits === false) return undefined;
  if (!isPlainObject(limits)) throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'limits', `expected an object or false, received ${describe(limits)}`);
  rejectUnknown(limits, LIMITS, 'limits.');
  const d = defaultLimits;
  const r: ResolvedLimits = {
    handshakeTimeoutMs: integer(limits, 'handshakeTimeoutMs', 0, MAX_TIMEOUT) ?? d.handshakeTimeoutMs,
    headersTimeoutMs: integer(limits, 'headersTimeoutMs', 0, MAX_TIMEOUT) ?? d.headersTimeoutMs,
    requestTimeoutMs: integer(limits, 'requestTimeoutMs', 0, MAX_TIMEOUT) ?? d.requestTimeoutMs,
    keepAliveTimeoutMs: integer(limits, 'keepAliveTimeoutMs', 0, MAX_TIMEOUT) ?? d.keepAliveTimeoutMs,
    // Below 1 KiB not even a browser's ordinary request head fits.
    maxHeaderSize: integer(limits, 'maxHeaderSize', 1024, MAX_STREAMS) ?? d.maxHeaderSize,
    maxConcurrentStreams: integer(limits, 'maxConcurrentStreams', 1, MAX_STREAMS) ?? d.maxConcurrentStreams,
    maxConnections: integer(limits, 'maxConnections', 1, Number.MAX_SAFE_INTEGER),
  };
  // Node's own rule (http.createServer throws ERR_OUT_OF_RANGE): headers arrive within the request.
  if (r.requestTimeoutMs > 0 && r.headersTimeoutMs > r.requestTimeoutMs) {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      limits.headersTimeoutMs === undefined ? 'limits.requestTimeoutMs' : 'limits.headersTimeoutMs',
      `headersTimeoutMs (${r.headersTimeoutMs}) must not exceed requestTimeoutMs (${r.requestTimeoutMs}) unless requestTimeoutMs is 0`,
    );
  }
  return r;
}

/** The HTTP-level properties Node reads from `node:https` servers and from HTTP/2 servers for their HTTP/1.1 fallback. */
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
  if (timeouts.length > 0) s.connectionsCheckingInterval = Math.max(25, Math.min(1000, Math.floor(Math.min(...timeouts) / 4)));
  // Without the option the server's own cap stays, unless an earlier attach set it.
  if (limits.maxConnections !== undefined || previous?.maxConnections !== undefined) s.maxConnections = limits.maxConnections;

  if (isHttp2Server(server)) {
    server.updateSettings({ maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderSize });
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
