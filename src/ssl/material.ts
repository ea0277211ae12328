// A server certificate chain and its private key, checked without OpenSSL when they are of the
// common kinds.
//
// Setting an SSL object used to cost about 3 ms on the bench machine, nearly all of it OpenSSL 3.0's
// decoders: parsing the private key (0.8 ms for a P-256 key), each certificate (0.3 ms) and a TLS
// context built only to check the pair (1.6 to 2.3 ms). With 100,000 objects that is five minutes
// before a gateway can serve. The DER reader does the same checks here in microseconds:
//
// - every certificate of the chain parses as a Certificate (strict DER, canonical base64), its
//   validity dates are readable, and its key is RSA, EC on a named curve (uncompressed point, on the
//   curve) or Ed25519/Ed448;
// - the private key (PKCS#8, SEC1 or PKCS#1) carries its public half, and that equals the leaf's
//   public key: what OpenSSL's X509_check_private_key (behind node:crypto's checkPrivateKey and the
//   TLS context) compares;
// - RSA keys of the chain have at least 1,024 bits, the floor of OpenSSL's default security level
//   (a context with a 512-bit key fails with "ee key too small").
//
// Anything else (DSA, RSA-PSS, compressed points, an EC key without its public point, DER that this
// reader refuses but OpenSSL might take) goes the old way in ssl/object.ts: node:crypto's parsers and
// a TLS context built to check the object. The TLS context of a fast-checked object is built at its
// first handshake (ssl/store.ts); the two checks above are what OpenSSL verifies when it loads a
// certificate and a key into a context.
import type { JsonWebKey } from 'node:crypto';
import { children, expect, oidString, type Tlv, tlv } from '../internal/der.js';
import { pemBodies } from '../verify/cert.js';
import { readExtensions } from '../verify/extensions.js';
import { ecPointJwk, positive, spkiJwk } from '../verify/jwk.js';

/** What setting an SSL object needs to know of one certificate. */
export interface CertFacts {
  readonly der: Buffer;
  /** The certificate as OpenSSL writes it: 64 base64 characters a line. */
  readonly pem: string;
  readonly notAfter: Date;
  /** The public key, for comparing with the private key's public half. */
  readonly jwk: JsonWebKey;
}

/** RSA keys below this size make OpenSSL refuse the TLS context (security level 1, Node 20's default). */
const MIN_RSA_BITS = 1024;

const OID_RSA = '1.2.840.113549.1.1.1';
const OID_EC = '1.2.840.10045.2.1';

/** PEM as OpenSSL writes it, from DER. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** The blocks of `label` in `pem`, decoded, when every one of them is canonical base64; else undefined. */
function canonicalBlocks(pem: string, label: string): Buffer[] | undefined {
  const out: Buffer[] = [];
  for (const text of pemBodies(pem, label)) {
    const der = Buffer.from(text, 'base64');
    // Node's base64 decoder skips what it cannot read; OpenSSL's does not. Only text that is
    // exactly the encoding of its bytes is read here.
    if (der.toString('base64') !== text) return undefined;
    out.push(der);
  }
  return out;
}

/** Two-digit fields of a UTCTime / GeneralizedTime, strictly `...Z`; NaN when malformed. */
function derTime(der: Uint8Array, t: Tlv): number {
  const s = Buffer.from(der.buffer, der.byteOffset + t.start, t.end - t.start).toString('latin1');
  const m =
    t.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m || (t.tag !== 0x17 && t.tag !== 0x18)) return Number.NaN;
  let year = Number(m[1]);
  // RFC 5280 4.1.2.5.1: UTCTime years 50-99 are 19xx, 00-49 are 20xx.
  if (t.tag === 0x17) year += year >= 50 ? 1900 : 2000;
  const [month, day, hour, minute, second] = m.slice(2).map(Number) as [number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31 April over into May: such a date is not one.
  return new Date(ms).getUTCDate() === day ? ms : Number.NaN;
}

/** An INTEGER in DER: present and minimal (no padding byte a shorter encoding would not need). */
function derInteger(der: Uint8Array, t: Tlv | undefined): boolean {
  if (t?.tag !== 0x02 || t.end === t.start) return false;
  if (t.end - t.start === 1) return true;
  const [a, b] = [der[t.start]!, der[t.start + 1]!];
  return !((a === 0x00 && b < 0x80) || (a === 0xff && b >= 0x80));
}

/** An AlgorithmIdentifier: an OID and at most one parameter of any (well-formed) type. */
function algorithm(der: Uint8Array, t: Tlv | undefined): string | undefined {
  if (t?.tag !== 0x30) return undefined;
  const f = children(der, t);
  if (f.length < 1 || f.length > 2 || f[0]!.tag !== 0x06) return undefined;
  if (f[1] && f[1].tag & 0x20) children(der, f[1]);
  return oidString(der, f[0]!);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Tags a Name's attribute value may have (DirectoryString and the IA5 / Numeric / Visible strings). */
const NAME_STRINGS = new Set([0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a, 0x1c, 0x1e]);

/** A Name: SEQUENCE OF non-empty SET OF { OID, string }, every string well-formed for its type. */
function nameOk(der: Uint8Array, t: Tlv | undefined): boolean {
  if (t?.tag !== 0x30) return false;
  for (const rdn of children(der, t)) {
    if (rdn.tag !== 0x31) return false;
    const atvs = children(der, rdn);
    if (atvs.length === 0) return false;
    for (const atv of atvs) {
      if (atv.tag !== 0x30) return false;
      const [type, value, ...more] = children(der, atv);
      if (type?.tag !== 0x06 || !value || more.length > 0 || !NAME_STRINGS.has(value.tag)) return false;
      oidString(der, type);
      const len = value.end - value.start;
      if ((value.tag === 0x1e && len % 2) || (value.tag === 0x1c && len % 4)) return false;
      if (value.tag === 0x0c) utf8.decode(der.subarray(value.start, value.end));
    }
  }
  return true;
}

/**
 * Signature algorithms read here: SHA-2 with RSA (parameters NULL or absent) or ECDSA (none), and
 * EdDSA. OpenSSL refuses a CA-issued certificate whose signature it cannot rate ("ca md too weak");
 * SHA-1, MD5, RSA-PSS and the rest go through node:crypto and a check context.
 */
const SIGNATURES = new Set([
  '1.2.840.113549.1.1.11',
  '1.2.840.113549.1.1.12',
  '1.2.840.113549.1.1.13',
  '1.2.840.10045.4.3.2',
  '1.2.840.10045.4.3.3',
  '1.2.840.10045.4.3.4',
  '1.3.101.112',
  '1.3.101.113',
]);

/** issuerUniqueID [1], subjectUniqueID [2] (both IMPLICIT BIT STRING), extensions [3]: each at most once, in order. */
function optionalFields(der: Uint8Array, rest: readonly Tlv[]): boolean {
  let last = 0;
  for (const r of rest) {
    const order = r.tag === 0x81 ? 1 : r.tag === 0x82 ? 2 : r.tag === 0xa3 ? 3 : 0;
    if (order <= last) return false;
    if (order < 3 && (r.end === r.start || der[r.start]! > 7)) return false;
    if (order === 3 && children(der, r).length !== 1) return false;
    last = order;
  }
  return true;
}

/**
 * A certificate's facts, or undefined when this reader does not vouch for it (node:crypto then
 * decides). It vouches only for a certificate whose every field is well-formed DER of the X.509
 * template (RFC 5280 4.1), whose extensions the house's extension reader reads, signed with an
 * algorithm of SIGNATURES, with a key of the kinds above.
 */
function readCertificate(der: Buffer): CertFacts | undefined {
  try {
    const cert = tlv(der, 0, der.length);
    if (cert.tag !== 0x30 || cert.end !== der.length) return undefined;
    const top = children(der, cert);
    if (top.length !== 3 || top[2]!.tag !== 0x03 || top[2]!.end === top[2]!.start || der[top[2]!.start] !== 0)
      return undefined;
    const sigAlg = algorithm(der, top[1]);
    if (sigAlg === undefined || !SIGNATURES.has(sigAlg)) return undefined;
    const tbs = children(der, expect(top[0], 0x30, 'TBSCertificate'));
    let v = 0;
    if (tbs[0]?.tag === 0xa0) {
      const [version, ...extra] = children(der, tbs[0]);
      if (!derInteger(der, version) || extra.length > 0 || version!.end - version!.start !== 1) return undefined;
      if (der[version!.start]! > 2) return undefined;
      v = 1;
    }
    const [serial, sig, issuer, validity, subject, spki, ...rest] = tbs.slice(v);
    if (!derInteger(der, serial) || !nameOk(der, issuer) || !nameOk(der, subject) || !optionalFields(der, rest))
      return undefined;
    // The TBSCertificate's signature field is the outer one, byte for byte (RFC 5280 4.1.1.2).
    if (
      !sig ||
      Buffer.compare(der.subarray(sig.at, sig.end), der.subarray(top[1]!.at, top[1]!.end)) !== 0 ||
      validity?.tag !== 0x30 ||
      spki?.tag !== 0x30
    )
      return undefined;
    const times = children(der, validity);
    if (times.length !== 2) return undefined;
    const notBefore = derTime(der, times[0]!);
    const notAfter = derTime(der, times[1]!);
    if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) return undefined;
    readExtensions(der);
    const jwk = spkiJwk(der);
    if (!jwk) return undefined;
    if (jwk.kty === 'RSA' && rsaBits(jwk.n!) < MIN_RSA_BITS) return undefined;
    return { der, pem: derToPem(der, 'CERTIFICATE'), notAfter: new Date(notAfter), jwk };
  } catch {
    return undefined;
  }
}

/** Bits of an RSA modulus given as base64url without leading zero bytes. */
function rsaBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  return bytes.length === 0 ? 0 : (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]!));
}

/** RSAPrivateKey (PKCS#1): version, n, e, d, p, q, dP, dQ, qInv (two primes; more for version 1). */
function rsaPrivate(der: Uint8Array, t: Tlv): JsonWebKey | undefined {
  if (t.tag !== 0x30) return undefined;
  const f = children(der, t);
  if (f.length < 9 || f.some((x) => x.tag !== 0x02 && x.tag !== 0x30)) return undefined;
  const n = positive(der, f[1]!);
  const e = positive(der, f[2]!);
  return n && e ? { kty: 'RSA', n, e } : undefined;
}

/** ECPrivateKey (SEC1): version 1, privateKey, [0] parameters, [1] publicKey; its public point as a JWK. */
function ecPrivate(der: Uint8Array, t: Tlv, outerCurve: string | undefined): JsonWebKey | undefined {
  if (t.tag !== 0x30) return undefined;
  const f = children(der, t);
  if (f[0]?.tag !== 0x02 || f[1]?.tag !== 0x04) return undefined;
  let curve = outerCurve;
  let point: Tlv | undefined;
  for (const x of f.slice(2)) {
    const inner = children(der, x)[0];
    if (x.tag === 0xa0 && inner?.tag === 0x06) {
      const named = oidString(der, inner);
      if (curve !== undefined && curve !== named) return undefined;
      curve = named;
    } else if (x.tag === 0xa1 && inner?.tag === 0x03) point = inner;
    else return undefined;
  }
  // Without the public point it would have to be computed from the scalar: left to node:crypto.
  if (!curve || !point || point.end - point.start < 2 || der[point.start] !== 0) return undefined;
  return ecPointJwk(der, curve, point.start + 1, point.end);
}

/** PrivateKeyInfo / OneAsymmetricKey (PKCS#8, RFC 5958) holding an RSA or EC key. */
function pkcs8(der: Uint8Array, t: Tlv): JsonWebKey | undefined {
  if (t.tag !== 0x30) return undefined;
  const f = children(der, t);
  if (f[0]?.tag !== 0x02 || f[1]?.tag !== 0x30 || f[2]?.tag !== 0x04) return undefined;
  const alg = children(der, f[1]!);
  const oid = oidString(der, expect(alg[0], 0x06, 'algorithm'));
  const inner = tlv(der, f[2]!.start, f[2]!.end);
  if (inner.end !== f[2]!.end) return undefined;
  if (oid === OID_RSA) {
    if (alg.length > 2 || (alg[1] && (alg[1].tag !== 0x05 || alg[1].end !== alg[1].start))) return undefined;
    return rsaPrivate(der, inner);
  }
  if (oid === OID_EC && alg[1]?.tag === 0x06 && alg.length === 2) return ecPrivate(der, inner, oidString(der, alg[1]));
  return undefined;
}

/**
 * The public half of the first private key in `pem` (as OpenSSL reads the first key block of a file,
 * skipping `EC PARAMETERS` and the like), or undefined when this reader does not vouch for it.
 */
export function privateKeyJwk(pem: string): JsonWebKey | undefined {
  const m = /-----BEGIN (RSA |EC |)PRIVATE KEY-----/.exec(pem);
  if (!m) return undefined;
  const kind = m[1]!;
  const blocks = canonicalBlocks(pem.slice(m.index), `${kind}PRIVATE KEY`);
  const der = blocks?.[0];
  if (!der) return undefined;
  try {
    const t = tlv(der, 0, der.length);
    if (t.end !== der.length) return undefined;
    return kind === 'RSA ' ? rsaPrivate(der, t) : kind === 'EC ' ? ecPrivate(der, t, undefined) : pkcs8(der, t);
  } catch {
    return undefined;
  }
}

/** The certificates of a chain read by this reader, or undefined when any one is not (node:crypto then decides). */
export function readChain(pem: string): CertFacts[] | undefined {
  const blocks = canonicalBlocks(pem, 'CERTIFICATE');
  if (!blocks || blocks.length === 0) return undefined;
  const out: CertFacts[] = [];
  for (const der of blocks) {
    const facts = readCertificate(der);
    if (!facts) return undefined;
    out.push(facts);
  }
  return out;
}

/** Do two public keys read by this module agree (the members that define the key)? */
export function sameKey(a: JsonWebKey, b: JsonWebKey): boolean {
  if (a.kty !== b.kty) return false;
  if (a.kty === 'RSA') return a.n === b.n && a.e === b.e;
  if (a.kty === 'EC') return a.crv === b.crv && a.x === b.x && a.y === b.y;
  return false;
}
