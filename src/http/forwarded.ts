import type { HttpRequest } from './types.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and their HTTP/2-forbidden cousins: never forwarded either way. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
  'expect',
]);

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

/**
 * Families of client-certificate and TLS-state headers, by prefix: whatever a gateway or load
 * balancer may have named its identity headers (`X-Client-Cert-Subject`, `X-SSL-Client-DN`,
 * `X-SSL-Issuer`, `SSL-Client-Verify`, `Cf-Client-Cert-Der-Base64`, `X-Amzn-Mtls-...`). Compared
 * after mapping `_` to `-`.
 */
export const CLIENT_CERT_PREFIXES: readonly string[] = Object.freeze([
  'x-client-cert',
  'x-ssl-',
  'ssl-client-',
  'cf-client-cert',
  'x-amzn-mtls-',
  'x-forwarded-tls-client-cert',
  'x-forwarded-client-cert',
  'client-cert',
  'x-tls-client',
  'x-mtls-',
  // Identity set by authenticating proxies (oauth2-proxy, Authelia, Grafana's auth proxy): behind an
  // mTLS gateway a client must not be able to name its own user.
  'x-auth-request-',
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-groups',
  'remote-',
  // Kubernetes' request-header authentication trusts X-Remote-User / -Group / -Extra-* from a proxy
  // that presents a client certificate (upstream.tls.cert): a client must not name them.
  'x-remote-',
]);

/** Single names outside the families above: identity fields and the scheme flags frameworks trust. */
const IDENTITY_NAMES = new Set([
  'x-client-subject',
  'x-client-issuer',
  'x-client-cn',
  'x-client-serial',
  'x-client-fingerprint',
  'x-client-san',
  'x-client-spiffe',
  // "the request came over TLS", as Rack, Django and IIS read it: set by a client, it lies.
  'x-forwarded-ssl',
  'x-forwarded-scheme',
  'x-forwarded-protocol',
  'x-url-scheme',
  'front-end-https',
  'x-spiffe-id',
  'ssl-verify',
  'x-client-verified',
  'x-webauth-user',
  // Path overrides that IIS, Symfony and Laravel honour: the upstream would serve another path than
  // the one the guard and the router judged.
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-prefix',
  // User names a proxy in front may set, and method overrides (Rails, Express method-override,
  // ASP.NET): the upstream would run another method than the one the route's policy judged.
  'x-user',
  'x-authenticated-user',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);

/** Headers the proxy sets itself, so inbound copies are dropped (X-Forwarded-For is appended to instead). */
const SET_BY_PROXY = new Set([
  'host',
  'x-real-ip',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
]);

/**
 * Is this (lower-case) request header one a client may use to pose as a verified identity, or one
 * the operator listed? `_` spellings count: servers that map `_` to `-` (CGI, nginx with
 * `underscores_in_headers`) see `x_forwarded_for` as X-Forwarded-For.
 */
export function isForgeable(lower: string, extra: HeaderNames | undefined): boolean {
  let known = FORGEABLE.get(lower);
  if (known === undefined) {
    known = builtInForgeable(lower);
    // Bounded: header names are the client's choice. Cleared whole when full; browsers send the
    // same few dozen names, which come back at once.
    if (FORGEABLE.size >= 2048) FORGEABLE.clear();
    FORGEABLE.set(lower, known);
  }
  if (known) return true;
  if (extra === undefined) return false;
  return extra.matches(lower.includes('_') ? lower.replace(/_/g, '-') : lower);
}

/** The built-in part of {@link isForgeable}, remembered per header name. */
const FORGEABLE = new Map<string, boolean>();

function builtInForgeable(lower: string): boolean {
  const name = lower.includes('_') ? lower.replace(/_/g, '-') : lower;
  if (name !== lower && (SET_BY_PROXY.has(name) || name === 'x-forwarded-for')) return true;
  if (CLIENT_CERT_HEADERS.has(name) || IDENTITY_NAMES.has(name)) return true;
  const c = name.charCodeAt(0);
  // Every family starts with x, s, c or r.
  if (c === 0x78 || c === 0x73 || c === 0x63 || c === 0x72)
    for (const p of CLIENT_CERT_PREFIXES) if (name.startsWith(p)) return true;
  return false;
}

/** Header names an operator adds to the stripped set: exact names, or prefixes written `x-internal-*`. */
export class HeaderNames {
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];
  constructor(names: readonly string[]) {
    for (const n of names) {
      const folded = n.toLowerCase().replace(/_/g, '-');
      if (folded.endsWith('*')) this.#prefixes.push(folded.slice(0, -1));
      else this.#exact.add(folded);
    }
  }
  matches(name: string): boolean {
    if (this.#exact.has(name)) return true;
    for (const p of this.#prefixes) if (name.startsWith(p)) return true;
    return false;
  }
}

export interface ForwardFacts {
  remoteAddress: string;
  scheme: 'http' | 'https';
  /** The Host as the client sent it (with port), for X-Forwarded-Host. */
  clientHost: string;
  /** The gateway's port, for X-Forwarded-Port. */
  serverPort: number;
  /** The Host header for the upstream. */
  upstreamHost: string;
  /** Names the operator strips as well (`stripRequestHeaders`). */
  strip?: HeaderNames | undefined;
}

/**
 * Request headers for the upstream as a flat [name, value, ...] list: the client's, minus hop-by-hop
 * (and those named in Connection), pseudo-headers, client-certificate and identity headers (by
 * family, `_` spellings included) and the operator's names, plus Host, X-Real-IP and
 * X-Forwarded-For/-Proto/-Host/-Port.
 */
export function upstreamRequestHeaders(req: HttpRequest, f: ForwardFacts): string[] {
  const raw = req.rawHeaders;
  const connectionListed = connectionTokens(req.headers.connection);
  const out: string[] = [];
  let xff: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || SET_BY_PROXY.has(lower) || connectionListed?.has(lower)) continue;
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]}`;
      continue;
    }
    if (isForgeable(lower, f.strip)) continue;
    out.push(name, raw[i + 1]!);
  }
  out.push(
    'host',
    f.upstreamHost,
    'x-real-ip',
    f.remoteAddress,
    'x-forwarded-for',
    xff === undefined ? f.remoteAddress : `${xff}, ${f.remoteAddress}`,
    'x-forwarded-proto',
    f.scheme,
    'x-forwarded-host',
    f.clientHost,
    'x-forwarded-port',
    String(f.serverPort),
  );
  return out;
}

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const s = Array.isArray(value) ? value.join(',') : value;
  return new Set(
    s
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** Response headers for the client: the upstream's minus hop-by-hop (and those named in Connection). */
export function downstreamResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const listed = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = v;
  }
  return out;
}
