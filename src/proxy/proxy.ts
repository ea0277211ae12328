import type { ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { pipeline, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { downstreamResponseHeaders, type HeaderNames, upstreamRequestHeaders } from '../http/forwarded.js';
import { type PagePreset, sendErrorPage } from '../http/pages.js';
import { connectionSocket, type HttpRequest, type HttpResponse, tlsSocketOf } from '../http/types.js';
import { callHook } from '../internal/hooks.js';
import { channels } from '../observe/channels.js';
import { type CompiledForward, identityHeaders, keepsInboundXfcc } from '../policy/forward.js';
import type { ClientIdentity } from '../verify/identity.js';
import type { UpstreamPools } from './pools.js';
import type { CompiledUpstream } from './upstream.js';

type Req = HttpRequest;
type Res = HttpResponse;

/** Why a proxied request failed, for logs and metrics. */
export interface ProxyErrorInfo {
  status: 502 | 503 | 504;
  /** `refused`, `reset`, `connect_timeout`, `send_timeout`, `read_timeout`, `no_upstream`, `tls`, `error`. */
  kind: string;
  upstream: string | undefined;
  error: unknown;
}

export interface ProxyContext {
  pools: UpstreamPools;
  page: PagePreset;
  onError: ((info: ProxyErrorInfo, req: Req) => void) | undefined;
  /** Request headers the operator strips besides the built-in families. */
  strip: HeaderNames | undefined;
}

class SendTimeout extends Error {
  readonly code = 'MTLS_GATE_SEND_TIMEOUT';
}

function classify(err: unknown): { status: 502 | 504; kind: string } {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { status: 504, kind: 'connect_timeout' };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return { status: 504, kind: 'read_timeout' };
    case 'MTLS_GATE_SEND_TIMEOUT':
      return { status: 504, kind: 'send_timeout' };
    case 'ECONNREFUSED':
      return { status: 502, kind: 'refused' };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { status: 502, kind: 'reset' };
    default:
      return {
        status: 502,
        kind: code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('UNABLE_TO_') ? 'tls' : 'error',
      };
  }
}

function hasBody(req: Req): boolean {
  const stream = (req as Http2ServerRequest).stream as { endAfterHeaders?: boolean } | undefined;
  if (stream) return !stream.endAfterHeaders;
  const h = req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

function nodeHost(node: CompiledUpstream['nodes'][number], scheme: string): string {
  const host = node.host.includes(':') ? `[${node.host}]` : node.host;
  const dflt = scheme === 'https' ? 443 : 80;
  return node.port === dflt ? host : `${host}:${node.port}`;
}

/** The identity a request carries to its upstream, with the service's forwarding settings. */
export interface ForwardIdentity {
  forward: CompiledForward;
  identity: ClientIdentity | null;
}

/** The upstream request's headers: the client's as http/forwarded.ts filters them, plus the identity headers. */
export function requestHeadersFor(
  req: Req,
  upstream: CompiledUpstream,
  node: CompiledUpstream['nodes'][number],
  ctx: ProxyContext,
  identity: ForwardIdentity | undefined,
): string[] {
  const socket = connectionSocket(req);
  const scheme = tlsSocketOf(req) ? 'https' : 'http';
  const clientHost = ((req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '') as string;
  const headers = upstreamRequestHeaders(req, {
    remoteAddress: socket?.remoteAddress ?? '',
    scheme,
    clientHost,
    serverPort: socket?.localPort ?? 0,
    strip: ctx.strip,
    upstreamHost:
      upstream.passHost === 'pass' && clientHost
        ? clientHost
        : upstream.passHost === 'rewrite'
          ? upstream.upstreamHost!
          : nodeHost(node, upstream.scheme),
  });
  if (identity) {
    const raw = keepsInboundXfcc(identity.forward, identity.identity)
      ? req.headers['x-forwarded-client-cert']
      : undefined;
    const inbound = raw === undefined ? undefined : Array.isArray(raw) ? raw.join(',') : raw;
    const extra = identityHeaders(identity.forward, identity.identity, tlsSocketOf(req), inbound);
    for (let i = 0; i < extra.length; i++) headers.push(extra[i]!);
  }
  return headers;
}

/**
 * Forwards `req` to `upstream` at `path` (path and query) and streams the answer back: bodies are
 * never buffered whole, the client going away aborts the upstream request, and failures become
 * nginx-style 502 / 503 / 504 pages (or a reset stream once the response has started).
 */
export function forward(
  req: Req,
  res: Res,
  upstream: CompiledUpstream,
  path: string,
  ctx: ProxyContext,
  identity?: ForwardIdentity,
): void {
  const picked = ctx.pools.pick(upstream);
  const t0 = channels.proxy.hasSubscribers ? performance.now() : 0;
  const fail = (status: 502 | 503 | 504, kind: string, error: unknown) => {
    if (t0 !== 0) publishProxy(picked?.node.origin, status, kind, t0);
    callHook('onProxyError', ctx.onError, { status, kind, upstream: picked?.node.origin, error }, req);
    if (!res.headersSent) sendErrorPage(res, status, { preset: ctx.page, format: 'html', accept: undefined });
    else res.destroy();
  };
  if (!picked) return fail(503, 'no_upstream', undefined);
  const headers = requestHeadersFor(req, upstream, picked.node, ctx, identity);

  // undici's dispatcher API with a handler of our own: no promise, no response body stream and no
  // pipe per request (Pool.request builds all three); chunks go straight to `res`, with
  // back-pressure through undici's pause/resume. The handler uses the callbacks undici's core
  // calls itself (onConnect/onHeaders/...), so undici adds no wrapper object either.
  const h = new ProxyHandler(req, res, ctx, picked.node.origin, req.method === 'HEAD', fail, t0);
  // The client went away before the response finished: cancel the upstream request.
  res.once('close', h.onClientClose);

  let body: Transform | undefined;
  if (hasBody(req)) {
    const sendMs = upstream.timeout.send * 1000;
    const arm = () => {
      clearTimeout(h.sendTimer);
      h.sendTimer = setTimeout(() => h.cancel(new SendTimeout('upstream send timeout')), sendMs);
    };
    arm();
    body = new Transform({
      transform(chunk, _enc, cb) {
        arm();
        cb(null, chunk);
      },
      flush(cb) {
        clearTimeout(h.sendTimer);
        cb();
      },
    });
    pipeline(req, body, () => clearTimeout(h.sendTimer));
  }

  picked.pool.dispatch(
    {
      origin: picked.node.origin,
      path: upstream.pathPrefix + path,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: body as unknown as import('node:stream').Readable | undefined,
      headersTimeout: upstream.timeout.read * 1000,
      bodyTimeout: upstream.timeout.read * 1000,
      // undici takes the SNI from the Host header unless told: tls.servername names it.
      ...(upstream.tls.servername ? { servername: upstream.tls.servername } : {}),
    },
    h,
  );
}

/** Upstream response headers as undici hands them (raw name/value buffers) to a header object. */
function headersOf(raw: Buffer[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

function publishProxy(upstream: string | undefined, status: number, kind: string | undefined, t0: number): void {
  channels.proxy.publish({ upstream, status, kind, durationMs: performance.now() - t0 });
}

/** One proxied request: undici's dispatch handler, streaming the upstream response into `res`. */
class ProxyHandler implements Dispatcher.DispatchHandler {
  #abort: ((err?: Error) => void) | undefined;
  /** Why the request was cancelled (the client left: undefined reason; a send timeout). */
  #cancelled = false;
  #reason: unknown;
  #done = false;
  /** The response was complete (onComplete): a later 'close' of `res` is the normal end. */
  #completed = false;
  #started = false;
  #failed = false;
  #resume: (() => void) | undefined;
  sendTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly req: Req,
    readonly res: Res,
    readonly ctx: ProxyContext,
    readonly origin: string,
    readonly head: boolean,
    readonly fail: (status: 502 | 503 | 504, kind: string, error: unknown) => void,
    /** When the request started, if someone listens on `mtls-gate:proxy` (else 0). */
    readonly t0 = 0,
  ) {}
  #status = 0;

  /** Cancels the upstream request (now, or as soon as undici hands us its abort). */
  cancel(reason?: unknown): void {
    if (this.#cancelled || this.#completed) return;
    this.#cancelled = true;
    this.#reason = reason;
    this.#abort?.(reason instanceof Error ? reason : undefined);
  }

  onClientClose = (): void => {
    this.cancel();
  };

  #onDrain = (): void => {
    this.#resume?.();
  };

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#cancelled) abort(this.#reason instanceof Error ? this.#reason : undefined);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // 1xx (other than 101, which undici handles as an upgrade) is informational: wait for the answer.
    if (statusCode < 200) return true;
    clearTimeout(this.sendTimer);
    const res = this.res;
    if (res.destroyed) {
      this.cancel();
      return false;
    }
    this.#started = true;
    this.#status = statusCode;
    (res as ServerResponse).writeHead(statusCode, downstreamResponseHeaders(headersOf(rawHeaders)));
    this.#resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.head || this.res.destroyed) return true;
    if ((this.res as ServerResponse).write(chunk)) return true;
    // The client reads slower than the upstream sends: pause undici until `res` drains.
    this.res.once('drain', this.#onDrain);
    return false;
  }

  onComplete(): void {
    this.#done = true;
    this.#completed = true;
    clearTimeout(this.sendTimer);
    if (!this.res.destroyed) (this.res as ServerResponse).end();
    if (this.t0 !== 0) publishProxy(this.origin, this.#status, undefined, this.t0);
  }

  onError(err: Error): void {
    clearTimeout(this.sendTimer);
    if (this.#done || this.#failed) return;
    this.#failed = true;
    this.#done = true;
    // undici may report a failure (e.g. the request body erroring because the client's HTTP/2
    // stream was reset) before `res` emits 'close': wait a turn so that a client who left is
    // seen as such, not as an upstream error.
    if (this.#cancelled) this.#settle(err);
    else setImmediate(() => this.#settle(err));
  }

  #settle(err: Error): void {
    if (!this.#started) {
      const reason = this.#cancelled ? (this.#reason ?? err) : err;
      if (this.#cancelled && !(reason instanceof SendTimeout)) {
        // The client left.
        if (this.t0 !== 0) publishProxy(this.origin, 499, 'client_closed', this.t0);
        return;
      }
      const c = classify(reason);
      this.fail(c.status, c.kind, reason);
      return;
    }
    // The response had started: the upstream failed mid-body (or the client left).
    if (this.t0 !== 0)
      publishProxy(this.origin, this.#status, this.#cancelled ? 'client_closed' : classify(err).kind, this.t0);
    if (!this.#cancelled) {
      const c = classify(err);
      callHook(
        'onProxyError',
        this.ctx.onError,
        { status: c.status, kind: c.kind, upstream: this.origin, error: err },
        this.req,
      );
    }
    // With an error, so HTTP/2 resets the stream with INTERNAL_ERROR rather than ending it cleanly.
    this.res.destroy(err instanceof Error ? err : new Error('upstream failed'));
  }
}
