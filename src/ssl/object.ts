import { X509Certificate, createPrivateKey, hash, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { compileCaSet, type CaSet } from '../verify/ca-set.js';
import { describe, isPlainObject, pemText, rejectUnknown } from '../internal/validate.js';
import { parseCert, pemBlocks, readExtensionsThoroughly } from '../verify/cert.js';
import { normalizeServername, sniPatternProblem } from './sni.js';
import { plainCopy } from '../internal/plain.js';
import { compileLinearPattern } from '../internal/regex.js';

/** TLS versions an SSL object may restrict itself to (APISIX's `ssl_protocols`). */
export type SslProtocol = 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** Client-certificate settings of an SSL object. */
export interface SslClientOptions {
  /**
   * PEM of the CAs that may issue client certificates: one bundle (string or Buffer) or an array
   * of them, as Node's `tls` takes `ca`. These, and only these, are trust anchors.
   */
  ca: string | Buffer | (string | Buffer)[];
  /** Most intermediates allowed between the client certificate and a CA of `ca`. Default 1; 0 = issued directly by `ca`. */
  depth?: number;
  /** Paths (normalised, query removed) that need no client certificate; unanchored JavaScript regular expressions. */
  skipMtlsUriRegex?: string[];
}

/** An SSL object, APISIX's `ssls` resource with camelCase names. */
export interface SslObject {
  /** 1 to 64 characters of `[a-zA-Z0-9-_.]`, or a positive integer (kept as its decimal string). */
  id: string | number;
  /** Server certificate PEM (a string or a Buffer); certificates after the first are sent as its chain. */
  cert: string | Buffer;
  /** Private key PEM (unencrypted) of `cert`, a string or a Buffer. */
  key: string | Buffer;
  /** More certificate/key pairs for the same names, e.g. ECDSA beside RSA. */
  certs?: (string | Buffer)[];
  keys?: (string | Buffer)[];
  /** Names this object serves. Default: the certificate's DNS SANs, else its CN. */
  snis?: string[];
  /** Present = mutual TLS on for these names. */
  client?: SslClientOptions;
  /** 0 disables the object without deleting it. Default 1. */
  status?: 0 | 1;
  /** Allowed TLS versions for connections that chose this object. Default: any the server allows. */
  sslProtocols?: SslProtocol[];
  labels?: Record<string, string>;
  desc?: string;
}

/** What `get`, `list` and `match` return: the object as stored, private keys left out. */
export interface SslObjectView {
  readonly id: string;
  readonly cert: string;
  readonly certs: readonly string[];
  readonly snis: readonly string[];
  /** True when `snis` were taken from the certificate rather than given. */
  readonly snisDerived: boolean;
  readonly client: Readonly<{ ca: string; depth: number; skipMtlsUriRegex: readonly string[] }> | undefined;
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
  readonly context: tls.SecureContext;
  readonly client: { readonly caSet: CaSet; readonly depth: number; readonly skip: readonly { test(path: string): boolean }[] } | undefined;
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

const OBJECT_FIELDS = new Set(['id', 'cert', 'key', 'certs', 'keys', 'snis', 'client', 'status', 'sslProtocols', 'labels', 'desc']);
const CLIENT_FIELDS = new Set(['ca', 'depth', 'skipMtlsUriRegex']);
const PROTOCOLS = new Set(['TLSv1.1', 'TLSv1.2', 'TLSv1.3']);
const ID_PATTERN = /^[a-zA-Z0-9._-]{1,64}$/;
/** Matcher states all skip-list patterns of one object may have together (see internal/regex.ts). */
export const MAX_SKIP_COST = 1024;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/;
const MAX_LABELS = 64;
export const MAX_DEPTH = 8;
let compiled = 0;
const MAX_PEM = 64 * 1024;

const invalid = (field: string, msg: string, cause?: unknown) => new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, msg, cause);

/** Digest of an SSL object's input, as copied by `plainCopy`: equal inputs, equal digests. */
export function sourceKey(input: unknown): string {
  const text = JSON.stringify(input, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('base64')}` : v));
  return hash('sha256', text ?? '', 'base64');
}

/** Normalises an SSL object id, or throws naming `field`. */
export function normalizeId(id: unknown, field = 'id'): string {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 1) return String(id);
  if (typeof id === 'string' && ID_PATTERN.test(id)) return id;
  if (id === undefined) throw new MtlsGateConfigError(ErrorCodes.MISSING_FIELD, field, 'is required');
  throw invalid(field, `expected 1 to 64 characters of [a-zA-Z0-9._-] or a positive integer, received ${describe(id)}`);
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
  if (blocks.length === 0) throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, field, 'no "-----BEGIN CERTIFICATE-----" block found');
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
      throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, where, 'the certificate\'s validity dates cannot be read');
    }
    return c;
  });
}

function privateKey(pem: string, field: string): KeyObject {
  if (/ENCRYPTED/.test(pem)) throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, field, 'encrypted private keys are not supported; decrypt it first');
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, field, `private key cannot be parsed (${(err as Error).message})`, err);
  }
}

function pair(certPem: unknown, keyPem: unknown, certField: string, keyField: string): { leaf: X509Certificate; cert: string; key: string; natives: object[] } {
  const cert = pemString(certPem, certField);
  const key = pemString(keyPem, keyField);
  const chain = certChain(cert, certField);
  const keyObject = privateKey(key, keyField);
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new MtlsGateConfigError(ErrorCodes.KEY_MISMATCH, keyField, `private key does not match the certificate in ${certField} ("${(leaf.subject ?? '').replace(/\n/g, ', ')}")`);
  }
  // Only the certificates: a combined cert + key PEM must not carry the key into views.
  return { leaf, cert: chain.map((c) => c.toString()).join(''), key, natives: [...chain, keyObject] };
}

function stringArray(v: unknown, field: string, opts: { min?: number; max?: number; unique?: boolean } = {}): string[] {
  if (!Array.isArray(v)) throw invalid(field, `expected an array of strings, received ${describe(v)}`);
  if (opts.min !== undefined && v.length < opts.min) throw invalid(field, `expected at least ${opts.min} item(s), received ${v.length}`);
  if (opts.max !== undefined && v.length > opts.max) throw invalid(field, `expected at most ${opts.max} items, received ${v.length}`);
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw invalid(`${field}[${i}]`, `expected a string, received ${describe(s)}`);
  });
  if (opts.unique && new Set(v).size !== v.length) throw invalid(field, 'items must be unique');
  return v as string[];
}

/** `certs` / `keys`: an array of PEM texts (strings or Buffers). */
function pemArray(v: unknown, field: string, max: number): string[] {
  if (!Array.isArray(v)) throw invalid(field, `expected an array of PEM texts, received ${describe(v)}`);
  if (v.length > max) throw invalid(field, `expected at most ${max} items, received ${v.length}`);
  return v.map((item, i) => {
    const text = pemText(item);
    if (typeof text !== 'string') throw invalid(`${field}[${i}]`, `expected PEM text (a string or a Buffer), received ${describe(item)}`);
    return text;
  });
}

/**
 * `client.ca` as Node's `tls` takes `ca`: one bundle (string or Buffer) or an array of them, each
 * holding one or more certificates; joined into one bundle (error fields then count certificates
 * across the whole list: `client.ca[2]` is the third certificate).
 */
function caBundle(v: unknown): unknown {
  if (!Array.isArray(v)) return pemText(v);
  if (v.length === 0 || v.length > 256) throw invalid('client.ca', `expected one PEM bundle or an array of 1 to 256, received ${describe(v)}`);
  return v
    .map((item, i) => {
      const text = pemText(item);
      if (typeof text !== 'string' || text.length === 0) throw invalid(`client.ca[${i}]`, `expected PEM text (a string or a Buffer), received ${describe(item)}`);
      return text.endsWith('\n') ? text : `${text}\n`;
    })
    .join('');
}

/** The names a certificate stands for: DNS SANs, else the CN (as API7 Cloud derives an object's SNIs). */
function derivedSnis(leaf: X509Certificate): string[] {
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
  const input = plainCopy(raw, '') as Record<string, unknown> & { client?: unknown };
  const source = sourceKey(input);
  rejectUnknown(input, OBJECT_FIELDS, '');
  const id = normalizeId(input.id);

  const main = pair(input.cert, input.key, 'cert', 'key');
  const extraCerts = input.certs === undefined ? [] : pemArray(input.certs, 'certs', 8);
  const extraKeys = input.keys === undefined ? [] : pemArray(input.keys, 'keys', 8);
  if (extraCerts.length !== extraKeys.length) {
    throw new MtlsGateConfigError(ErrorCodes.CERTS_KEYS_MISMATCH, 'certs', `${extraCerts.length} certificate(s) but ${extraKeys.length} key(s); they pair by index`);
  }
  const extras = extraCerts.map((c, i) => pair(c, extraKeys[i], `certs[${i}]`, `keys[${i}]`));

  let snis: string[];
  const snisDerived = input.snis === undefined;
  if (snisDerived) {
    snis = derivedSnis(main.leaf);
    if (snis.length === 0) {
      throw new MtlsGateConfigError(ErrorCodes.SNI_INVALID, 'snis', 'not given, and the certificate has no DNS subjectAltName or CN usable as a server name');
    }
  } else {
    snis = stringArray(input.snis, 'snis', { min: 1, max: 1024 }).map((s, i) => {
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
    if (!isPlainObject(input.client)) throw invalid('client', `expected an object, received ${describe(input.client)}`);
    rejectUnknown(input.client, CLIENT_FIELDS, 'client.');
    if (input.client.ca === undefined) throw new MtlsGateConfigError(ErrorCodes.MISSING_FIELD, 'client.ca', 'is required when client is present');
    const caSet = sharedCaSet(caBundle(input.client.ca));
    const depth = input.client.depth ?? 1;
    if (typeof depth !== 'number' || !Number.isInteger(depth) || depth < 0 || depth > MAX_DEPTH) {
      throw invalid('client.depth', `expected an integer from 0 to ${MAX_DEPTH}, received ${describe(depth)}`);
    }
    const skipSources =
      input.client.skipMtlsUriRegex === undefined
        ? []
        : stringArray(input.client.skipMtlsUriRegex, 'client.skipMtlsUriRegex', { min: 1, max: 64, unique: true });
    const skip = skipSources.map((src, i) => {
      const field = `client.skipMtlsUriRegex[${i}]`;
      try {
        new RegExp(src);
      } catch (err) {
        throw new MtlsGateConfigError(ErrorCodes.REGEX_INVALID, field, `${describe(src)} is not a valid regular expression`, err);
      }
      // Matched by our linear-time engine, not by V8's backtracking one: the path is the client's,
      // and `(a+)+$` on a 28-character path cost 1.2 s per request (APISIX's PCRE has a match
      // limit; JavaScript has none). See internal/regex.ts.
      try {
        return compileLinearPattern(src);
      } catch (err) {
        throw new MtlsGateConfigError(ErrorCodes.REGEX_INVALID, field, `${describe(src)}: ${(err as Error).message}`, err);
      }
    });
    // The patterns of one object are all tried on a path: their states together bound the work.
    const cost = skip.reduce((n, p) => n + p.cost, 0);
    if (cost > MAX_SKIP_COST) {
      throw new MtlsGateConfigError(ErrorCodes.REGEX_INVALID, 'client.skipMtlsUriRegex', `the patterns need ${cost} matcher states together; at most ${MAX_SKIP_COST} are accepted per SSL object (merge or shorten them)`);
    }
    client = Object.freeze({ caSet, depth, skip: frozenList(skip) });
    clientView = Object.freeze({ ca: caSet.pem, depth, skipMtlsUriRegex: frozenList([...skipSources]) });
  }

  const status = input.status ?? 1;
  if (status !== 0 && status !== 1) throw invalid('status', `expected 0 or 1, received ${describe(status)}`);

  let sslProtocols: SslProtocol[] | undefined;
  if (input.sslProtocols !== undefined) {
    sslProtocols = stringArray(input.sslProtocols, 'sslProtocols', { min: 1, max: 3, unique: true }).map((p, i) => {
      if (!PROTOCOLS.has(p)) throw invalid(`sslProtocols[${i}]`, `expected one of ${[...PROTOCOLS].join(', ')}, received ${describe(p)}`);
      return p as SslProtocol;
    });
  }

  const labels: Record<string, string> = {};
  if (input.labels !== undefined) {
    if (!isPlainObject(input.labels)) throw invalid('labels', `expected an object of strings, received ${describe(input.labels)}`);
    const entries = Object.entries(input.labels);
    if (entries.length > MAX_LABELS) throw invalid('labels', `expected at most ${MAX_LABELS} labels, received ${entries.length}`);
    for (const [k, v] of entries) {
      // A key becomes a property name: `__proto__` would be dropped (or set the prototype) on a plain
      // object, and a key is echoed into error messages, so it is a short name.
      if (!LABEL_KEY.test(k)) throw invalid(`labels[${describe(k)}]`, 'expected a label key of 1 to 64 characters of [A-Za-z0-9._/-], starting with a letter or digit');
      if (typeof v !== 'string' || !/^\S{1,256}$/.test(v)) throw invalid(`labels.${k}`, `expected 1 to 256 non-space characters, received ${describe(v)}`);
      labels[k] = v;
    }
  }
  if (input.desc !== undefined && (typeof input.desc !== 'string' || input.desc.length > 256)) {
    throw invalid('desc', `expected a string of at most 256 characters, received ${describe(input.desc)}`);
  }

  // Node's SNI switch (UseSNIContext, Node 20) copies only the context's last certificate and key
  // onto the connection, so the main pair goes last: SNI clients always get `cert`. The extra
  // pairs serve clients without SNI through the fallback context, where OpenSSL picks per client.
  const tlsMaterial = {
    cert: [...extras.map((e) => e.cert), main.cert],
    key: [...extras.map((e) => e.key), main.key],
    ca: client?.caSet.pem,
  };
  let context: tls.SecureContext;
  try {
    // With mTLS on, `ca` is always set: a context without it would verify against Node's default
    // root store and send no CA names in the CertificateRequest.
    context = tls.createSecureContext(tlsMaterial.ca ? tlsMaterial : { cert: tlsMaterial.cert, key: tlsMaterial.key });
  } catch (err) {
    throw new MtlsGateConfigError(ErrorCodes.TLS_CONTEXT, 'cert', `Node could not build a TLS context: ${(err as Error).message}`, err);
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
    validTo: new Date(main.leaf.validTo),
  });
  return Object.freeze({
    id,
    key: `${id}#${++compiled}`,
    source,
    snis: view.snis,
    context,
    client,
    mtls: client !== undefined,
    status,
    sslProtocols: sslProtocols && new Set<string>(sslProtocols),
    view,
    tls: tlsMaterial,
    retained: Object.freeze([...main.natives, ...extras.flatMap((e) => e.natives)]),
  });
}
