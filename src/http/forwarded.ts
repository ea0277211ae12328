import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/** Hop-by-hop headers (RFC 9110 7.6.1) and their HTTP/2-forbidden cousins: never forwarded either way. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'http2-settings', 'expect']);

/**
 * Client-certificate headers a client might forge to impersonate a verified identity to the upstream
 * (Envoy XFCC, RFC 9440, Traefik, nginx conventions). Compared after mapping `_` to `-`, since some
 * servers treat `x_forwarded_client_cert` as the same header.
 */
export const CLIENT_CERT_HEADERS = new Set([
  'x-forwarded-client-cert',
  'client-cert',
  'client-cert-chain',
  'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info',
  'x-ssl-client-cert',
  'x-ssl-client-verify',
  'x-ssl-client-s-dn',
  'x-ssl-client-i-dn',
  'x-ssl-client-serial',
  'x-ssl-client-fingerprint',
  'ssl-client-cert',
  'ssl-client-verify',
  'x-client-cert',
  'x-client-verify',
  'x-client-dn',
  // Set by other gateways and load balancers; an upstream that once sat behind one may still trust them.
  'x-amzn-mtls-clientcert',
  'x-amzn-mtls-clientcert-leaf',
  'x-amzn-mtls-clientcert-serial-number',
  'x-amzn-mtls-clientcert-issuer',
  'x-amzn-mtls-clientcert-subject',
  'x-amzn-mtls-clientcert-validity',
  'x-arr-clientcert',
  'x-ssl-cert',
  'x-client-certificate',
  'ssl-client-s-dn',
  'ssl-client-i-dn',
  'cf-client-cert-sha256',
]);

/** Headers the proxy sets itself, so inbound copies are dropped (X-Forwarded-For is appended to instead). */
const SET_BY_PROXY = new Set(['host', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded']);

export interface ForwardFacts {
  remoteAddress: string;
  scheme: 'http' | 'https';
  /** The Host as the client sent it (with port), for X-Forwarded-Host. */
  clientHost: string;
  /** The gateway's port, for X-Forwarded-Port. */
  serverPort: number;
  /** The Host header for the upstream. */
  upstreamHost: string;
}

/**
 * Request headers for the upstream as a flat [name, value, ...] list: the client's, minus hop-by-hop
 * (and those named in Connection), pseudo-headers and client-certificate headers, plus Host,
 * X-Real-IP and X-Forwarded-For/-Proto/-Host/-Port.
 */
export function upstreamRequestHeaders(req: IncomingMessage | Http2ServerRequest, f: ForwardFacts): string[] {
  const raw = req.rawHeaders;
  const connectionListed = connectionTokens(req.headers.connection);
  const out: string[] = [];
  let xff: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || connectionListed?.has(lower)) continue;
    if (CLIENT_CERT_HEADERS.has(lower.includes('_') ? lower.replace(/_/g, '-') : lower)) continue;
    if (lower.includes('_') && SET_BY_PROXY.has(lower.replace(/_/g, '-'))) continue;
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]}`;
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  out.push(
    'host', f.upstreamHost,
    'x-real-ip', f.remoteAddress,
    'x-forwarded-for', xff === undefined ? f.remoteAddress : `${xff}, ${f.remoteAddress}`,
    'x-forwarded-proto', f.scheme,
    'x-forwarded-host', f.clientHost,
    'x-forwarded-port', String(f.serverPort),
  );
  return out;
}

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const s = Array.isArray(value) ? value.join(',') : value;
  return new Set(s.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** Response headers for the client: the upstream's minus hop-by-hop (and those named in Connection). */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const listed = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = v;
  }
  return out;
}
