import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { RejectReason } from '../errors.js';
import { recordHostOwner } from '../http/facts.js';
import { normalizeHost } from '../http/host.js';
import { kPolicyLookup, type PolicySource } from '../policy/lookup.js';
import { type CompiledPolicy, evaluatePolicy, type PolicyResult } from '../policy/policy.js';
import type { SslEntry } from '../ssl/object.js';
import type { StoreInternals } from '../ssl/store.js';
import type { CaSet } from '../verify/ca-set.js';
import { sessionFacts, sessionPeerCertificate } from '../verify/der.js';
import { type ClientIdentity, clientIdentity, type VerifiedChain } from '../verify/identity.js';
import { checkRevocation } from '../verify/revocation.js';

/** The guard's answer for one request. */
export type GuardVerdict =
  | {
      ok: true;
      /** The verified client, or null when no certificate was required (no mTLS, or a skip-list path). */
      identity: ClientIdentity | null;
      /** The SSL object chosen for the connection, when there is one. */
      sslId: string | undefined;
    }
  | {
      ok: false;
      reason: RejectReason;
      detail: string;
      sslId: string | undefined;
      /** Not a verdict yet: an OCSP answer is on its way; await it and ask again (the guard does). */
      pending?: Promise<void>;
      /**
       * The answer a route's policy asks for (an allow-list refusal: `mtls.status`); else the guard's per-reason
       * status.
       */
      status?: number;
      /** For `not_allowed`: what the allow-list holds (names or pins only). */
      allowList?: 'names' | 'pins' | undefined;
    };

/** What the decision needs of a request, whatever the framework. */
export interface RequestFacts {
  /** The TLS socket of the connection (for HTTP/2, the session's socket), or undefined for plain TCP. */
  socket: TLSSocket | undefined;
  /** Normalised host (see `requestHost`): '' when absent, undefined when malformed or ambiguous. */
  host: string | undefined;
  /** The request, handed to `path` (no closure per request). */
  request: object;
  /**
   * The path the skip-list is tested on, asked for only when the skip-list matters: the normalised
   * path (see `normalizePath`), and undefined when the raw target is not already in that form (see
   * `skipPathOf`), so that no skip is granted to a target a framework may read differently.
   */
  path: (request: object) => string | undefined;
  /** Where the request's `mtls` policy is found (the router, or a guard's `policies`). */
  policies?: PolicySource | undefined;
  /** The normalised path the policy is looked up with (the router's), undefined when malformed. */
  policyPath?: (request: object) => string | undefined;
  method?: string | undefined;
}

type CertState =
  | { ok: true; identity: ClientIdentity; chain: VerifiedChain }
  | { ok: false; reason: RejectReason; detail: string; pending?: Promise<void> };

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
  /** What each route policy met on this connection said of its certificate. */
  policies?: Map<CompiledPolicy, PolicyResult>;
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
    case 'KEYUSAGE_NO_CERTSIGN':
      return 'not_a_ca';
    case 'INVALID_PURPOSE':
      return 'bad_purpose';
    case 'UNHANDLED_CRITICAL_EXTENSION':
      return 'bad_extension';
    default:
      return 'untrusted';
  }
}

/**
 * OpenSSL codes that cover several of our reasons (it reports the last error it saw: a self-signed
 * leaf ends in INVALID_PURPOSE too). The reason is then named by structural checks, never by
 * signature work.
 */
const AMBIGUOUS = new Set(['INVALID_PURPOSE', 'INVALID_CA', 'UNSPECIFIED']);
/** Bytes a client may have sent (handshake and first request) for its chain to be read to name a refusal. */
const EXPLAIN_MAX_BYTES = 16 * 1024;

/**
 * Bytes received on the connection's TCP socket, the TLS records included. A TLSSocket counts
 * decrypted bytes only; the TCP socket it wraps is `_parent` (Node 12 to 24). Unknown: Infinity.
 */
function rawBytesRead(socket: TLSSocket): number {
  const parent = (socket as TLSSocket & { _parent?: { bytesRead?: unknown } | null })._parent;
  return typeof parent?.bytesRead === 'number' ? parent.bytesRead : Infinity;
}

// nameConstraints, policyMappings, policyConstraints, inhibitAnyPolicy: enforced by OpenSSL alone.
const OPENSSL_ONLY = [0x1e, 0x21, 0x24, 0x36].map((last) => Buffer.from([0x06, 0x03, 0x55, 0x1d, last]));
const constrained = new WeakMap<CaSet, boolean>();
/**
 * Does a CA of the set carry an extension only OpenSSL enforces? (A byte search: a false hit only costs a full
 * handshake.)
 */
function constrainedAnchors(caSet: CaSet): boolean {
  let v = constrained.get(caSet);
  if (v === undefined) {
    v = caSet.anchors.some((a) => OPENSSL_ONLY.some((oid) => Buffer.from(a.der).includes(oid)));
    constrained.set(caSet, v);
  }
  return v;
}

/**
 * The client's certificate as Node gives it, read once per connection: Node 20 links the leaf to the
 * intermediates the client sent (`issuerCertificate`) only in the first object
 * `getPeerX509Certificate()` returns on a connection; later calls give the leaf alone (measured on
 * 20.20), so a connection judged again after a change of its SSL object would lose its chain.
 */
const peerLeaves = new WeakMap<TLSSocket, X509Certificate | null>();
function peerLeaf(socket: TLSSocket): X509Certificate | undefined {
  let leaf = peerLeaves.get(socket);
  if (leaf === undefined) {
    leaf = socket.getPeerX509Certificate() ?? null;
    peerLeaves.set(socket, leaf);
  }
  return leaf ?? undefined;
}

/**
 * A verified chain, admitted unless the object's revocation check refuses it: `revoked` always,
 * an unknown status under mode strict. The identity says what the check learned.
 */
function admit(
  entry: SslEntry,
  chain: VerifiedChain,
  recheckAt: number,
  now: number,
): { cert: CertState; recheckAt: number } {
  const policy = entry.client!.revocation;
  if (!policy) return { cert: { ok: true, identity: clientIdentity(chain, entry.id), chain }, recheckAt };
  const r = checkRevocation(policy, chain, now);
  // Waiting for OCSP: not a verdict; the connection is judged again once the answer is in.
  if (r.status === 'pending')
    return { cert: { ok: false, reason: 'revocation_unknown', detail: r.detail, pending: r.pending! }, recheckAt: 0 };
  if (r.status === 'revoked') return { cert: { ok: false, reason: 'revoked', detail: r.detail }, recheckAt: Infinity };
  if (r.status === 'unknown' && policy.mode === 'strict')
    return { cert: { ok: false, reason: 'revocation_unknown', detail: r.detail }, recheckAt: r.recheckAt };
  return {
    cert: { ok: true, identity: clientIdentity(chain, entry.id, { status: r.status, via: r.via ?? 'crl' }), chain },
    recheckAt: Math.min(recheckAt, r.recheckAt),
  };
}

function certVerdict(
  store: StoreInternals,
  socket: TLSSocket,
  entry: SslEntry,
  now: number,
): { cert: CertState; recheckAt: number } {
  const client = entry.client!;
  if (!socket.authorized && !socket.isSessionReused()) {
    // OpenSSL refused the chain of this full handshake with a precise code: that settles it, and the
    // certificates are not even read (Node builds an object per certificate sent, 0.16 ms each). A
    // client without certificate gets UNABLE_TO_GET_ISSUER_CERT from Node: that one is decided below.
    const code = String(socket.authorizationError ?? 'UNSPECIFIED').slice(0, 64);
    const refused = (reason: RejectReason) => ({
      cert: { ok: false as const, reason, detail: `OpenSSL rejected the chain in the handshake: ${code}` },
      recheckAt: Infinity,
    });
    if (code !== 'UNABLE_TO_GET_ISSUER_CERT' && !AMBIGUOUS.has(code)) return refused(reasonFromOpenSsl(code));
    // The TLS session holds the leaf's DER, read in microseconds: it tells a missing certificate
    // from a present one, and often names an ambiguous code by itself. The chain is read (to tell a
    // leaf used as issuer, say) only when the client sent little: Node builds an object for every
    // certificate sent (0.16 ms each; 230 of them cost 55 ms), before any cap of ours can apply.
    // Otherwise OpenSSL's code names the refusal.
    const leafDer = sessionPeerCertificate(socket.getSession());
    if (code === 'UNABLE_TO_GET_ISSUER_CERT') {
      if (leafDer) return refused('untrusted');
    } else {
      const reason = leafDer ? store.verifier.explainLeaf(client.caSet, leafDer) : undefined;
      if (reason) return refused(reason);
      if (!leafDer || rawBytesRead(socket) > EXPLAIN_MAX_BYTES) return refused(reasonFromOpenSsl(code));
    }
  }
  // Never trust `authorized` alone: a resumed TLS 1.3 session reports authorized with no certificate
  // (nodejs/node#35317). No peer certificate is `missing`, whatever `authorized` says.
  const leaf = peerLeaf(socket);
  if (!leaf)
    return { cert: { ok: false, reason: 'missing', detail: 'the client sent no certificate' }, recheckAt: Infinity };

  if (socket.isSessionReused()) {
    // A resumed session carries the leaf alone and the OpenSSL verdict of the handshake that made
    // it, possibly under another SNI or another CA set. Only a verdict this very object reached in
    // a full handshake counts.
    const v = store.verifier.resumed(entry.sessionSource, leaf, now);
    if (v?.ok) return admit(entry, v.chain, v.recheckAt, now);
    if (store.sharedTickets && socket.authorized && !constrainedAnchors(client.caSet)) {
      // With a ticket secret, ticket keys follow from the secret and the store's whole content: a
      // ticket this process can open was issued after a full handshake by a process holding the same
      // secret and the very same SSL objects (another worker, another machine). The session carries
      // OpenSSL's verdict of that handshake: it must be clean (X509_V_OK). The session does not say
      // which object's CAs that verdict was reached with (Node switches contexts in a callback that a
      // TLS 1.2 resumption skips, and the session records no SNI), so our verifier checks the leaf
      // again against this object: its issuer must be a CA of client.ca (the session holds the leaf
      // alone; clients behind an intermediate do a full handshake with each process). What only
      // OpenSSL checks (name constraints, policy constraints) cannot be re-checked that way: objects
      // whose CAs carry such extensions never take sessions they did not see made.
      const facts = sessionFacts(socket.getSession());
      if (facts !== undefined && facts.verifyResult === 0) {
        const fresh = store.verifier.verify(client.caSet, client.depth, leaf, now);
        if (fresh.ok) {
          store.verifier.rememberForResumption(entry.sessionSource, leaf, fresh);
          return admit(entry, fresh.chain, fresh.recheckAt, now);
        }
      }
    }
    return {
      cert: {
        ok: false,
        reason: 'unverified_session',
        detail: `resumed TLS session not verified by SSL object "${entry.id}" in a full handshake`,
      },
      recheckAt: Infinity,
    };
  }

  if (!socket.authorized) {
    // OpenSSL refused the chain in the handshake, against this object's CA set (a small chain with
    // an ambiguous code, or a session whose leaf could not be read above). That settles the verdict:
    // our own (costlier) verification does not run, so a hostile chain buys no signature checks in
    // JavaScript and leaves nothing in the verdict cache. The reason is named from OpenSSL's code
    // and structural checks (verify/explain.ts).
    const code = String(socket.authorizationError ?? 'UNSPECIFIED').slice(0, 64);
    let reason = reasonFromOpenSsl(code);
    if (AMBIGUOUS.has(code)) reason = store.verifier.explain(client.caSet, client.depth, leaf, reason, now);
    return {
      cert: { ok: false, reason, detail: `OpenSSL rejected the chain in the handshake: ${code}` },
      recheckAt: Infinity,
    };
  }

  // Both verifiers must agree. Ours adds client.depth, fingerprint-keyed caching and the identity;
  // OpenSSL adds name constraints and policies. A disagreement also happens when the object changed
  // between handshake and request; failing closed there is right.
  const v = store.verifier.verify(client.caSet, client.depth, leaf, now);
  if (!v.ok) return { cert: { ok: false, reason: v.reason, detail: v.detail }, recheckAt: v.recheckAt };
  store.verifier.rememberForResumption(entry.sessionSource, leaf, v);
  return admit(entry, v.chain, v.recheckAt, now);
}

/**
 * Longest path a skip-list is tested on: longer paths need the certificate. Skipped paths are short
 * (`/health`, `/public/app.css`), and the cap bounds what one request can cost the matcher (path
 * length × pattern states, internal/regex.ts).
 */
export const MAX_SKIP_PATH = 2048;

function skipped(entry: SslEntry, facts: RequestFacts): boolean {
  const skip = entry.client!.skip;
  if (skip.length === 0) return false;
  const path = facts.path(facts.request);
  if (path === undefined || path.length > MAX_SKIP_PATH) return false;
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

/** How the decision treats what the request facts cannot say. */
export interface DecideOptions {
  /**
   * Let requests that did not arrive over TLS through for hosts whose owner has no `client`. Off by
   * default: a guard in front of a plain-HTTP listener refuses every request (`plain_http`).
   */
  allowPlainHttp: boolean;
}

const STRICT: DecideOptions = Object.freeze({ allowPlainHttp: false });

/**
 * The framework-neutral decision (SPEC section 4). Per request: a property read on the socket, a
 * host comparison, a look at X-Forwarded-Host / Forwarded when present, and a record of the host's
 * owner on the request for the router. Chain verification runs once per connection (and store
 * change), cached across connections by chain fingerprint.
 */
export function decide(
  store: StoreInternals,
  facts: RequestFacts,
  now = Date.now(),
  options: DecideOptions = STRICT,
): GuardVerdict {
  const { socket, host } = facts;
  if (host === undefined)
    return {
      ok: false,
      reason: 'bad_host',
      detail: 'malformed or ambiguous Host / :authority / request target',
      sslId: undefined,
    };
  if (forwardedHostConflict(store, facts)) {
    return {
      ok: false,
      reason: 'sni_host_mismatch',
      detail: 'X-Forwarded-Host / Forwarded host names another SSL object with mTLS than the request host',
      sslId: undefined,
    };
  }
  if (!socket?.encrypted) {
    // Plain HTTP carries no client certificate. Refused unless the application said plain HTTP is
    // allowed, and even then never for a host an mTLS object owns (APISIX lets plain HTTP through).
    const owner = host ? store.ownerOf(host) : undefined;
    if (!options.allowPlainHttp) {
      return {
        ok: false,
        reason: 'plain_http',
        detail: 'the request did not arrive over TLS (set allowPlainHttp to serve hosts without mTLS over plain HTTP)',
        sslId: owner?.id,
      };
    }
    if (owner?.mtls)
      return {
        ok: false,
        reason: 'missing',
        detail: `plain HTTP request for mTLS host ${quote(host)}`,
        sslId: owner.id,
      };
    recordHostOwner(facts.request, store, owner);
    // A route that asks for a certificate (or narrows who may pass) cannot be served without TLS.
    const policy = facts.policies ? policyOf(facts) : undefined;
    if (policy && (policy.mode === 'required' || policy.anchors || policy.allow)) {
      return {
        ok: false,
        reason: 'missing',
        detail: 'plain HTTP request for a route whose mtls policy asks for a client certificate',
        sslId: owner?.id,
      };
    }
    return { ok: true, identity: null, sslId: undefined };
  }
  const generation = store.generation();
  let state = (socket as StatefulSocket)[kState];
  const sniless = typeof socket.servername !== 'string' || socket.servername === '';
  let stale = !state || state.store !== store || now >= state.recheckAt || (sniless && state.host !== host);
  if (!stale && state!.generation !== generation) {
    // The store changed. If the connection's object is the very entry it was judged by (a batch
    // that left it alone), its certificate verdict stands; the host's owner is looked up again.
    if (connectionEntry(store, socket, host) === state!.entry)
      Object.assign(state!, { generation, host: undefined, hostEntry: undefined });
    else stale = true;
  }
  if (stale || !state) {
    const entry = connectionEntry(store, socket, host);
    const fresh: ConnState = {
      store,
      generation,
      entry,
      cert: undefined,
      recheckAt: Infinity,
      host: undefined,
      hostEntry: undefined,
    };
    if (entry?.client) Object.assign(fresh, certVerdict(store, socket, entry, now));
    state = fresh;
    (socket as StatefulSocket)[kState] = state;
  }
  const entry = state.entry;
  const sslId = entry?.id;
  if (!entry) {
    return sniless
      ? { ok: false, reason: 'no_sni', detail: 'the connection has no SNI and no fallbackSni object', sslId }
      : {
          ok: false,
          reason: 'unknown_sni',
          detail: `no SSL object matches SNI ${quote(socket.servername as string)} any more`,
          sslId,
        };
  }

  // SNI/Host binding: a certificate trusted for one tenant never opens another tenant's host. The
  // Host's owner is found with the route-host rule the router uses (a wildcard covers any depth),
  // so every host a tenant's routes can serve is bound to that tenant here.
  if (state.host !== host) {
    state.host = host;
    state.hostEntry = host ? store.ownerOf(host) : undefined;
  }
  const hostEntry = state.hostEntry;
  if (hostEntry?.mtls && hostEntry !== entry) {
    return {
      ok: false,
      reason: 'sni_host_mismatch',
      detail: `SSL object ${quote(entry.id)} was chosen for the connection, but host ${quote(host)} belongs to mTLS SSL object ${quote(hostEntry.id)}`,
      sslId,
    };
  }

  if (entry.sslProtocols) {
    const protocol = socket.getProtocol();
    if (!protocol || !entry.sslProtocols.has(protocol)) {
      return {
        ok: false,
        reason: 'protocol_not_allowed',
        detail: `${protocol} is not in sslProtocols of "${entry.id}"`,
        sslId,
      };
    }
  }

  // Recorded before the policy is looked up: host-bound routes are taken only where the request
  // host's owner owns their pattern (the router's rule), and the lookup is the router's match.
  recordHostOwner(facts.request, store, hostEntry);
  const policy = facts.policies ? policyOf(facts) : undefined;
  const cert = state.cert;
  if (!cert) {
    // The object asks for no certificate: a route that requires one cannot be served (fail closed).
    if (policy?.mode === 'required')
      return {
        ok: false,
        reason: 'missing',
        detail: `the route requires a client certificate, and SSL object ${quote(entry.id)} asks for none`,
        sslId,
      };
    return { ok: true, identity: null, sslId };
  }
  if (policy?.mode === 'off') return { ok: true, identity: null, sslId };
  if (cert.ok) {
    if (policy && (policy.anchors || policy.allow)) {
      let r = state.policies?.get(policy);
      if (!r) {
        r = evaluatePolicy(policy, cert.chain, () => cert.identity.subject);
        (state.policies ??= new Map()).set(policy, r);
      }
      // A route's own policy is more specific than the object's skip-list: it is not skipped.
      if (!r.ok)
        return { ok: false, reason: r.reason, detail: r.detail, sslId, status: r.status, allowList: r.allowList };
    }
    return { ok: true, identity: cert.identity, sslId };
  }
  if (policy?.mode === 'optional' && cert.reason === 'missing') return { ok: true, identity: null, sslId };
  if (!policy && skipped(entry, facts)) return { ok: true, identity: null, sslId };
  return {
    ok: false,
    reason: cert.reason,
    detail: cert.detail,
    sslId,
    ...(cert.pending ? { pending: cert.pending } : {}),
  };
}

/** A relaxed policy (optional, off) holds only for targets already in normal form, as the skip-list. */
const strictened = new WeakMap<CompiledPolicy, CompiledPolicy | undefined>();
function policyOf(facts: RequestFacts): CompiledPolicy | undefined {
  if (facts.host === undefined) return undefined;
  // A path that does not normalise matches no route of the router (which refuses it); a policy
  // list also matches the raw path, which a framework may still route.
  const path = facts.policyPath?.(facts.request) ?? '';
  const policy = facts.policies![kPolicyLookup](facts.request, facts.host, path, facts.method ?? 'GET');
  if (!policy || policy.mode === 'required' || facts.path(facts.request) !== undefined) return policy;
  // The raw target is not in normal form (a framework may route it elsewhere): no relaxation.
  if (!strictened.has(policy))
    strictened.set(
      policy,
      policy.anchors || policy.allow ? Object.freeze({ ...policy, mode: 'required' as const }) : undefined,
    );
  return strictened.get(policy);
}

/** More forwarded host names than a proxy chain would ever add. */
const MAX_FORWARDED_HOSTS = 16;

/**
 * Express (`trust proxy`) and Koa (`app.proxy`) read the host from X-Forwarded-Host (Koa 3 also
 * from Forwarded): a request whose forwarded host belongs to another mTLS object than its own host
 * would reach that tenant's handlers under this tenant's certificate. Refused whatever the app's
 * settings. Also refused, with or without mTLS objects: a forwarded host that is not strict
 * `host[:port]` (an empty part included), and more than 16 forwarded names.
 */
function forwardedHostConflict(store: StoreInternals, facts: RequestFacts): boolean {
  const req = facts.request as { headers?: Record<string, string | string[] | undefined> };
  const xfh = req.headers?.['x-forwarded-host'];
  const fwd = req.headers?.forwarded;
  if (xfh === undefined && fwd === undefined) return false;
  // A client chooses how many names it sends: more than a proxy chain would ever add is refused
  // rather than looked up one by one (and not even collected).
  const names: string[] = [];
  for (const v of [xfh].flat()) {
    if (!v) continue;
    for (const part of v.split(',', MAX_FORWARDED_HOSTS + 1)) names.push(part);
    if (names.length > MAX_FORWARDED_HOSTS) return true;
  }
  for (const v of [fwd].flat()) {
    if (!v) continue;
    for (const m of v.matchAll(/(?:^|[;,\s])host\s*=\s*("[^"]*"|[^;,\s]*)/gi)) {
      names.push(m[1]!.replace(/^"|"$/g, ''));
      if (names.length > MAX_FORWARDED_HOSTS) return true;
    }
  }
  const own = facts.host ? store.ownerOf(facts.host) : undefined;
  for (const raw of names) {
    const name = normalizeHost(raw);
    // A forwarded host we cannot read is refused as well: the framework may read it differently.
    if (name === undefined) return true;
    if (name === '') continue;
    const owner = store.ownerOf(name);
    if (owner?.mtls && owner !== own) return true;
  }
  return false;
}

/** A name for a log line: JSON-quoted and cut short, whatever a client put in it. */
function quote(s: string): string {
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}...` : s);
}
