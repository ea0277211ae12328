import { constants } from 'node:crypto';
import type tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { Verifier, type VerifierStats } from '../verify/verifier.js';
import { describe } from '../verify/ca-set.js';
import { compileSslObject, isPlainObject, normalizeId, rejectUnknown, type SslEntry, type SslObject, type SslObjectView } from './object.js';
import { SniIndex, normalizeServername, sniPatternProblem } from './sni.js';

/** Options of {@link createSslStore}. */
export interface SslStoreOptions {
  /** Server name assumed for clients that send no SNI. Without it such handshakes are refused. */
  fallbackSni?: string;
  /** Verdicts kept in the chain-verification cache (LRU). Default 10,000. */
  verifyCacheSize?: number;
}

/** Options of {@link SslStore.tlsOptions}. */
export interface TlsOptionsOptions {
  /**
   * Offer TLS session tickets (resumption). Default false: every connection does a full handshake,
   * the only way to rule out in TLS what the guard otherwise checks per request (a session made
   * under one SNI resumed under another, nodejs/node#35317 resumption without a certificate, a
   * resumed TLS 1.2 session that reports no SNI at all). When true the guard still checks every
   * resumed session against the current SSL object.
   */
  sessionTickets?: boolean;
}

/** Server options from {@link SslStore.tlsOptions}: spread into `https.createServer`, `http2.createSecureServer` or `tls.createServer`. */
export interface MtlsServerOptions {
  SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
  requestCert: true;
  rejectUnauthorized: false;
  ALPNProtocols: string[];
  allowHTTP1: true;
  minVersion: tls.SecureVersion;
  secureOptions: number;
  cert?: string[];
  key?: string[];
  ca?: string;
}

/** A set of SSL objects chosen per handshake by SNI and changeable while servers run. */
export interface SslStore {
  /** Validates and inserts or replaces an object. Throws {@link MtlsGateConfigError}; on a throw the previous object keeps serving. */
  set(object: SslObject): SslObjectView;
  get(id: string | number): SslObjectView | undefined;
  /** Removes an object; returns whether it existed. Open connections are not dropped. */
  delete(id: string | number): boolean;
  list(): SslObjectView[];
  /** The active object a client asking for `servername` gets, or undefined (handshake refused). */
  match(servername: string): SslObjectView | undefined;
  /** Server options wired to this store. */
  tlsOptions(options?: TlsOptionsOptions): MtlsServerOptions;
  readonly size: number;
  /** Chain-verification counters (for metrics and benchmarks). */
  verifierStats(): VerifierStats;
}

/** What the guard reads of a store; kept off the public type. */
export interface StoreInternals {
  readonly verifier: Verifier;
  /** Bumped on every change; the guard re-evaluates connections whose state is older. */
  generation(): number;
  matchEntry(servername: string): SslEntry | undefined;
  fallbackEntry(): SslEntry | undefined;
}

const internals = new WeakMap<SslStore, StoreInternals>();

/** @internal The guard's access to a store. Throws for anything that is not a store. */
export function storeInternals(store: unknown): StoreInternals | undefined {
  return typeof store === 'object' && store !== null ? internals.get(store as SslStore) : undefined;
}

const STORE_OPTIONS = new Set(['fallbackSni', 'verifyCacheSize']);
const TLS_OPTIONS = new Set(['sessionTickets']);

/**
 * Creates an SSL store.
 *
 * @example
 * ```ts
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } });
 * const server = https.createServer(store.tlsOptions(), app);
 * ```
 */
export function createSslStore(options: SslStoreOptions = {}): SslStore {
  if (!isPlainObject(options)) throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'options', `expected an object, received ${describe(options)}`);
  rejectUnknown(options, STORE_OPTIONS, '');
  let fallbackSni: string | undefined;
  if (options.fallbackSni !== undefined) {
    if (typeof options.fallbackSni !== 'string') {
      throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'fallbackSni', `expected a host name, received ${describe(options.fallbackSni)}`);
    }
    fallbackSni = normalizeServername(options.fallbackSni);
    const problem = sniPatternProblem(fallbackSni, false);
    if (problem) throw new MtlsGateConfigError(ErrorCodes.SNI_INVALID, 'fallbackSni', problem);
  }
  const cacheSize: unknown = options.verifyCacheSize ?? 10_000;
  if (typeof cacheSize !== 'number' || !Number.isInteger(cacheSize) || cacheSize < 1) {
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'verifyCacheSize', `expected a positive integer, received ${describe(cacheSize)}`);
  }

  const entries = new Map<string, SslEntry>();
  const index = new SniIndex();
  const verifier = new Verifier(cacheSize);
  let generation = 0;

  const matchEntry = (servername: string): SslEntry | undefined => {
    const id = index.lookup(normalizeServername(servername));
    return id === undefined ? undefined : entries.get(id);
  };
  const fallbackEntry = () => (fallbackSni === undefined ? undefined : matchEntry(fallbackSni));

  const unindex = (e: SslEntry) => {
    if (e.status === 1) index.remove(e.id, e.snis);
  };

  const store: SslStore = {
    set(object) {
      const entry = compileSslObject(object);
      const old = entries.get(entry.id);
      if (old) unindex(old);
      entries.set(entry.id, entry);
      if (entry.status === 1) index.add(entry.id, entry.snis);
      generation++;
      return entry.view;
    },
    get(id) {
      return entries.get(normalizeId(id))?.view;
    },
    delete(id) {
      const key = normalizeId(id);
      const e = entries.get(key);
      if (!e) return false;
      unindex(e);
      entries.delete(key);
      generation++;
      return true;
    },
    list() {
      return [...entries.values()].map((e) => e.view);
    },
    match(servername) {
      return matchEntry(servername)?.view;
    },
    tlsOptions(opts = {}) {
      if (!isPlainObject(opts)) throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'options', `expected an object, received ${describe(opts)}`);
      rejectUnknown(opts, TLS_OPTIONS, '');
      const tickets = opts.sessionTickets ?? false;
      if (typeof tickets !== 'boolean') {
        throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'sessionTickets', `expected a boolean, received ${describe(tickets)}`);
      }
      const fallback = fallbackEntry();
      return {
        SNICallback(servername, cb) {
          const entry = matchEntry(servername);
          // No match: refuse the handshake. There is no default certificate (APISIX behaves the same).
          if (entry) cb(null, entry.context);
          else cb(new Error(`mtls-gate: no SSL object matches SNI "${servername}"`));
        },
        requestCert: true,
        // Never fail the handshake on a missing or bad client certificate: the guard answers 400.
        rejectUnauthorized: false,
        ALPNProtocols: ['h2', 'http/1.1'],
        allowHTTP1: true,
        minVersion: 'TLSv1.2',
        secureOptions: tickets ? 0 : constants.SSL_OP_NO_TICKET,
        // Clients without SNI get the fallback object's certificate, as it is now; without a
        // fallback the default context has no certificate and such handshakes fail.
        ...(fallback ? { cert: fallback.tls.cert, key: fallback.tls.key, ...(fallback.tls.ca ? { ca: fallback.tls.ca } : {}) } : {}),
      };
    },
    get size() {
      return entries.size;
    },
    verifierStats() {
      return verifier.stats();
    },
  };
  internals.set(store, {
    verifier,
    generation: () => generation,
    matchEntry,
    fallbackEntry,
  });
  return Object.freeze(store);
}
