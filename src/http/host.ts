import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/** Lower-cased host of a request without port or trailing dot (`:authority` on HTTP/2), or '' when absent. */
export function requestHost(req: IncomingMessage | Http2ServerRequest): string {
  const raw = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
  if (!raw) return '';
  return normalizeHost(raw);
}

export function normalizeHost(raw: string): string {
  let host = raw.trim().toLowerCase();
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close === -1 ? host : host.slice(0, close + 1);
  }
  const colon = host.indexOf(':');
  if (colon !== -1) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
