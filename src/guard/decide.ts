import type { TLSSocket } from 'node:tls';
import type { RejectReason } from '../errors.js';
import type { SslEntry } from '../ssl/object.js';
import type { StoreInternals } from '../ssl/store.js';
import type { ChainIdentity, ClientIdentity } from '../verify/identity.js';
import type { Verdict as ChainVerdict } from '../verify/verifier.js';
import { normalizePath } from '../http/path.js';

/** The guard's answer for one request. */
export type GuardVerdict =
  | {
      ok: true;
      /** The verified client, or null when no certificate was required (no mTLS, or a skip-list path). */
      identity: ClientIdentity | null;
      /** The SSL object chosen by SNI, when there is one. */
      sslId: string | undefined;
    }
  | { ok: false; reason: RejectReason; detail: string; sslId: string | undefined };

/** What the decision needs of a request, whatever the framework. */
export interface RequestFacts {
  /** The TLS socket of the connection (for HTTP/2, the session's socket), or undefined for plain TCP. */
  socket: TLSSocket | undefined;
  /** Normalised lower-case host without port. */
  host: string;
  /** Raw request target (`req.url`). */
  target: string;
}

/** Per-connection state: the certificate verdict is computed once per connection and store generation. */
interface ConnState {
  generation: number;
  entry: SslEntry | undefined;
  /** Set when the connection's SNI object requires a client certificate. */
  cert: { ok: true; identity: ClientIdentity } | { ok: false; reason: RejectReason; detail: string } | undefined;
  recheckAt: number;
  host: string | undefined;
  hostEntry: SslEntry | undefined;
}

const connections = new WeakMap<TLSSocket, ConnState>();

/** OpenSSL's verdict (from the handshake) mapped onto our reasons, used when it disagrees with ours. */
function reasonFromOpenSsl(code: string | undefined): RejectReason {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'expired';
    case 'CERT_NOT_YET_VALID':
      return 'not_yet_valid';
    case 'CERT_CHAIN_TOO_LONG':
    case 'PATH_LENGTH_EXCEEDED':
      return 'chain_too_long';
    case 'CERT_SIGNATURE_FAILURE':
      return 'bad_signature';
    case 'INVALID_CA':
      return 'not_a_ca';
    case 'INVALID_PURPOSE':
      return 'bad_purpose';
    default:
      return 'untrusted';
  }
}

function evaluateConnection(store: StoreInternals, socket: TLSSocket, generation: number, now: number): ConnState {
  const servername = socket.servername;
  // A resumed TLS 1.2 session reports no servername (measured on Node 20.20): it falls back like a client without SNI.
  const entry = typeof servername === 'string' && servername !== '' ? store.matchEntry(servername) : store.fallbackEntry();
  const state: ConnState = { generation, entry, cert: undefined, recheckAt: Infinity, host: undefined, hostEntry: undefined };
  if (!entry?.client) return state;
  // Never trust `authorized` alone: a resumed TLS 1.3 session reports authorized with no certificate
  // (nodejs/node#35317). No peer certificate is `missing`, whatever `authorized` says.
  const leaf = socket.getPeerX509Certificate();
  if (!leaf) {
    state.cert = { ok: false, reason: 'missing', detail: 'the client sent no certificate' };
    return state;
  }
  const resumed = socket.isSessionReused();
  const v: ChainVerdict = store.verifier.verify(entry.client.caSet, entry.client.depth, leaf, resumed, now);
  state.recheckAt = v.recheckAt;
  if (!v.ok) {
    state.cert = { ok: false, reason: v.reason, detail: v.detail };
  } else if (!resumed && !socket.authorized) {
    // Two verifiers must agree: OpenSSL checked the same chain in the handshake against the same
    // CA set (and covers name constraints). A disagreement also happens when the object changed
    // between handshake and request; failing closed there is right.
    const code = String(socket.authorizationError ?? 'UNSPECIFIED');
    state.cert = { ok: false, reason: reasonFromOpenSsl(code), detail: `OpenSSL rejected the chain in the handshake: ${code}` };
  } else {
    if (!resumed) store.verifier.rememberForResumption(entry.client.caSet, entry.client.depth, leaf, v);
    state.cert = { ok: true, identity: withSslId(v.identity, entry.id) };
  }
  return state;
}

const identities = new WeakMap<ChainIdentity, Map<string, ClientIdentity>>();
/** Identity objects are shared per (chain, SSL object): no allocation on a warm path. */
function withSslId(identity: ChainIdentity, sslId: string): ClientIdentity {
  let bySsl = identities.get(identity);
  if (!bySsl) identities.set(identity, (bySsl = new Map()));
  let id = bySsl.get(sslId);
  if (!id) bySsl.set(sslId, (id = Object.freeze({ ...identity, sslId })));
  return id;
}

function skipped(entry: SslEntry, target: string): boolean {
  const skip = entry.client!.skip;
  if (skip.length === 0) return false;
  const path = normalizePath(target);
  if (path === undefined) return false;
  for (const re of skip) if (re.test(path)) return true;
  return false;
}

/**
 * The framework-neutral decision (SPEC section 4). Per request this is a WeakMap lookup and a
 * host comparison; chain verification runs once per connection (and store change), cached
 * across connections by chain fingerprint.
 */
export function decide(store: StoreInternals, facts: RequestFacts, now = Date.now()): GuardVerdict {
  const { socket, host } = facts;
  if (!socket || !socket.encrypted) {
    // Plain HTTP carries no client certificate. Pass unless the Host names an mTLS object
    // (fail closed where APISIX lets plain HTTP through).
    const hostEntry = host ? store.matchEntry(host) : undefined;
    if (hostEntry?.client) return { ok: false, reason: 'missing', detail: `plain HTTP request for mTLS host "${host}"`, sslId: hostEntry.id };
    return { ok: true, identity: null, sslId: undefined };
  }
  const generation = store.generation();
  let state = connections.get(socket);
  if (!state || state.generation !== generation || now >= state.recheckAt) {
    state = evaluateConnection(store, socket, generation, now);
    connections.set(socket, state);
  }
  const entry = state.entry;
  const sslId = entry?.id;
  if (!entry) {
    // Unreachable through our SNICallback (the handshake is refused), but the guard may sit on a
    // server configured by hand, or see a resumed TLS 1.2 session without SNI.
    return { ok: false, reason: 'no_sni', detail: `no SSL object for servername ${JSON.stringify(socket.servername)}`, sslId };
  }

  // SNI/Host binding: a certificate trusted for one tenant never opens another tenant's host.
  if (state.host !== host) {
    state.host = host;
    state.hostEntry = host ? store.matchEntry(host) : undefined;
  }
  const hostEntry = state.hostEntry;
  if (hostEntry?.client && hostEntry !== entry) {
    return {
      ok: false,
      reason: 'sni_host_mismatch',
      detail: `TLS SNI ${JSON.stringify(socket.servername)} chose SSL object "${entry.id}", but Host "${host}" belongs to mTLS SSL object "${hostEntry.id}"`,
      sslId,
    };
  }

  if (entry.sslProtocols) {
    const protocol = socket.getProtocol();
    if (!protocol || !entry.sslProtocols.has(protocol)) {
      return { ok: false, reason: 'protocol_not_allowed', detail: `${protocol} is not in sslProtocols of "${entry.id}"`, sslId };
    }
  }

  const cert = state.cert;
  if (!cert) return { ok: true, identity: null, sslId };
  if (cert.ok) return { ok: true, identity: cert.identity, sslId };
  if (skipped(entry, facts.target)) return { ok: true, identity: null, sslId };
  return { ok: false, reason: cert.reason, detail: cert.detail, sslId };
}
