import { targetOf } from './target.js';
import type { HttpRequest } from './types.js';

// host = reg-name (the DNS characters; `_` too, as SNI patterns allow) or an IP literal, then an optional port.
const AUTHORITY = /^(?:([a-z0-9_.-]+)|(\[[0-9a-f:.]+\]))(?::(\d{1,5}))?$/;

/** Longest `host[:port]` accepted: a 253-character name, or a bracketed IPv6 literal, and a port. */
export const MAX_AUTHORITY = 253 + 1 + 2 + 6;

/** Lower-cased host of an authority without port or trailing dot; undefined when it is not strict `host[:port]`. */
export function normalizeHost(raw: string): string | undefined {
  // A DNS name has at most 253 characters (RFC 1035 2.3.4; 127 labels); port and brackets add a
  // few. Longer ones are refused before anything looks them up label by label.
  if (raw.length > MAX_AUTHORITY) return undefined;
  const m = AUTHORITY.exec(raw.trim().toLowerCase());
  if (!m) return undefined;
  if (m[2]) return m[2];
  const host = m[1]!;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  return name.length > 253 ? undefined : name;
}

/**
 * The host a request is for, the way a router will see it: lower-case, no port, no trailing dot;
 * '' when the request names none (HTTP/1.0). Undefined when the request is ambiguous or malformed:
 * a Host that is not strict `host[:port]` (`a.test:1@b.test`), HTTP/2 `:authority` and `host`
 * that disagree, or an absolute-form target whose authority differs from Host (RFC 9112 3.2.2
 * makes the target win; we refuse the disagreement instead).
 */
export function requestHost(req: HttpRequest): string | undefined {
  const authority = req.headers[':authority'] as string | undefined;
  const hostHeader = req.headers.host;
  let host: string | undefined = '';
  if (authority !== undefined) {
    host = normalizeHost(authority);
    if (host === undefined) return undefined;
    if (hostHeader !== undefined && normalizeHost(hostHeader) !== host) return undefined;
  } else if (hostHeader !== undefined) {
    // RFC 9112 3.2: more than one Host line is a 400. Node keeps the first and drops the rest.
    const raw = req.rawHeaders ?? [];
    let lines = 0;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') lines++;
    if (lines > 1) return undefined;
    host = normalizeHost(hostHeader);
    if (host === undefined) return undefined;
  }
  const target = targetOf(req);
  // `//a.test/admin` and `/\a.test/admin` are origin-form to Node, but `new URL(req.url, base)`
  // (Node's documented idiom) reads them as another authority: a handler picking the tenant from
  // it would serve a.test to a request the guard judged as the Host's. Refused as ambiguous.
  if (target.length > 1 && target[0] === '/' && (target[1] === '/' || target[1] === '\\')) return undefined;
  if (target.length > 0 && target[0] !== '/' && target !== '*') {
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target);
    if (!m) return undefined;
    const targetHost = normalizeHost(m[1]!);
    if (targetHost === undefined || (host !== '' && targetHost !== host)) return undefined;
    host = targetHost;
  }
  return host;
}
