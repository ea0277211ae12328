import { constants, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { plainCopy } from '../internal/plain.js';
import { parse, type SchemaInput } from '../internal/schema.js';
import { describe, isPlainObject, rejectUnknown, underField } from '../internal/validate.js';
import { channels, type HandshakeMessage, type TlsErrorMessage } from '../observe/channels.js';
// ServerLimits is named by the TSDoc of `attach`.
import { type AttachOptions, applyLimits, resolveAttachOptions, type ServerLimits } from '../server/limits.js';
import { DEFAULT_CACHE_BYTES, Verifier, type VerifierStats } from '../verify/verifier.js';
import {
  compileSslObject,
  normalizeId,
  type SslEntry,
  type SslObject,
  type SslObjectView,
  sourceKey,
  takeFirstContext,
} from './object.js';
import { storeOptionsSchema } from './schema.js';
import { normalizeServername, SniIndex, sniPatternProblem } from './sni.js';

/** Options of {@link createSslStore}. */
export interface SslStoreOptions extends SchemaInput<typeof storeOptionsSchema> {}

/** A batch for {@link SslStore.apply}. */
export interface SslBatch {
  /** Objects to insert or replace. */
  set?: SslObject[];
  /** Ids of objects to remove (an id that is not there is ignored). */
  delete?: (string | number)[];
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

/**
 * Server options from {@link SslStore.tlsOptions}: spread into `https.createServer`, `http2.createSecureServer` or
 * `tls.createServer`.
 */
export interface MtlsServerOptions {
  SNICallback: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
  requestCert: true;
  rejectUnauthorized: false;
  allowHTTP1: true;
  minVersion: tls.SecureVersion;
  secureOptions: number;
  cert?: string[];
  key?: string[];
  ca?: string;
}

/** A set of SSL objects chosen per handshake by SNI and changeable while servers run. */
export interface SslStore {
  /**
   * Validates and inserts or replaces an object. Throws {@link MtlsGateConfigError}; on a throw the previous object
   * keeps serving.
   */
  set(object: SslObject): SslObjectView;
  get(id: string | number): SslObjectView | undefined;
  /**
   * Applies a batch at once: every object of `set` is validated and compiled, and every id of
   * `delete` checked, before anything changes; then all of it takes effect together (one change: one
   * generation, one rotation of ticket keys). An object whose input is the same as the one it
   * replaces keeps its compiled state and its connections' verdicts. Errors name the batch entry
   * (`set[2].client.ca`); on a throw nothing is applied. Returns the views set and the ids deleted.
   * With `skipInvalid` (a configuration source such as etcd, where each key stands alone), an invalid
   * object is left out instead, listed in `rejected`, and the object of its id keeps serving.
   *
   * @example
   * ```ts
   * import { createSslStore, type SslObject } from 'mtls-gate';
   *
   * declare const a: SslObject, b: SslObject;
   * const store = createSslStore();
   * store.apply({ set: [a, b] });
   * store.apply({ set: [{ ...b, status: 0 }], delete: [a.id] });
   * ```
   */
  apply(
    batch: SslBatch,
    options?: { skipInvalid?: boolean },
  ): { set: SslObjectView[]; deleted: string[]; rejected: { index: number; error: MtlsGateConfigError }[] };
  /** Removes an object; returns whether it existed. Open connections are not dropped. */
  delete(id: string | number): boolean;
  list(): SslObjectView[];
  /** The active object a client asking for `servername` gets, or undefined (handshake refused). */
  match(servername: string): SslObjectView | undefined;
  /** Server options wired to this store. */
  tlsOptions(options?: TlsOptionsOptions): MtlsServerOptions;
  /**
   * Keeps a running server in step with this store: on every change its TLS session ticket keys
   * are rotated (sessions made under the old configuration cannot resume) and, with `fallbackSni`,
   * its default context is replaced by the fallback object as it is now. Detached on 'close'.
   *
   * It also applies {@link ServerLimits} (handshake, headers, request and keep-alive timeouts,
   * header size, HTTP/2 streams) with safe defaults; `{ limits: false }` leaves the server's own
   * settings. Call it before `listen()`. Attaching again only replaces the limits.
   * Throws {@link MtlsGateConfigError} for a bad option, before changing anything. Returns the server.
   *
   * @example
   * ```ts
   * import http2 from 'node:http2';
   * import { createSslStore } from 'mtls-gate';
   *
   * const store = createSslStore();
   * const server = store.attach(http2.createSecureServer(store.tlsOptions()), {
   *   limits: { handshakeTimeoutMs: 5_000, headersTimeoutMs: 20_000, keepAliveTimeoutMs: 30_000 },
   * });
   * server.listen(8443);
   * ```
   */
  attach<S extends tls.Server>(server: S, options?: AttachOptions): S;
  readonly size: number;
  /** Chain-verification counters (for metrics and benchmarks). */
  verifierStats(): VerifierStats;
  /**
   * The TLS contexts kept (`cached`, at most `capacity`: the store's `contextCacheSize`), built on
   * handshakes since creation (`built`; the context checked when an object is set is not counted), and
   * dropped to make room (`evicted`).
   */
  contextStats(): { cached: number; capacity: number; built: number; evicted: number };
}

/** What the guard reads of a store; kept off the public type. */
export interface StoreInternals {
  readonly verifier: Verifier;
  /** Bumped on every change; the guard re-evaluates connections whose state is older. */
  generation(): number;
  matchEntry(servername: string): SslEntry | undefined;
  /** The object that owns a request host or a route host pattern (route-host rule, see internal/hostname.ts). */
  ownerOf(host: string): SslEntry | undefined;
  /** {@link StoreInternals.ownerOf} for a route host pattern, remembered until the next change. */
  ownerOfPattern(pattern: string): SslEntry | undefined;
  /** Every object, for reports (metrics). */
  entries(): IterableIterator<SslEntry>;
  fallbackEntry(): SslEntry | undefined;
  /**
   * True when ticket keys are derived from a `ticketSecret`: tickets may come from other processes holding the same
   * objects.
   */
  readonly sharedTickets: boolean;
}

const internals = new WeakMap<SslStore, StoreInternals>();

/** @internal The guard's access to a store. Throws for anything that is not a store. */
export function storeInternals(store: unknown): StoreInternals | undefined {
  return typeof store === 'object' && store !== null ? internals.get(store as SslStore) : undefined;
}

const TLS_OPTIONS = new Set(['sessionTickets']);
const APPLY_FIELDS = new Set(['set', 'delete']);

function disableRenegotiation(socket: tls.TLSSocket): void {
  socket.disableRenegotiation();
}

/**
 * Creates an SSL store.
 *
 * @example
 * ```ts
 * import https from 'node:https';
 * import { createSslStore } from 'mtls-gate';
 *
 * declare const cert: string, key: string, ca: string;
 * declare const app: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } });
 * const server = store.attach(https.createServer(store.tlsOptions(), app));
 * ```
 */
/** The code of the error a handshake with an SNI no object matches fails with. */
const UNKNOWN_SNI = 'MTLS_GATE_UNKNOWN_SNI';
/** TLS sockets whose client sent SNI (for the tls-error channel's `kind`). */
const sentSni = new WeakSet<object>();

export function createSslStore(input: SslStoreOptions = {}): SslStore {
  if (!isPlainObject(input))
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'options',
      `expected an object, received ${describe(input)}`,
    );
  const options = parse(storeOptionsSchema(), plainCopy(input, ''));
  let fallbackSni: string | undefined;
  if (options.fallbackSni !== undefined) {
    fallbackSni = normalizeServername(options.fallbackSni);
    const problem = sniPatternProblem(fallbackSni, false);
    if (problem) throw new MtlsGateConfigError(ErrorCodes.SNI_INVALID, 'fallbackSni', problem);
  }
  const cacheSize = options.verifyCacheSize ?? 10_000;
  const cacheBytes = options.verifyCacheBytes ?? DEFAULT_CACHE_BYTES;
  const ticketSecret = options.ticketSecret === undefined ? undefined : Buffer.from(options.ticketSecret);

  const entries = new Map<string, SslEntry>();
  const index = new SniIndex();
  // TLS contexts (about 50 KB of native memory each) of the most recently used objects: built on the
  // first handshake that needs one, rebuilt when an evicted one is needed again. Keyed by the compiled
  // entry: a changed object is a new entry and never gets its old context.
  const contextCap = options.contextCacheSize ?? 10_000;
  const contexts = new Map<SslEntry, tls.SecureContext>();
  const contextStats = { built: 0, evicted: 0 };
  const keepContext = (entry: SslEntry, context: tls.SecureContext) => {
    contexts.set(entry, context);
    if (contexts.size > contextCap) {
      contexts.delete(contexts.keys().next().value as SslEntry);
      contextStats.evicted++;
    }
  };
  const contextOf = (entry: SslEntry): tls.SecureContext => {
    let c = contexts.get(entry);
    if (c) {
      // Most recently used last.
      contexts.delete(entry);
      contexts.set(entry, c);
      return c;
    }
    c = entry.buildContext();
    contextStats.built++;
    keepContext(entry, c);
    return c;
  };
  /**
   * An entry joins the store: the context built to check it is kept while the cache has room, and
   * otherwise dropped at once rather than evicting another. Dropped at once, its native memory is
   * reused by the next object's; kept and evicted later, it would leave holes in the native heap
   * between the objects set after it (RSS that never comes back).
   */
  const adopt = (entry: SslEntry) => {
    const first = takeFirstContext(entry);
    if (first && !contexts.has(entry) && contexts.size < contextCap) contexts.set(entry, first);
  };
  const forget = (entry: SslEntry | undefined) => {
    if (entry) contexts.delete(entry);
  };
  const verifier = new Verifier(cacheSize, cacheBytes);
  let generation = 0;

  const matchEntry = (servername: string): SslEntry | undefined => {
    const id = index.lookup(normalizeServername(servername));
    return id === undefined ? undefined : entries.get(id);
  };
  // Disabled (status 0) mTLS objects keep their hosts: no connection can choose them, so a request
  // for one of their hosts is refused (sni_host_mismatch) instead of reaching routes bound to those
  // hosts without a certificate, or falling under a parent domain's tenant. A disabled claim counts
  // where it is the most specific one; at equal rank the active object owns the host.
  const dormant = new SniIndex();
  const dormantSnis = (e: SslEntry | undefined): readonly string[] => (e && e.status === 0 && e.mtls ? e.snis : []);
  let dormantCount = 0;
  const ownerOf = (host: string): SslEntry | undefined => {
    const name = normalizeServername(host);
    let id: string | undefined;
    if (dormantCount === 0) id = index.owner(name);
    else {
      const active = index.ownerClaim(name);
      const off = dormant.ownerClaim(name);
      id = off && (!active || off.rank > active.rank) ? off.id : active?.id;
    }
    return id === undefined ? undefined : entries.get(id);
  };
  // Route host patterns come from configuration (a bounded set): their owners are remembered until
  // the store changes, so the router's check costs a Map lookup per request.
  const patternOwners = new Map<string, SslEntry | null>();
  const ownerOfPattern = (pattern: string): SslEntry | undefined => {
    let owner = patternOwners.get(pattern);
    if (owner === undefined) {
      owner = ownerOf(pattern) ?? null;
      if (patternOwners.size >= 65_536) patternOwners.clear();
      patternOwners.set(pattern, owner);
    }
    return owner ?? undefined;
  };
  const fallbackEntry = () => (fallbackSni === undefined ? undefined : matchEntry(fallbackSni));

  const activeSnis = (e: SslEntry | undefined): readonly string[] => (e && e.status === 1 ? e.snis : []);
  const servers = new Set<tls.Server>();
  // With a ticket secret, the keys follow from the secret and what the store holds: an XOR of one
  // digest per object (id and input), kept up to date per change in O(changed). Two processes
  // holding the same objects derive the same keys; any change of the objects gives new ones.
  const content = Buffer.alloc(32);
  const mix = (e: SslEntry | undefined) => {
    if (!e || !ticketSecret) return;
    const d = createHash('sha256').update(e.id).update('\0').update(e.sessionSource).digest();
    for (let i = 0; i < 32; i++) content[i]! ^= d[i]!;
  };
  const ticketKeys = (): Buffer =>
    ticketSecret
      ? Buffer.from(hkdfSync('sha256', ticketSecret, content, 'mtls-gate session ticket keys', 48))
      : randomBytes(48);
  /** One change of the store; `fallbackTouched` when the object answering clients without SNI is another one now. */
  const changed = (fallbackTouched: boolean, rotate = true) => {
    generation++;
    patternOwners.clear();
    // A change of CRLs alone keeps the ticket keys: connections and resumed sessions are judged
    // again at their next request anyway (the generation), and sessions need not end for it.
    const keys = rotate ? ticketKeys() : undefined;
    for (const server of servers) {
      if (keys) server.setTicketKeys(keys);
      if (fallbackTouched) {
        const fb = fallbackEntry();
        // Without a fallback object, a context with no certificate makes no-SNI handshakes fail.
        server.setSecureContext(
          fb ? { cert: fb.tls.cert, key: fb.tls.key, ...(fb.tls.ca ? { ca: fb.tls.ca } : {}) } : {},
        );
      }
    }
  };
  const safeId = (id: unknown): string | undefined => {
    try {
      return normalizeId(id);
    } catch {
      return undefined;
    }
  };

  /** Puts a compiled entry in place of the object of its id, moving only the names that changed. */
  /** Places an entry; false when only its revocation data changed (ticket keys then stay). */
  const place = (entry: SslEntry): boolean => {
    const old = entries.get(entry.id);
    mix(old);
    mix(entry);
    // A replaced object keeps its place among objects claiming the same name.
    const before = activeSnis(old);
    const after = activeSnis(entry);
    index.remove(
      entry.id,
      before.filter((n) => !after.includes(n)),
    );
    dormant.remove(entry.id, dormantSnis(old));
    entries.set(entry.id, entry);
    if (old !== entry) {
      forget(old);
      adopt(entry);
    }
    index.add(entry.id, after);
    dormant.add(entry.id, dormantSnis(entry));
    dormantCount += (dormantSnis(entry).length > 0 ? 1 : 0) - (dormantSnis(old).length > 0 ? 1 : 0);
    // Only a change of revocation data alone keeps the keys (an object set again unchanged still rotates them, as
    // before).
    return !(old && old.source !== entry.source && old.sessionSource === entry.sessionSource);
  };
  const unplace = (e: SslEntry): void => {
    mix(e);
    index.remove(e.id, activeSnis(e));
    dormant.remove(e.id, dormantSnis(e));
    if (dormantSnis(e).length > 0) dormantCount--;
    entries.delete(e.id);
    forget(e);
  };

  const store: SslStore = {
    set(object) {
      const entry = compileSslObject(object);
      const fallbackBefore = fallbackEntry();
      const rotate = place(entry);
      changed(fallbackBefore !== fallbackEntry(), rotate);
      return entry.view;
    },
    apply(input, applyOptions = {}) {
      if (!isPlainObject(input))
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          'batch',
          `expected { set?, delete? }, received ${describe(input)}`,
        );
      const batch = plainCopy(input, '', { shallow: true }) as Record<string, unknown>;
      rejectUnknown(batch, APPLY_FIELDS, '');
      const sets: unknown = batch.set ?? [];
      const deletes: unknown = batch.delete ?? [];
      if (!Array.isArray(sets))
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          'set',
          `expected an array of SSL objects, received ${describe(sets)}`,
        );
      if (!Array.isArray(deletes))
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          'delete',
          `expected an array of ids, received ${describe(deletes)}`,
        );
      // Everything is validated and compiled before anything changes. An object whose input did not
      // change keeps its compiled entry (its TLS context, and its connections' verdicts).
      const next: SslEntry[] = [];
      const ids = new Set<string>();
      const rejected: { index: number; error: MtlsGateConfigError }[] = [];
      const refuse = (index: number, err: unknown) => {
        if (!applyOptions.skipInvalid || !(err instanceof MtlsGateConfigError)) throw err;
        rejected.push({ index, error: err });
      };
      sets.forEach((object: unknown, i: number) => {
        let entry: SslEntry;
        try {
          // Read once: the copy is what is compared and compiled (internal/plain.ts).
          const copy = isPlainObject(object) ? (plainCopy(object, '') as Record<string, unknown>) : object;
          const old = isPlainObject(copy) ? entries.get(safeId(copy.id) ?? '') : undefined;
          entry = old && old.source === sourceKey(copy) ? old : compileSslObject(copy);
        } catch (err) {
          refuse(i, underField(err, `set[${i}]`));
          return;
        }
        if (ids.has(entry.id)) {
          refuse(
            i,
            new MtlsGateConfigError(
              ErrorCodes.INVALID_OPTION,
              `set[${i}].id`,
              `${JSON.stringify(entry.id)} is set twice in one batch`,
            ),
          );
          return;
        }
        ids.add(entry.id);
        next.push(entry);
      });
      const gone = deletes.map((id: unknown, i: number) => {
        const key = safeId(id);
        if (key === undefined)
          throw new MtlsGateConfigError(
            ErrorCodes.INVALID_OPTION,
            `delete[${i}]`,
            `expected an SSL object id, received ${describe(id)}`,
          );
        if (ids.has(key))
          throw new MtlsGateConfigError(
            ErrorCodes.INVALID_OPTION,
            `delete[${i}]`,
            `${JSON.stringify(key)} is both set and deleted`,
          );
        return key;
      });
      const fallbackBefore = fallbackEntry();
      let touched = false;
      let rotate = false;
      for (const entry of next) {
        if (entries.get(entry.id) === entry) continue;
        touched = true;
        if (place(entry)) rotate = true;
      }
      const deleted: string[] = [];
      for (const id of gone) {
        const e = entries.get(id);
        if (!e) continue;
        touched = true;
        rotate = true;
        unplace(e);
        deleted.push(id);
      }
      // One change for the whole batch: one generation, one ticket-key rotation.
      if (touched) changed(fallbackBefore !== fallbackEntry(), rotate);
      return { set: next.map((e) => e.view), deleted, rejected };
    },
    get(id) {
      const key = safeId(id);
      return key === undefined ? undefined : entries.get(key)?.view;
    },
    delete(id) {
      const key = safeId(id);
      const e = key === undefined ? undefined : entries.get(key);
      if (!e) return false;
      const fallbackBefore = fallbackEntry();
      unplace(e);
      changed(fallbackBefore !== fallbackEntry());
      return true;
    },
    list() {
      return [...entries.values()].map((e) => e.view);
    },
    match(servername) {
      return matchEntry(servername)?.view;
    },
    tlsOptions(input = {}) {
      if (!isPlainObject(input))
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          'options',
          `expected an object, received ${describe(input)}`,
        );
      const opts = plainCopy(input, '') as Record<string, unknown> & TlsOptionsOptions;
      rejectUnknown(opts, TLS_OPTIONS, '');
      const tickets = opts.sessionTickets ?? false;
      if (typeof tickets !== 'boolean') {
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          'sessionTickets',
          `expected a boolean, received ${describe(tickets)}`,
        );
      }
      const fallback = fallbackEntry();
      return {
        SNICallback(this: unknown, servername, cb) {
          // Node calls it on the TLS socket: remembered, so that a refused handshake is told from one without SNI.
          if (typeof this === 'object' && this !== null) sentSni.add(this);
          const entry = matchEntry(servername);
          // No match: refuse the handshake. There is no default certificate (APISIX behaves the same).
          if (entry) {
            let context: tls.SecureContext;
            try {
              context = contextOf(entry);
            } catch (err) {
              // Built once already when the object was set; should it fail now, this handshake fails, not the process.
              return cb(err as Error);
            }
            cb(null, context);
          } else
            cb(
              Object.assign(new Error(`mtls-gate: no SSL object matches SNI "${servername.slice(0, 255)}"`), {
                code: UNKNOWN_SNI,
                servername: servername.slice(0, 255),
              }),
            );
        },
        requestCert: true,
        // Never fail the handshake on a missing or bad client certificate: the guard answers 400.
        rejectUnauthorized: false,
        // No ALPNProtocols: node:http2 offers h2 (and http/1.1 with allowHTTP1), node:https offers
        // http/1.1 only. A list here would make an https server offer an h2 it cannot speak.
        allowHTTP1: true,
        minVersion: 'TLSv1.2',
        // TLS 1.2 renegotiation is refused: a client could renegotiate to another certificate after
        // the guard judged the first, and each renegotiation is a handshake it makes us pay for.
        // (TLS 1.3 has no renegotiation.) SSL options are taken from the server's context when the
        // connection is made and survive the SNI switch, so this covers every SSL object.
        secureOptions: constants.SSL_OP_NO_RENEGOTIATION | (tickets ? 0 : constants.SSL_OP_NO_TICKET),
        // Clients without SNI get the fallback object's certificate, as it is now; without a
        // fallback the default context has no certificate and such handshakes fail.
        ...(fallback
          ? { cert: fallback.tls.cert, key: fallback.tls.key, ...(fallback.tls.ca ? { ca: fallback.tls.ca } : {}) }
          : {}),
      };
    },
    attach(server, opts) {
      const limits = resolveAttachOptions(opts);
      if (
        typeof server !== 'object' ||
        server === null ||
        typeof (server as Partial<tls.Server>).setTicketKeys !== 'function'
      ) {
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          'server',
          `expected a TLS server (node:https, node:http2 secure, node:tls), received ${describe(server)}`,
        );
      }
      if (limits) applyLimits(server, limits);
      if (!servers.has(server)) {
        servers.add(server);
        if (ticketSecret) server.setTicketKeys(ticketKeys());
        server.once('close', () => servers.delete(server));
        // Also for servers made with other options than tlsOptions(): Node's own check refuses a
        // renegotiation of a socket marked so (ERR_TLS_RENEGOTIATION_DISABLED) and closes it.
        server.on('secureConnection', disableRenegotiation);
        server.on('secureConnection', (socket: tls.TLSSocket) => {
          if (channels.handshake.hasSubscribers) {
            const sni = (socket as { servername?: unknown }).servername;
            channels.handshake.publish({
              sni: typeof sni === 'string' && sni !== '' ? sni : undefined,
              resumed: socket.isSessionReused(),
              protocol: socket.getProtocol(),
              authorized: socket.authorized,
              server,
            } satisfies HandshakeMessage);
          }
        });
        server.on('tlsClientError', (err: Error & { code?: string; servername?: string }, socket: tls.TLSSocket) => {
          if (!channels.tlsError.hasSubscribers) return;
          const sni =
            err.servername ??
            (typeof (socket as { servername?: unknown }).servername === 'string'
              ? (socket as { servername?: string }).servername || undefined
              : undefined);
          // No SNI: the client never reached the SNI callback, and without a fallback object the default
          // context has no certificate to offer (OpenSSL finds no cipher or signature algorithm).
          const noCertificate = /NO_SHARED_CIPHER|NO_SUITABLE_SIGNATURE_ALGORITHM/.test(err.code ?? '');
          const kind =
            err.code === UNKNOWN_SNI
              ? 'unknown_sni'
              : !sentSni.has(socket) && !fallbackEntry() && noCertificate
                ? 'no_sni'
                : 'tls';
          channels.tlsError.publish({
            kind,
            sni,
            code: err.code,
            message: String(err.message).slice(0, 300),
            server,
          } satisfies TlsErrorMessage);
        });
      }
      return server;
    },
    get size() {
      return entries.size;
    },
    verifierStats() {
      return verifier.stats();
    },
    contextStats() {
      return { cached: contexts.size, capacity: contextCap, built: contextStats.built, evicted: contextStats.evicted };
    },
  };
  internals.set(store, {
    verifier,
    generation: () => generation,
    matchEntry,
    ownerOf,
    ownerOfPattern,
    fallbackEntry,
    sharedTickets: ticketSecret !== undefined,
    entries: () => entries.values(),
  });
  return Object.freeze(store);
}
