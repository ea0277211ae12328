/**
 * HTTP/1.1 Upgrade (WebSocket) proxying for services with `enableWebsocket`: the upgrade request is
 * sent to a node of the upstream with the same header handling as any request (hop-by-hop and
 * identity families stripped, X-Forwarded-* and the identity headers set), then, on 101, the two
 * sockets are joined. An answer other than 101 is relayed and the connection closed. Idle
 * connections are closed after the upstream's read timeout (seconds), as APISIX's
 * proxy_read_timeout does.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { callHook } from '../internal/hooks.js';
import { type ForwardIdentity, type ProxyContext, requestHeadersFor } from './proxy.js';
import type { CompiledUpstream } from './upstream.js';

/** Writes a short HTTP/1.1 answer on a raw socket and closes it. */
export function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return;
  const body = `${status} ${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.once('finish', () => socket.destroy());
}

/** Proxies an upgrade request whose route allows it; `head` is what the client sent after its request head. */
export function forwardUpgrade(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  upstream: CompiledUpstream,
  path: string,
  ctx: ProxyContext,
  identity: ForwardIdentity | undefined,
  track?: (s: Duplex) => void,
): void {
  const picked = ctx.pools.pick(upstream);
  if (!picked) return refuseUpgrade(socket, 503, 'Service Unavailable');
  const node = picked.node;
  const headers = requestHeadersFor(req, upstream, node, ctx, identity);
  // The request's own upgrade intent, which the hop-by-hop filter removed.
  headers.push('connection', 'upgrade', 'upgrade', String(req.headers.upgrade));
  const options: https.RequestOptions = {
    host: node.host,
    port: node.port,
    method: req.method,
    path: upstream.pathPrefix + path,
    headers,
    timeout: upstream.timeout.connect * 1000,
    agent: false,
    ...(upstream.scheme === 'https'
      ? {
          servername: upstream.tls.servername ?? (/^[\d.]+$|:/.test(node.host) ? undefined : node.host),
          rejectUnauthorized: upstream.tls.verify,
          ...(upstream.tls.ca ? { ca: upstream.tls.ca } : {}),
          ...(upstream.tls.cert && upstream.tls.key ? { cert: upstream.tls.cert, key: upstream.tls.key } : {}),
        }
      : {}),
  };
  const fail = (status: 502 | 504, kind: string, error: unknown) => {
    callHook('onProxyError', ctx.onError, { status, kind, upstream: node.origin, error }, req);
    refuseUpgrade(socket, status, status === 504 ? 'Gateway Time-out' : 'Bad Gateway');
  };
  const up = (upstream.scheme === 'https' ? https : http).request(options);
  let settled = false;
  socket.once('close', () => {
    if (!settled) up.destroy();
  });
  up.once('timeout', () =>
    up.destroy(Object.assign(new Error('upstream connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })),
  );
  up.once('error', (err: NodeJS.ErrnoException) => {
    if (settled) return;
    settled = true;
    fail(
      err.code === 'UND_ERR_CONNECT_TIMEOUT' ? 504 : 502,
      err.code === 'ECONNREFUSED'
        ? 'refused'
        : err.code === 'UND_ERR_CONNECT_TIMEOUT'
          ? 'connect_timeout'
          : /CERT|SSL|TLS/.test(err.code ?? '')
            ? 'tls'
            : 'error',
      err,
    );
  });
  up.once('response', (res) => {
    // The upstream declined the upgrade: its answer goes back, and the connection ends.
    settled = true;
    const lines = [`HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}`];
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = res.rawHeaders[i]!.toLowerCase();
      if (
        name === 'connection' ||
        name === 'keep-alive' ||
        name === 'transfer-encoding' ||
        name === 'upgrade' ||
        name === 'content-length'
      )
        continue;
      lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    res.once('end', () => {
      const body = Buffer.concat(chunks);
      lines.push(`Content-Length: ${body.length}`, 'Connection: close');
      socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]));
    });
    res.once('error', () => socket.destroy());
  });
  up.once('upgrade', (res, upSocket, upHead) => {
    settled = true;
    const lines = [`HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}`];
    for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
    if (socket.destroyed) return upSocket.destroy();
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    const idle = upstream.timeout.read * 1000;
    upSocket.setTimeout(idle, () => upSocket.destroy());
    const close = () => {
      socket.destroy();
      upSocket.destroy();
    };
    socket.once('error', close).once('close', close);
    upSocket.once('error', close).once('close', close);
    socket.pipe(upSocket);
    upSocket.pipe(socket);
    track?.(socket);
  });
  up.end();
}
