import { createPrivateKey, hash, type KeyObject, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { plainCopy } from '../internal/plain.js';
import { compileLinearPattern, MAX_PATTERN_LENGTH } from '../internal/regex.js';
import { parse } from '../internal/schema.js';
import { describe, isPlainObject, pemText } from '../internal/validate.js';
import { type CaSet, compileCaSet } from '../verify/ca-set.js';
import { parseCert, pemBlocks, readExtensionsThoroughly } from '../verify/cert.js';
import { type Crl, crlDers, parseCrl } from '../verify/crl.js';
import { CrlFetcher } from '../verify/crl-fetch.js';
import { encodedNames } from '../verify/der.js';
import { OcspClient } from '../verify/ocsp.js';
import type { RevocationMode, RevocationPolicy } from '../verify/revocation.js';
import { privateKeyJwk, readChain, sameKey } from './material.js';
import { MAX_DEPTH, MAX_PEM, type SslProtocol, sslId, sslObjectSchema } from './schema.js';
import { normalizeServername, sniPatternProblem } from './sni.js';

export type { SslClientOptions, SslObject, SslProtocol } from './schema.js';

/** What `get`, `list` and `match` return: the object as stored, private keys left out. */
export interface SslObjectView {
  readonly id: string;
  readonly cert: string;
  readonly certs: readonly string[];
  readonly snis: readonly string[];
  /** True when `snis` were taken from the certificate rather than given. */
  readonly snisDerived: boolean;
  readonly client:
    | Readonly<{
        ca: string;
        depth: number;
        skipMtlsUriRegex: readonly string[];
        revocation?: Readonly<{
          mode: RevocationMode;
          scope: 'leaf' | 'chain';
          crls: number;
          ocsp: boolean;
          crlFetch: boolean;
        }>;
      }>
    | undefined;
  readonly status: 0 | 1;
  readonly sslProtocols: readonly SslProtocol[] | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly desc: string | undefined;
  /** Server certificate expiry (APISIX does not check it; we report it). */
  readonly validTo: Date;
}

/** A validated, compiled SSL object: immutable, replaced whole on every change. */
export interface SslEntry {
  readonly id: string;
  /** Unique per compiled object: a changed object never inherits what was remembered for the old one. */
  readonly key: string;
  /** Digest of the input the object was compiled from: a batch that sets the same input again keeps this entry. */
  readonly source: string;
  readonly snis: readonly string[];
  /**
   * Builds the object's TLS context (the store keeps the most recently used ones, see
   * `contextCacheSize`). For material node:crypto checked, `compileSslObject` built one to check it (`takeFirstContext`).
   */
  readonly buildContext: () => tls.SecureContext;
  readonly client:
    | {
        readonly caSet: CaSet;
        readonly depth: number;
        readonly skip: readonly { test(path: string): boolean }[];
        readonly revocation: RevocationPolicy | undefined;
      }
    | undefined;
  /**
   * Digest of the input without its revocation data: a change of CRLs alone neither rotates ticket
   * keys nor forgets which certificates this object accepted in full handshakes (the key of that
   * record; revocation is checked again on every judgement).
   */
  readonly sessionSource: string;
  /** True when the object has `client`: it owns its hosts for the guard's SNI/Host binding. */
  readonly mtls: boolean;
  readonly status: 0 | 1;
  readonly sslProtocols: ReadonlySet<string> | undefined;
  readonly view: SslObjectView;
  /** Material for a default (no-SNI) context. */
  readonly tls: { cert: string[]; key: string[]; ca: string | undefined };
  /**
   * The node:crypto objects made while validating (parsed certificates, the key), kept for as long
   * as the entry and its TLS context. Left to the garbage collector they would be freed at some
   * later GC, leaving holes in the native heap between the contexts of the objects set after them;
   * with 10,000 objects those holes made glibc's malloc slower on every handshake (+25 % CPU per
   * handshake, measured). Freed together with the context instead, their memory is reused.
   */
  readonly retained: readonly object[];
}

// Objects of one tenant usually share one client CA bundle: compile it once. A CaSet is immutable,
// so sharing it is safe; equal bundles then also share verdicts. Bounded, most recently used kept.
const caSets = new Map<string, CaSet>();
function sharedCaSet(pem: unknown): CaSet {
  if (typeof pem === 'string') {
    const hit = caSets.get(pem);
    if (hit) {
      caSets.delete(pem);
      caSets.set(pem, hit);
      return hit;
    }
  }
  const set = compileCaSet(pem, 'client.ca');
  caSets.set(pem as string, set);
  if (caSets.size > 256) caSets.delete(caSets.keys().next().value as string);
  return set;
}

// Empty lists and labels are shared (frozen, so no object can change another's): every object in a
// store is heap the garbage collector walks, and most SSL objects have no extra pairs, labels or
// skip-list.
const EMPTY: readonly never[] = Object.freeze([]);
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const frozenList = <T>(list: T[]): readonly T[] => (list.length === 0 ? EMPTY : Object.freeze(list));

/** Matcher states all skip-list patterns of one object may have together (see internal/regex.ts). */
export const MAX_SKIP_COST = 1024;
export { MAX_DEPTH };

let compiled = 0;

const invalid = (field: string, msg: string, cause?: unknown) =>
  new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, msg, cause);

/** Digest of an SSL object's input, as copied by `plainCopy`: equal inputs, equal digests. */
export function sourceKey(input: unknown): string {
  const text = JSON.stringify(input, (_k, v: unknown) =>
    v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('base64')}` : v,
  );
  return hash('sha256', text ?? '', 'base64');
}

/** The input's digest without `client.crl` / `client.revocation` (see SslEntry.sessionSource). */
function sessionSourceOf(copy: Record<string, unknown>, source: string): string {
  const client = copy.client;
  if (
    !isPlainObject(client) ||
    (client.crl === undefined &&
      client.revocation === undefined &&
      client.ocsp === undefined &&
      client.crlFetch === undefined)
  )
    return source;
  const { crl: _crl, revocation: _revocation, ocsp: _ocsp, crlFetch: _crlFetch, ...rest } = client;
  return sourceKey({ ...copy, client: rest });
}

// OCSP clients and CRL fetchers are shared by every object with the same settings, so that their
// caches and requests in flight survive a change of the objects (a reload would otherwise ask every
// responder again). Answers are keyed by issuer key and serial (CRLs by issuer key and URL), so
// sharing mixes nothing. At most 64 settings each, the oldest dropped.
function sharedBySettings<T>(map: Map<string, T>, key: string, make: () => T): T {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    if (map.size >= 64) map.delete(map.keys().next().value as string);
    map.set(key, v);
  }
  return v;
}
const ocspClients = new Map<string, OcspClient>();
const ocspClientFor = (timeoutMs: number, cacheTtlMs: number, nonce: boolean) =>
  sharedBySettings(
    ocspClients,
    `${timeoutMs}:${cacheTtlMs}:${nonce}`,
    () => new OcspClient({ timeoutMs, cacheTtlMs, nonce }),
  );
const crlFetchers = new Map<string, CrlFetcher>();
const crlFetcherFor = (timeoutMs: number, maxBytes: number, cacheTtlMs: number) =>
  sharedBySettings(
    crlFetchers,
    `${timeoutMs}:${maxBytes}:${cacheTtlMs}`,
    () => new CrlFetcher({ timeoutMs, maxBytes, cacheTtlMs }),
  );

const hostSet = (hosts: readonly string[] | undefined) =>
  hosts && new Set(hosts.map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')));

/**
 * `client.crl` and `client.revocation` compiled: every CRL read (refusing what is not checked), and a
 * CRL naming a CA of `client.ca` verified against it now. CRLs of intermediates are verified when a
 * chain through that intermediate is checked. Mode `skip` checks nothing.
 */
function compileRevocation(
  crl: unknown,
  settings: { mode?: RevocationMode; scope?: 'leaf' | 'chain' } | undefined,
  caSet: CaSet,
  ocspSettings:
    | true
    | { responder?: string; timeoutMs?: number; cacheTtlMs?: number; nonce?: boolean; allowedHosts?: string[] }
    | undefined,
  fetchSettings:
    | true
    | { timeoutMs?: number; maxBytes?: number; cacheTtlMs?: number; allowedHosts?: string[] }
    | undefined,
):
  | {
      policy: RevocationPolicy | undefined;
      view: { mode: RevocationMode; scope: 'leaf' | 'chain'; crls: number; ocsp: boolean; crlFetch: boolean };
    }
  | undefined {
  if (crl === undefined && settings === undefined && ocspSettings === undefined && fetchSettings === undefined)
    return undefined;
  const mode = settings?.mode ?? 'strict';
  const scope = settings?.scope ?? 'leaf';
  const items = crl === undefined ? [] : Array.isArray(crl) ? crl : [crl];
  const crls = new Map<string, Crl[]>();
  let count = 0;
  items.forEach((item, i) => {
    const field = Array.isArray(crl) ? `client.crl[${i}]` : 'client.crl';
    const ders = crlDers(item as string | Uint8Array);
    if (ders.length === 0)
      throw new MtlsGateConfigError(
        ErrorCodes.CRL_INVALID,
        field,
        'no "-----BEGIN X509 CRL-----" block (or DER CRL) found',
      );
    ders.forEach((der, j) => {
      const where = ders.length > 1 ? `${field}[${j}]` : field;
      let parsed: Crl;
      try {
        parsed = parseCrl(der);
      } catch (err) {
        throw new MtlsGateConfigError(ErrorCodes.CRL_INVALID, where, (err as Error).message, err);
      }
      // Several CAs may share the name (a key rollover): one of them must have signed it.
      const named = caSet.anchors.filter((a) => encodedNames(a.der).subject === parsed.issuer);
      if (named.length > 0 && !named.some((a) => parsed.signedBy(a.publicKey))) {
        throw new MtlsGateConfigError(
          ErrorCodes.CRL_INVALID,
          where,
          `the CRL names the CA "${named[0]!.subject.replace(/\n/g, ', ')}" as issuer but is not signed by it`,
        );
      }
      const list = crls.get(parsed.issuer) ?? [];
      list.push(parsed);
      crls.set(parsed.issuer, list);
      count++;
    });
  });
  const o = ocspSettings === true ? {} : ocspSettings;
  const ocsp =
    o &&
    Object.freeze({
      responder: o.responder,
      client: ocspClientFor(o.timeoutMs ?? 3000, o.cacheTtlMs ?? 3_600_000, o.nonce ?? false),
      allowedHosts: hostSet(o.allowedHosts),
    });
  const f = fetchSettings === true ? {} : fetchSettings;
  const crlFetch =
    f &&
    Object.freeze({
      fetcher: crlFetcherFor(f.timeoutMs ?? 5000, f.maxBytes ?? 10 * 1024 * 1024, f.cacheTtlMs ?? 3_600_000),
      allowedHosts: hostSet(f.allowedHosts),
    });
  const view = Object.freeze({ mode, scope, crls: count, ocsp: ocsp !== undefined, crlFetch: crlFetch !== undefined });
  return {
    policy:
      mode === 'skip'
        ? undefined
        : Object.freeze({ mode, scope, crls, ...(ocsp ? { ocsp } : {}), ...(crlFetch ? { crlFetch } : {}) }),
    view,
  };
}

/** Normalises an SSL object id, or throws naming `field`. */
export function normalizeId(id: unknown, field = 'id'): string {
  return String(parse(sslId(), id, field));
}

function pemString(raw: unknown, field: string): string {
  if (raw === undefined) throw new MtlsGateConfigError(ErrorCodes.MISSING_FIELD, field, 'is required');
  const v = pemText(raw);
  if (typeof v !== 'string') throw invalid(field, `expected PEM text (a string or a Buffer), received ${describe(v)}`);
  if (v.length > MAX_PEM) throw invalid(field, `is ${v.length} characters, over the ${MAX_PEM} limit`);
  return v;
}

function certChain(pem: string, field: string): X509Certificate[] {
  const blocks = pemBlocks(pem, 'CERTIFICATE');
  if (blocks.length === 0)
    throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, field, 'no "-----BEGIN CERTIFICATE-----" block found');
  return blocks.map((der, i) => {
    const where = blocks.length > 1 ? `${field}[${i}]` : field;
    let c: X509Certificate;
    try {
      c = new X509Certificate(der);
    } catch (err) {
      throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, where, 'certificate cannot be parsed', err);
    }
    // OpenSSL parses some certificates whose dates it cannot print ("Bad time value").
    if (!Number.isFinite(Date.parse(c.validFrom)) || !Number.isFinite(Date.parse(c.validTo))) {
      throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, where, "the certificate's validity dates cannot be read");
    }
    return c;
  });
}

function privateKey(pem: string, field: string): KeyObject {
  if (/ENCRYPTED/.test(pem))
    throw new MtlsGateConfigError(
      ErrorCodes.PEM_INVALID,
      field,
      'encrypted private keys are not supported; decrypt it first',
    );
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new MtlsGateConfigError(
      ErrorCodes.PEM_INVALID,
      field,
      `private key cannot be parsed (${(err as Error).message})`,
      err,
    );
  }
}

interface Pair {
  readonly leafDer: Buffer;
  /** The certificates only: a combined cert + key PEM must not carry the key into views. */
  readonly cert: string;
  readonly key: string;
  readonly validTo: Date;
  readonly natives: object[];
  /** Checked by the DER reader (ssl/material.ts); false: by node:crypto, and a TLS context is built to check it. */
  readonly fast: boolean;
}

function pair(certPem: unknown, keyPem: unknown, certField: string, keyField: string): Pair {
  const cert = pemString(certPem, certField);
  const key = pemString(keyPem, keyField);
  if (!/ENCRYPTED/.test(key)) {
    const chain = readChain(cert);
    const pub = chain && privateKeyJwk(key);
    if (chain && pub && sameKey(chain[0]!.jwk, pub)) {
      const leaf = chain[0]!;
      const pem = chain.map((c) => c.pem).join('');
      return { leafDer: leaf.der, cert: pem, key, validTo: leaf.notAfter, natives: [], fast: true };
    }
  }
  // Key types and encodings the DER reader does not vouch for, and every error: node:crypto decides.
  const chain = certChain(cert, certField);
  const keyObject = privateKey(key, keyField);
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new MtlsGateConfigError(
      ErrorCodes.KEY_MISMATCH,
      keyField,
      `private key does not match the certificate in ${certField} ("${(leaf.subject ?? '').replace(/\n/g, ', ')}")`,
    );
  }
  return {
    leafDer: leaf.raw,
    cert: chain.map((c) => c.toString()).join(''),
    key,
    validTo: new Date(leaf.validTo),
    natives: [...chain, keyObject],
    fast: false,
  };
}

/**
 * `client.ca` as Node's `tls` takes `ca`: one bundle (string or Buffer) or an array of them, each
 * holding one or more certificates; joined into one bundle (error fields then count certificates
 * across the whole list: `client.ca[2]` is the third certificate).
 */
function caBundle(v: unknown): unknown {
  if (!Array.isArray(v)) return pemText(v);
  return v
    .map((item, i) => {
      const text = pemText(item) as string;
      if (text.length === 0) throw invalid(`client.ca[${i}]`, 'expected PEM text, received an empty string');
      return text.endsWith('\n') ? text : `${text}\n`;
    })
    .join('');
}

/** The names a certificate stands for: DNS SANs, else the CN (as API7 Cloud derives an object's SNIs). */
function derivedSnis(leaf: Buffer): string[] {
  const parsed = parseCert(leaf, readExtensionsThoroughly);
  const names = parsed.san.dns.length > 0 ? parsed.san.dns : cnOf(parsed.subject);
  return [...new Set(names.map(normalizeServername))].filter((n) => sniPatternProblem(n) === undefined);
}

function cnOf(subject: string): string[] {
  return subject
    .split('\n')
    .filter((l) => l.startsWith('CN='))
    .map((l) => l.slice(3));
}

/**
 * Validates an SSL object completely and compiles it (CA set, TLS context, skip-list) without
 * touching any store: a throw here leaves nothing half-applied.
 */
export function compileSslObject(raw: unknown): SslEntry {
  if (!isPlainObject(raw)) throw invalid('(object)', `expected an SSL object, received ${describe(raw)}`);
  const copy = plainCopy(raw, '') as Record<string, unknown>;
  const source = sourceKey(copy);
  // zod's record drops a `__proto__` key without a word; a label of that name is refused instead.
  if (isPlainObject(copy.labels) && Object.hasOwn(copy.labels, '__proto__'))
    throw invalid(
      'labels["__proto__"]',
      'expected a label key of 1 to 64 characters of [A-Za-z0-9._/-], starting with a letter or digit',
    );
  // The shape first (types, ranges, unknown fields: every problem listed), then what a schema
  // cannot say: PEM parsing, key/certificate pairs, CA flags, SNI patterns, regular expressions.
  const input = parse(sslObjectSchema(), copy);
  const id = String(input.id);

  const main = pair(input.cert, input.key, 'cert', 'key');
  const extraCerts = (input.certs ?? []).map((c, i) => pemString(c, `certs[${i}]`));
  const extraKeys = (input.keys ?? []).map((k, i) => pemString(k, `keys[${i}]`));
  if (extraCerts.length !== extraKeys.length) {
    throw new MtlsGateConfigError(
      ErrorCodes.CERTS_KEYS_MISMATCH,
      'certs',
      `${extraCerts.length} certificate(s) but ${extraKeys.length} key(s); they pair by index`,
    );
  }
  const extras = extraCerts.map((c, i) => pair(c, extraKeys[i], `certs[${i}]`, `keys[${i}]`));

  let snis: string[];
  const snisDerived = input.snis === undefined;
  if (input.snis === undefined) {
    snis = derivedSnis(main.leafDer);
    if (snis.length === 0) {
      throw new MtlsGateConfigError(
        ErrorCodes.SNI_INVALID,
        'snis',
        'not given, and the certificate has no DNS subjectAltName or CN usable as a server name',
      );
    }
  } else {
    snis = input.snis.map((s, i) => {
      const n = normalizeServername(s);
      const problem = sniPatternProblem(n);
      if (problem) throw new MtlsGateConfigError(ErrorCodes.SNI_INVALID, `snis[${i}]`, `${describe(s)}: ${problem}`);
      return n;
    });
    snis = [...new Set(snis)];
  }

  let client: SslEntry['client'];
  let clientView: SslObjectView['client'];
  if (input.client !== undefined) {
    const caSet = sharedCaSet(caBundle(input.client.ca));
    const depth = input.client.depth ?? 1;
    const skipSources = input.client.skipMtlsUriRegex ?? [];
    const skip = skipSources.map((src, i) => {
      const field = `client.skipMtlsUriRegex[${i}]`;
      if (src.length > MAX_PATTERN_LENGTH)
        throw new MtlsGateConfigError(
          ErrorCodes.REGEX_INVALID,
          field,
          `is ${src.length} characters; at most ${MAX_PATTERN_LENGTH} are accepted`,
        );
      try {
        new RegExp(src);
      } catch (err) {
        throw new MtlsGateConfigError(
          ErrorCodes.REGEX_INVALID,
          field,
          `${describe(src)} is not a valid regular expression`,
          err,
        );
      }
      // Matched by our linear-time engine, not by V8's backtracking one: the path is the client's,
      // and `(a+)+$` on a 28-character path cost 1.2 s per request (APISIX's PCRE has a match
      // limit; JavaScript has none). See internal/regex.ts.
      try {
        return compileLinearPattern(src);
      } catch (err) {
        throw new MtlsGateConfigError(
          ErrorCodes.REGEX_INVALID,
          field,
          `${describe(src)}: ${(err as Error).message}`,
          err,
        );
      }
    });
    // The patterns of one object are all tried on a path: their states together bound the work.
    const cost = skip.reduce((n, p) => n + p.cost, 0);
    if (cost > MAX_SKIP_COST) {
      throw new MtlsGateConfigError(
        ErrorCodes.REGEX_INVALID,
        'client.skipMtlsUriRegex',
        `the patterns need ${cost} matcher states together; at most ${MAX_SKIP_COST} are accepted per SSL object (merge or shorten them)`,
      );
    }
    const revocation = compileRevocation(
      input.client.crl,
      input.client.revocation,
      caSet,
      input.client.ocsp,
      input.client.crlFetch,
    );
    client = Object.freeze({ caSet, depth, skip: frozenList(skip), revocation: revocation?.policy });
    clientView = Object.freeze({
      ca: caSet.pem,
      depth,
      skipMtlsUriRegex: frozenList([...skipSources]),
      ...(revocation ? { revocation: revocation.view } : {}),
    });
  }

  const status = input.status ?? 1;
  const sslProtocols: SslProtocol[] | undefined = input.sslProtocols;
  // Keys passed the label-key pattern: no `__proto__` can reach this plain object.
  const labels: Record<string, string> = { ...input.labels };

  // Node's SNI switch (UseSNIContext, Node 20) copies only the context's last certificate and key
  // onto the connection, so the main pair goes last: SNI clients always get `cert`. The extra
  // pairs serve clients without SNI through the fallback context, where OpenSSL picks per client.
  const tlsMaterial = {
    cert: [...extras.map((e) => e.cert), main.cert],
    key: [...extras.map((e) => e.key), main.key],
    ca: client?.caSet.pem,
  };
  // With mTLS on, `ca` is always set: a context without it would verify against Node's default
  // root store and send no CA names in the CertificateRequest.
  const contextOptions = tlsMaterial.ca ? tlsMaterial : { cert: tlsMaterial.cert, key: tlsMaterial.key };
  const buildContext = () => tls.createSecureContext(contextOptions);
  // Material the DER reader vouched for (ssl/material.ts) gets its context at its first handshake;
  // other material is checked by OpenSSL itself, now.
  let firstContext: tls.SecureContext | undefined;
  if (!main.fast || extras.some((e) => !e.fast)) {
    try {
      firstContext = buildContext();
    } catch (err) {
      throw new MtlsGateConfigError(
        ErrorCodes.TLS_CONTEXT,
        'cert',
        `Node could not build a TLS context: ${(err as Error).message}`,
        err,
      );
    }
  }

  const view: SslObjectView = Object.freeze({
    id,
    cert: main.cert,
    certs: frozenList(extras.map((e) => e.cert)),
    snis: Object.freeze([...snis]),
    snisDerived,
    client: clientView,
    status,
    sslProtocols: sslProtocols && Object.freeze([...sslProtocols]),
    labels: Object.keys(labels).length === 0 ? NO_LABELS : Object.freeze(labels),
    desc: input.desc as string | undefined,
    validTo: main.validTo,
  });
  const entry: SslEntry = Object.freeze({
    id,
    key: `${id}#${++compiled}`,
    source,
    sessionSource: sessionSourceOf(copy, source),
    snis: view.snis,
    buildContext,
    client,
    mtls: client !== undefined,
    status,
    sslProtocols: sslProtocols && new Set<string>(sslProtocols),
    view,
    tls: tlsMaterial,
    retained: frozenList([...main.natives, ...extras.flatMap((e) => e.natives)]),
  });
  if (firstContext) firstContexts.set(entry, firstContext);
  return entry;
}

// The context built to check an object, for the store to keep (or drop) when it takes the object:
// the entry itself never holds a context, so an evicted one is freed.
const firstContexts = new WeakMap<SslEntry, tls.SecureContext>();
/** The context `compileSslObject` built for `entry`, once (then undefined). */
export function takeFirstContext(entry: SslEntry): tls.SecureContext | undefined {
  const c = firstContexts.get(entry);
  firstContexts.delete(entry);
  return c;
}
