/**
 * The verified client's identity for the upstream (a service's `forwardClientCert`):
 * X-Forwarded-Client-Cert as Envoy's code emits it, and Client-Cert / Client-Cert-Chain (RFC 9440).
 * Inbound copies of every identity header family are stripped before (http/forwarded.ts); only the
 * XFCC modes that keep an inbound XFCC keep it, as Envoy does. Built once per connection and
 * service, not per request.
 */
import type { TLSSocket } from 'node:tls';
import type { ClientIdentity } from '../verify/identity.js';
import type { ForwardClientCert } from './schema.js';

export type XfccMode = 'sanitize' | 'sanitize-set' | 'forward-only' | 'append-forward' | 'always-forward-only';

export interface CompiledForward {
  readonly xfcc: XfccMode;
  readonly cert: boolean;
  readonly chain: boolean;
  readonly subject: boolean;
  readonly uri: boolean;
  readonly dns: boolean;
  readonly rfc9440: boolean;
}

export function compileForward(input: ForwardClientCert): CompiledForward {
  const d = new Set(input.details ?? []);
  return Object.freeze({
    xfcc: input.xfcc ?? 'sanitize',
    cert: d.has('cert'),
    chain: d.has('chain'),
    subject: d.has('subject'),
    uri: d.has('uri'),
    dns: d.has('dns'),
    rfc9440: input.rfc9440 ?? false,
  });
}

/**
 * Does this mode keep an inbound XFCC (Envoy: forward-only and append-forward on mTLS connections, always-forward-only
 * always)?
 */
export function keepsInboundXfcc(f: CompiledForward | undefined, identity: ClientIdentity | null): boolean {
  if (!f) return false;
  if (f.xfcc === 'always-forward-only') return true;
  return identity !== null && (f.xfcc === 'forward-only' || f.xfcc === 'append-forward');
}

/**
 * Header values carry bytes 0x20-0x7e only here: anything else (a subject in another script, a
 * control character) is written as `\XX` per UTF-8 byte, RFC 4514's escape (Node refuses a header
 * with a character above U+00FF, and a raw one would be read as Latin-1 upstream).
 */
function ascii(v: string): string {
  if (!/[^\x20-\x7e]/.test(v)) return v;
  return v.replace(/[^\x20-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/**
 * A value as an XFCC pair carries it: bare as Envoy writes it, quoted (with `"` and `\` escaped) when it holds `,`,
 * `;`, `=`, `"` or a space.
 */
function xfccValue(v: string): string {
  const a = ascii(v);
  return /[,;="\s\\]/.test(a) ? `"${a.replace(/["\\]/g, (c) => `\\${c}`)}"` : a;
}

// The server certificate's URI SANs (XFCC `By`), once per connection.
const byOfSocket = new WeakMap<object, readonly string[]>();
function localUris(socket: TLSSocket | undefined): readonly string[] {
  if (!socket) return [];
  let uris = byOfSocket.get(socket);
  if (!uris) {
    let list: string[];
    try {
      const own = socket.getX509Certificate();
      const san = own?.subjectAltName ?? '';
      // Node's text form: "URI:spiffe://a, DNS:b"; a URI with ", " in it is quoted by Node 20.
      list = [...san.matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)].map((m) =>
        m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!,
      );
    } catch {
      list = [];
    }
    byOfSocket.set(socket, (uris = Object.freeze(list)));
  }
  return uris;
}

const pemOf = (info: { pem: string }) => (info.pem.endsWith('\n') ? info.pem : `${info.pem}\n`);

/** The current client's XFCC element (Envoy's order: By, Hash, Cert, Chain, Subject, URI, DNS). */
export function xfccElement(f: CompiledForward, identity: ClientIdentity, socket: TLSSocket | undefined): string {
  const parts: string[] = [];
  for (const by of localUris(socket)) parts.push(`By=${xfccValue(by)}`);
  parts.push(`Hash=${identity.fingerprint256}`);
  if (f.cert) parts.push(`Cert="${encodeURIComponent(pemOf(identity))}"`);
  if (f.chain) {
    // The client's certificate and the intermediates of its verified path (not the trust anchor).
    const path = [identity, ...identity.chain.slice(0, -1)];
    parts.push(`Chain="${encodeURIComponent(path.map(pemOf).join(''))}"`);
  }
  // Subject and URI are present even when empty, as Envoy writes them.
  if (f.subject) parts.push(`Subject="${ascii(identity.subject).replace(/"/g, '\\"')}"`);
  if (f.uri) {
    if (identity.san.uri.length === 0) parts.push('URI=');
    for (const u of identity.san.uri) parts.push(`URI=${xfccValue(u)}`);
  }
  if (f.dns) for (const d of identity.san.dns) parts.push(`DNS=${xfccValue(d)}`);
  return parts.join(';');
}

const derB64 = (pem: string) => pem.replace(/-----[^-]+-----|\s+/g, '');

/** Client-Cert and, when the path has intermediates, Client-Cert-Chain (RFC 9440: structured-field byte sequences). */
export function rfc9440Headers(identity: ClientIdentity): string[] {
  const out = ['client-cert', `:${derB64(identity.pem)}:`];
  const intermediates = identity.chain.slice(0, -1);
  if (intermediates.length > 0)
    out.push('client-cert-chain', intermediates.map((c) => `:${derB64(c.pem)}:`).join(', '));
  return out;
}

// Per connection (identities are made per connection) and service: the headers to add.
const built = new WeakMap<ClientIdentity, Map<CompiledForward, readonly string[]>>();

/**
 * The identity headers for the upstream, as a flat [name, value, ...] list; `inbound`: the request's
 * own XFCC values when the mode keeps them.
 */
export function identityHeaders(
  f: CompiledForward,
  identity: ClientIdentity | null,
  socket: TLSSocket | undefined,
  inbound: string | undefined,
): readonly string[] {
  if (identity === null)
    return f.xfcc === 'always-forward-only' && inbound !== undefined ? ['x-forwarded-client-cert', inbound] : [];
  let byService = built.get(identity);
  let own = byService?.get(f);
  if (!own) {
    const list: string[] = [];
    if (f.xfcc === 'sanitize-set' || f.xfcc === 'append-forward')
      list.push('x-forwarded-client-cert', xfccElement(f, identity, socket));
    if (f.rfc9440) list.push(...rfc9440Headers(identity));
    own = Object.freeze(list);
    if (!byService) built.set(identity, (byService = new Map()));
    byService.set(f, own);
  }
  if (inbound === undefined || f.xfcc === 'sanitize' || f.xfcc === 'sanitize-set') return own;
  if (f.xfcc === 'append-forward')
    return own.map((v, i) => (i === 1 && own[0] === 'x-forwarded-client-cert' ? `${inbound},${v}` : v));
  // forward-only, always-forward-only: the inbound XFCC as it came.
  return ['x-forwarded-client-cert', inbound, ...own];
}
