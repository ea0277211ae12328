/**
 * Certificate revocation lists, read and checked by us rather than by Node's `crl` option (which
 * takes one PEM CRL per call and fails every client under a CA level that lacks a CRL). The DER is
 * walked once into a serial lookup: a 100,000-entry CRL is a few megabytes, which @peculiar/x509's
 * object model refuses (its ASN.1 node cap) or takes seconds to build.
 *
 * RFC 5280 section 5. Supported: complete CRLs of one issuer (v1 or v2), with any non-critical
 * extension. Refused when compiled, with the field named: delta CRLs (`deltaCRLIndicator`),
 * issuing-distribution-point scopes, indirect CRLs (`certificateIssuer` entries), and any other
 * critical extension.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { children, oidString, type Tlv, tlv } from '../internal/der.js';

const oidText = oidString;

/** UTCTime or GeneralizedTime as milliseconds. */
function timeOf(der: Uint8Array, t: Tlv): number {
  const s = Buffer.from(der.subarray(t.start, t.end)).toString('latin1');
  const m =
    t.tag === 0x17
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : t.tag === 0x18
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
        : null;
  if (!m) throw new Error(`unreadable time ${JSON.stringify(s.slice(0, 20))}`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  const [mo, d, h, mi, sec] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
    throw new Error(`unreadable time ${JSON.stringify(s)}`);
  return Date.UTC(year, mo - 1, d, h, mi, sec);
}

/** A certificate's serial read from its DER, as CRL entries are (Node prints 0 as "0" and -1 as "-01"). */
export function certSerial(der: Uint8Array): string {
  const cert = tlv(der, 0, der.length);
  const tbs = tlv(der, cert.start, cert.end);
  let t = tlv(der, tbs.start, tbs.end);
  if (t.tag === 0xa0) t = tlv(der, t.end, tbs.end);
  return serialHex(der.subarray(t.start, t.end));
}

/**
 * A serial number as the hex of its DER INTEGER content, exactly: DER is canonical (a positive serial
 * with its top bit set carries a leading 00, a negative one does not), so two serials are equal exactly
 * when these strings are. (Node prints serials differently: 0 as "0", -1 as "-01".)
 */
export function serialHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

// Signature algorithms by OID, with the digest node:crypto takes (null: the algorithm has its own,
// Ed25519 / Ed448). RSASSA-PSS is not here: its parameters would need reading.
const SIGNATURES: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
};

/** Whether `alg` (an OID) is a signature algorithm {@link signedWith} checks. */
export const supportedSignature = (alg: string): boolean => alg in SIGNATURES;

/** Verifies a signature made with the algorithm `alg` (an OID); false for an unsupported one or any failure. */
export function signedWith(alg: string, data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean {
  if (!supportedSignature(alg)) return false;
  try {
    return cryptoVerify(SIGNATURES[alg]!, data, key, signature);
  } catch {
    return false;
  }
}

const OID_DELTA = '2.5.29.27';
const OID_IDP = '2.5.29.28';
const OID_CERT_ISSUER = '2.5.29.29';

/** A CRL read into what checking needs. Immutable. */
export interface Crl {
  /** The issuer Name's DER (latin1), compared byte for byte with certificates' issuer fields. */
  readonly issuer: string;
  readonly thisUpdate: number;
  /** Undefined when the CRL has none (then it never expires). */
  readonly nextUpdate: number | undefined;
  readonly revoked: ReadonlySet<string>;
  readonly size: number;
  /** Verifies the CRL's signature with the issuer's public key (cached per key). */
  signedBy(key: KeyObject): boolean;
}

/**
 * Reads a DER CRL, or throws an Error whose message says what is wrong or unsupported.
 */
/** Largest CRL read (DER bytes) and most entries: a bound on what one configuration change costs. */
export const MAX_CRL_BYTES = 16 * 1024 * 1024;
export const MAX_CRL_ENTRIES = 1_000_000;

export function parseCrl(der: Uint8Array): Crl {
  if (der.length > MAX_CRL_BYTES) throw new Error(`the CRL is ${der.length} bytes; at most ${MAX_CRL_BYTES} are read`);
  const outer = tlv(der, 0, der.length);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new Error('not a DER CRL (CertificateList)');
  const [tbs, sigAlg, sigValue] = children(der, outer);
  if (!tbs || !sigAlg || !sigValue || tbs.tag !== 0x30 || sigAlg.tag !== 0x30 || sigValue.tag !== 0x03)
    throw new Error('not a CertificateList');
  const parts = children(der, tbs);
  let i = 0;
  if (parts[i]?.tag === 0x02) i++; // version (v2)
  const innerAlg = parts[i++];
  const issuer = parts[i++];
  const thisUpdate = parts[i++];
  if (!innerAlg || !issuer || !thisUpdate || issuer.tag !== 0x30) throw new Error('incomplete TBSCertList');
  let nextUpdate: Tlv | undefined;
  if (parts[i] && (parts[i]!.tag === 0x17 || parts[i]!.tag === 0x18)) nextUpdate = parts[i++];
  const revoked = new Set<string>();
  if (parts[i]?.tag === 0x30) {
    const list = parts[i++]!;
    for (let off = list.start; off < list.end; ) {
      const entry = tlv(der, off, list.end);
      off = entry.end;
      const serial = tlv(der, entry.start, entry.end);
      if (serial.tag !== 0x02 || serial.end === serial.start)
        throw new Error('a revoked entry without a serial number');
      revoked.add(serialHex(der.subarray(serial.start, serial.end)));
      if (revoked.size > MAX_CRL_ENTRIES) throw new Error(`the CRL lists more than ${MAX_CRL_ENTRIES} certificates`);
      // Entry extensions: an indirect CRL (certificateIssuer) names other issuers' certificates.
      const date = tlv(der, serial.end, entry.end);
      if (date.end < entry.end) {
        const exts = tlv(der, date.end, entry.end);
        for (const ext of children(der, exts)) {
          const [oid] = children(der, ext);
          if (oid && oidText(der, oid) === OID_CERT_ISSUER)
            throw new Error('indirect CRLs (certificateIssuer entries) are not supported');
          if (isCritical(der, ext))
            throw new Error(`a critical entry extension ${oid ? oidText(der, oid) : '?'} is not supported`);
        }
      }
    }
  }
  if (parts[i]?.tag === 0xa0) {
    const exts = tlv(der, parts[i]!.start, parts[i]!.end);
    for (const ext of children(der, exts)) {
      const [oid] = children(der, ext);
      const name = oid ? oidText(der, oid) : '?';
      if (name === OID_DELTA) throw new Error('delta CRLs are not supported: give the complete CRL');
      if (name === OID_IDP)
        throw new Error('CRLs scoped by an issuing distribution point are not supported: give the complete CRL');
      if (isCritical(der, ext)) throw new Error(`the critical CRL extension ${name} is not supported`);
    }
  }
  const algOid = children(der, sigAlg)[0];
  const alg = algOid ? oidText(der, algOid) : '?';
  if (!supportedSignature(alg)) throw new Error(`the signature algorithm ${alg} is not supported`);
  const signed = Buffer.from(der.subarray(tbs.at, tbs.end));
  // BIT STRING: the first byte counts unused bits (0 for signatures).
  const signature = Buffer.from(der.subarray(sigValue.start + 1, sigValue.end));
  const checked = new WeakMap<KeyObject, boolean>();
  return Object.freeze({
    issuer: Buffer.from(der.subarray(issuer.at, issuer.end)).toString('latin1'),
    thisUpdate: timeOf(der, thisUpdate),
    nextUpdate: nextUpdate ? timeOf(der, nextUpdate) : undefined,
    revoked,
    size: revoked.size,
    signedBy(key: KeyObject): boolean {
      let ok = checked.get(key);
      if (ok === undefined) {
        ok = signedWith(alg, signed, key, signature);
        checked.set(key, ok);
      }
      return ok;
    },
  });
}

/**
 * Whether a DER CRL names `issuerName` (a Name's DER, latin1, as {@link Crl.issuer}) and is signed by
 * `key`: read from its outer structure alone, before any entry is (for CRLs from the network).
 */
export function crlSignedBy(der: Uint8Array, key: KeyObject, issuerName: string): boolean {
  try {
    const outer = tlv(der, 0, der.length);
    const [tbs, sigAlg, sigValue] = children(der, outer);
    if (outer.tag !== 0x30 || outer.end !== der.length || !tbs || !sigAlg || sigValue?.tag !== 0x03) return false;
    let t = tlv(der, tbs.start, tbs.end);
    if (t.tag === 0x02) t = tlv(der, t.end, tbs.end); // version
    const issuer = tlv(der, t.end, tbs.end); // after the inner signature algorithm
    if (Buffer.from(der.subarray(issuer.at, issuer.end)).toString('latin1') !== issuerName) return false;
    const algOid = children(der, sigAlg)[0];
    if (!algOid) return false;
    return signedWith(
      oidText(der, algOid),
      der.subarray(tbs.at, tbs.end),
      key,
      der.subarray(sigValue.start + 1, sigValue.end),
    );
  } catch {
    return false;
  }
}

function isCritical(der: Uint8Array, ext: Tlv): boolean {
  const parts = children(der, ext);
  return parts.length === 3 && parts[1]!.tag === 0x01 && der[parts[1]!.start] !== 0;
}

/** PEM `X509 CRL` blocks, or DER bytes, as DER. */
export function crlDers(input: string | Uint8Array): Uint8Array[] {
  if (typeof input !== 'string') {
    const bytes = Buffer.from(input);
    // DER starts with a SEQUENCE; anything else is read as PEM text.
    if (bytes[0] === 0x30) return [bytes];
    input = bytes.toString('utf8');
  }
  const out: Uint8Array[] = [];
  const re = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g;
  for (let m = re.exec(input); m; m = re.exec(input)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}
