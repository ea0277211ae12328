import type { TLSSocket } from 'node:tls';
import type { RejectReason } from '../errors.js';
import type { SslEntry } from '../ssl/object.js';
import type { StoreInternals } from '../ssl/store.js';
import { normalizeServername } from '../ssl/sni.js';
import { clientIdentity, type ClientIdentity } from '../verify/identity.js';

/** The guard's answer for one request. */
export type GuardVerdict =
  | {
      ok: true;
      /** The verified client, or null when no certificate was required (no mTLS, or a skip-list path). */
      identity: ClientIdentity | null;
      /** The SSL object chosen for the connection, when there is one. */
      sslId: string | undefined;
    }
  | { ok: false; reason: RejectReason; detail: string; sslId: string | undefined };

/** What the decision needs of a request, whatever the framework. */
export interface RequestFacts {
  /** The TLS socket of the connection (for HTTP/2, the session's socket), or undefined for plain TCP. */
  socket: TLSSocket | undefined;
  /** Normalised host (see `requestHost`): '' when absent, undefined when malformed or ambiguous. */
  host: string | undefined;
  /** The request, handed to `path` (no closure per request). */
  request: object;
  /** Its normalised path (see `normalizePath`), asked for only when the skip-list matters. */
  path: (request: object) => string | undefined;
}

type CertState = { ok: true; identity: ClientIdentity } | { ok: false; reason: RejectReason; detail: string };

/** Per-connection state: the certificate verdict is computed once per connection and store generation. */
interface ConnState {
  /** The store the state was computed against: two guards with different stores may share a server. */
  store: StoreInternals;
  generation: number;
  entry: SslEntry | undefined;
  /** Set when `entry` requires a client certificate. */
  cert: CertState | undefined;
  recheckAt: number;
  host: string | undefined;
  hostEntry: SslEntry | undefined;
}

/** Where a connection's state lives: on the socket itself, under a symbol no one else holds. A
 * property dies with the socket; a WeakMap entry would cost an ephemeron in every GC. */
const kState = Symbol('mtls-gate.connection');
type StatefulSocket = TLSSocket & { [kState]?: ConnState };

/** OpenSSL's verdict (from the handshake) mapped onto our reasons. */
function reasonFromOpenSsl(code: string): RejectReason {
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

/** OpenSSL codes that cover several of our reasons; our verifier then names the precise one. */
const AMBIGUOUS = new Set(['INVALID_PURPOSE', 'INVALID_CA', 'UNSPECIFIED']);

function certVerdict(store: StoreInternals, socket: TLSSocket, entry: SslEntry, now: number): { cert: CertState; recheckAt: number } {
  const client = entry.client!;
  // Never trust `authorized` alone: a resumed TLS 1.3 session reports authorized with no certificate
  // (nodejs/node#35317). No peer certificate is `missing`, whatever `authorized` says.
  const leaf = socket.getPeerX509Certificate();
  if (!leaf) return { cert: { ok: false, reason: 'missing', detail: 'the client sent no certificate' }, recheckAt: Infinity };

  if (socket.isSessionReused()) {
    // A resumed session carries the leaf alone and the OpenSSL verdict of the handshake that made
    // it, possibly under another SNI or another CA set. Only a verdict this very object reached in
    // a full handshake counts.
    const v = store.verifier.resumed(entry.key, leaf, now);
    if (v?.ok) return { cert: { ok: true, identity: clientIdentity(v.chain, entry.id) }, recheckAt: v.recheckAt };
    return {
      cert: { ok: false, reason: 'unverified_session', detail: `resumed TLS session not verified by SSL object "${entry.id}" in a full handshake` },
      recheckAt: Infinity,
    };
  }

  if (!socket.authorized) {
    // OpenSSL refused the chain in the handshake, against this object's CA set. That settles the
    // verdict without our (costlier) verification, which a hostile chain could otherwise make us pay
    // for on every connection; ours runs only to name the reason where OpenSSL's code is coarse.
    const code = String(socket.authorizationError ?? 'UNSPECIFIED');
    let reason = reasonFromOpenSsl(code);
    if (AMBIGUOUS.has(code)) {
      const v = store.verifier.verify(client.caSet, client.depth, leaf, now);
      if (!v.ok) reason = v.reason;
    }
    return { cert: { ok: false, reason, detail: `OpenSSL rejected the chain in the handshake: ${code}` }, recheckAt: Infinity };
  }

  // Both verifiers must agree. Ours adds client.depth, fingerprint-keyed caching and the identity;
  // OpenSSL adds name constraints and policies. A disagreement also happens when the object changed
  // between handshake and request; failing closed there is right.
  const v = store.verifier.verify(client.caSet, client.depth, leaf, now);
  if (!v.ok) return { cert: { ok: false, reason: v.reason, detail: v.detail }, recheckAt: v.recheckAt };
  store.verifier.rememberForResumption(entry.key, leaf, v);
  return { cert: { ok: true, identity: clientIdentity(v.chain, entry.id) }, recheckAt: v.recheckAt };
}

function skipped(entry: SslEntry, facts: RequestFacts): boolean {
  const skip = entry.client!.skip;
  if (skip.length === 0) return false;
  const path = facts.path(facts.request);
  if (path === undefined) return false;
  for (const re of skip) if (re.test(path)) return true;
  return false;
}

/** The SSL object for a connection: by SNI; without SNI by `fallbackSni`, or for a resumed TLS 1.2
 * session (Node reports no SNI for those, measured on 20.20) by the request's host. */
function connectionEntry(store: StoreInternals, socket: TLSSocket, host: string): SslEntry | undefined {
  const servername = socket.servername;
  if (typeof servername === 'string' && servername !== '') return store.matchEntry(servername);
  if (socket.isSessionReused() && host) {
    const byHost = store.matchEntry(host);
    if (byHost) return byHost;
  }
  return store.fallbackEntry();
}

/**
 * The framework-neutral decision (SPEC section 4). Per request this is a WeakMap lookup and a
 * host comparison; chain verification runs once per connection (and store change), cached
 * across connections by chain fingerprint.
 */
export function decide(store: StoreInternals, facts: RequestFacts, now = Date.now()): GuardVerdict {
  const { socket, host } = facts;
  if (host === undefined) return { ok: false, reason: 'bad_host', detail: 'malformed or ambiguous Host / :authority / request target', sslId: undefined };
  if (!socket || !socket.encrypted) {
    // Plain HTTP carries no client certificate. Pass unless the Host names an mTLS object
    // (fail closed where APISIX lets plain HTTP through).
    const hostEntry = host ? store.matchEntry(host) : undefined;
    if (hostEntry?.client) return { ok: false, reason: 'missing', detail: `plain HTTP request for mTLS host "${host}"`, sslId: hostEntry.id };
    return { ok: true, identity: null, sslId: undefined };
  }
  const generation = store.generation();
  let state = (socket as StatefulSocket)[kState];
  const sniless = typeof socket.servername !== 'string' || socket.servername === '';
  if (!state || state.store !== store || state.generation !== generation || now >= state.recheckAt || (sniless && state.host !== host)) {
    const entry = connectionEntry(store, socket, host);
    const fresh: ConnState = { store, generation, entry, cert: undefined, recheckAt: Infinity, host: undefined, hostEntry: undefined };
    if (entry?.client) Object.assign(fresh, certVerdict(store, socket, entry, now));
    state = fresh;
    (socket as StatefulSocket)[kState] = state;
  }
  const entry = state.entry;
  const sslId = entry?.id;
  if (!entry) {
    return sniless
      ? { ok: false, reason: 'no_sni', detail: 'the connection has no SNI and no fallbackSni object', sslId }
      : { ok: false, reason: 'unknown_sni', detail: `no SSL object matches SNI ${JSON.stringify(socket.servername)} any more`, sslId };
  }

  // SNI/Host binding: a certificate trusted for one tenant never opens another tenant's host.
  if (state.host !== host) {
    state.host = host;
    // The same lookup key is the same object: compare the keys matchEntry would look up (normalised
    // on both sides; a Host like "a.test.." still ends in a dot after normalizeHost and must not be
    // compared raw), and look the Host up only when they differ.
    state.hostEntry = !host
      ? undefined
      : !sniless && normalizeServername(host) === normalizeServername(socket.servername as string)
        ? entry
        : store.matchEntry(host);
  }
  const hostEntry = state.hostEntry;
  if (hostEntry?.client && hostEntry !== entry) {
    return {
      ok: false,
      reason: 'sni_host_mismatch',
      detail: `SSL object "${entry.id}" was chosen for the connection, but Host "${host}" belongs to mTLS SSL object "${hostEntry.id}"`,
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
  if (skipped(entry, facts)) return { ok: true, identity: null, sslId };
  return { ok: false, reason: cert.reason, detail: cert.detail, sslId };
}
