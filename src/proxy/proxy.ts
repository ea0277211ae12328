import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { pipeline, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledUpstream } from '../router/config.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../http/forwarded.js';
import { sendErrorPage, type PagePreset } from '../http/pages.js';
import type { UpstreamPools } from './pools.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

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
}

/** The abort signal handed to undici: an EventEmitter emitting 'abort' (undici accepts either). */
class Aborter extends EventEmitter {
  aborted = false;
  reason: unknown;
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
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
      return { status: 502, kind: code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('UNABLE_TO_') ? 'tls' : 'error' };
  }
}

/** The connection's socket (for HTTP/2 the session's, not the per-stream proxy). */
function connectionSocket(req: Req): Socket {
  const stream = (req as Http2ServerRequest).stream as { session?: { socket?: Socket } } | undefined;
  return stream?.session?.socket ?? (req.socket as Socket);
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

/**
 * Forwards `req` to `upstream` at `path` (path and query) and streams the answer back: bodies are
 * never buffered whole, the client going away aborts the upstream request, and failures become
 * nginx-style 502 / 503 / 504 pages (or a reset stream once the response has started).
 */
export function forward(req: Req, res: Res, upstream: CompiledUpstream, path: string, ctx: ProxyContext): void {
  const picked = ctx.pools.pick(upstream);
  const fail = (status: 502 | 503 | 504, kind: string, error: unknown) => {
    ctx.onError?.({ status, kind, upstream: picked?.node.origin, error }, req);
    if (!res.headersSent) sendErrorPage(res, status, { preset: ctx.page, format: 'html', accept: undefined });
    else res.destroy();
  };
  if (!picked) return fail(503, 'no_upstream', undefined);
  const socket = connectionSocket(req);
  const scheme = (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const clientHost = ((req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '') as string;
  const headers = upstreamRequestHeaders(req, {
    remoteAddress: socket.remoteAddress ?? '',
    scheme,
    clientHost,
    serverPort: socket.localPort ?? 0,
    upstreamHost:
      upstream.passHost === 'pass' && clientHost
        ? clientHost
        : upstream.passHost === 'rewrite'
          ? upstream.upstreamHost!
          : nodeHost(picked.node, upstream.scheme),
  });

  // undici takes an EventEmitter as signal: much cheaper per request than an AbortController
  // (whose abort() builds a DOMException), and nothing is allocated unless the request is aborted.
  const abort = new Aborter();
  let done = false;
  // The client went away before the response finished: cancel the upstream request.
  res.once('close', () => {
    if (!done) abort.abort();
  });

  let body: Transform | undefined;
  let sendTimer: NodeJS.Timeout | undefined;
  if (hasBody(req)) {
    const sendMs = upstream.timeout.send * 1000;
    const arm = () => {
      clearTimeout(sendTimer);
      sendTimer = setTimeout(() => abort.abort(new SendTimeout('upstream send timeout')), sendMs);
    };
    arm();
    body = new Transform({
      transform(chunk, _enc, cb) { arm(); cb(null, chunk); },
      flush(cb) {
        clearTimeout(sendTimer);
        cb();
      },
    });
    pipeline(req, body, () => clearTimeout(sendTimer));
  }

  const method = req.method as Dispatcher.HttpMethod;
  picked.pool
    .request({
      path: upstream.pathPrefix + path,
      method,
      headers,
      body: body as unknown as import('node:stream').Readable | undefined,
      signal: abort,
      headersTimeout: upstream.timeout.read * 1000,
      bodyTimeout: upstream.timeout.read * 1000,
    })
    .then(
      (up) => {
        clearTimeout(sendTimer);
        if (res.destroyed) {
          up.body.destroy();
          return;
        }
        const r = res as ServerResponse;
        r.writeHead(up.statusCode, downstreamResponseHeaders(up.headers));
        if (method === 'HEAD') {
          up.body.resume();
          done = true;
          r.end();
          return;
        }
        // Plain pipe rather than stream.pipeline: on Node 20 pipeline allocates an AbortController
        // per call and aborts it on completion (a DOMException per request), which showed as the
        // largest single cost of the proxy path in a CPU profile.
        const body = up.body;
        let failed = false;
        const broken = (err: unknown) => {
          if (failed) return;
          failed = true;
          if (!abort.aborted) {
            const c = classify(err);
            ctx.onError?.({ status: c.status, kind: c.kind, upstream: picked.node.origin, error: err }, req);
          }
          // With an error, so HTTP/2 resets the stream with INTERNAL_ERROR rather than ending it cleanly.
          res.destroy(err instanceof Error ? err : new Error('upstream failed'));
        };
        body.on('end', () => (done = true));
        body.on('error', broken);
        // Closed without end and without error: the upstream went away mid-body.
        body.on('close', () => {
          if (!body.readableEnded) broken(Object.assign(new Error('upstream closed mid-body'), { code: 'UND_ERR_SOCKET' }));
        });
        body.pipe(r);
      },
      (err: unknown) => {
        clearTimeout(sendTimer);
        done = true;
        const reason = abort.aborted ? (abort.reason ?? err) : err;
        if (abort.aborted && !(reason instanceof SendTimeout)) return; // the client left
        const c = classify(reason);
        fail(c.status, c.kind, reason);
      },
    );
}
