/** The request and response types every HTTP floor handles, and the connection beneath a request. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** A request of node:http, node:https or node:http2's compatibility API. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** Its response. */
export type HttpResponse = ServerResponse | Http2ServerResponse;

/**
 * The connection's socket: for HTTP/2 the session's (the TLS socket), not the per-stream proxy
 * `req.socket` gives. Undefined once an HTTP/2 stream is gone and took its session with it.
 */
export function connectionSocket(req: HttpRequest): Socket | undefined {
  const stream = (req as Http2ServerRequest).stream as { session?: { socket?: Socket } } | undefined;
  return stream ? stream.session?.socket : (req.socket as Socket | undefined);
}

/** The TLS socket under a request, or undefined for plain TCP. */
export function tlsSocketOf(req: HttpRequest): TLSSocket | undefined {
  const socket = connectionSocket(req) as TLSSocket | undefined;
  return socket?.encrypted ? socket : undefined;
}
