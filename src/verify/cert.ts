import { hash, type KeyObject, X509Certificate } from 'node:crypto';
import { type X509, x509 } from '../internal/x509.js';
import { certificateVersion } from './der.js';
import { type ExtensionFields, escapeSanText, readExtensions } from './extensions.js';

const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SAN = '2.5.29.17';
const OID_SKI = '2.5.29.14';
const OID_AKI = '2.5.29.35';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * Critical extensions a verifier may accept: the set OpenSSL processes (`X509_supported_extension`),
 * which is what nginx and APISIX rely on. Any other critical extension fails the chain (RFC 5280 4.2).
 */
const SUPPORTED_CRITICAL = new Set([
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  OID_EXT_KEY_USAGE,
  OID_SAN,
  '2.5.29.30', // nameConstraints: enforced by OpenSSL in the handshake, which the guard also requires
  '2.5.29.31', // cRLDistributionPoints
  '2.5.29.32', // certificatePolicies
  '2.5.29.33', // policyMappings
  '2.5.29.36', // policyConstraints
  '2.5.29.54', // inhibitAnyPolicy
  '2.16.840.1.113730.1.1', // netscape-cert-type
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '1.3.6.1.5.5.7.48.1.5', // OCSP no-check
  '1.3.6.1.5.5.7.1.7', // sbgp-ipAddrBlock
  '1.3.6.1.5.5.7.1.8', // sbgp-autonomousSysNum
]);

/** True when one of these critical extension OIDs is outside the set a verifier may accept. */
export function hasUnsupportedCritical(oids: readonly string[]): boolean {
  return oids.some((oid) => !SUPPORTED_CRITICAL.has(oid));
}

/** Subject alternative names by type. */
export interface SubjectAltNames {
  dns: string[];
  email: string[];
  ip: string[];
  uri: string[];
}

/** What the verifier needs of one certificate, parsed once and then shared. */
export interface ParsedCert {
  readonly der: Buffer;
  /** SHA-256 of the DER, lower-case hex without separators. */
  readonly fp256: string;
  readonly node: X509Certificate;
  readonly publicKey: KeyObject;
  /** SHA-256 of the SubjectPublicKeyInfo, base64: two certificates with one key share it. */
  readonly spki: string;
  /** Node's multi-line subject/issuer strings: same escaping for both, so they compare for chaining. */
  readonly subject: string;
  readonly issuer: string;
  readonly version: number;
  readonly notBefore: number;
  readonly notAfter: number;
  /** basicConstraints: undefined when the extension is absent. */
  readonly ca: boolean | undefined;
  readonly pathLen: number | undefined;
  /** keyUsage bit mask (KeyUsageFlags), undefined when absent. */
  readonly keyUsage: number | undefined;
  /** extendedKeyUsage OIDs, undefined when absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly ski: string | undefined;
  readonly aki: string | undefined;
  /** Critical extensions outside {@link SUPPORTED_CRITICAL}. */
  readonly unsupportedCritical: readonly string[];
  readonly san: SubjectAltNames;
}

export const KU_DIGITAL_SIGNATURE = 1;
export const KU_KEY_AGREEMENT = 16;
export const KU_KEY_CERT_SIGN = 32;

/**
 * The extensions through @peculiar/x509's object model: thorough, and slow (about a millisecond a
 * certificate on the bench machine). Used for what is configured (client CAs, server
 * certificates), where it runs once per change.
 */
export function readExtensionsThoroughly(der: Uint8Array): ExtensionFields {
  const px = new x509.X509Certificate(der);
  const out: ExtensionFields = {
    ca: undefined,
    pathLen: undefined,
    keyUsage: undefined,
    extKeyUsage: undefined,
    ski: undefined,
    aki: undefined,
    critical: [],
    san: { dns: [], email: [], ip: [], uri: [] },
  };
  for (const ext of px.extensions) {
    if (ext.critical) out.critical.push(ext.type);
    switch (ext.type) {
      case OID_BASIC_CONSTRAINTS: {
        const bc = ext as X509.BasicConstraintsExtension;
        out.ca = bc.ca;
        out.pathLen = bc.pathLength;
        break;
      }
      case OID_KEY_USAGE:
        out.keyUsage = (ext as X509.KeyUsagesExtension).usages;
        break;
      case OID_EXT_KEY_USAGE:
        out.extKeyUsage = Array.from((ext as X509.ExtendedKeyUsageExtension).usages, String);
        break;
      case OID_SKI:
        out.ski = (ext as X509.SubjectKeyIdentifierExtension).keyId;
        break;
      case OID_AKI:
        out.aki = (ext as X509.AuthorityKeyIdentifierExtension).keyId;
        break;
      case OID_SAN:
        for (const name of (ext as X509.SubjectAlternativeNameExtension).names.items) {
          if (name.type === 'dns') out.san.dns.push(escapeSanText(name.value));
          else if (name.type === 'email') out.san.email.push(escapeSanText(name.value));
          else if (name.type === 'ip') out.san.ip.push(name.value);
          else if (name.type === 'url') out.san.uri.push(escapeSanText(name.value));
        }
        break;
    }
  }
  return out;
}

/**
 * Parses a DER certificate, or takes one node already parsed (a peer certificate). Extensions are
 * read by `read`: the DER reader by default (the handshake path), {@link readExtensionsThoroughly}
 * for configuration.
 */
export function parseCert(
  input: Buffer | X509Certificate,
  read: (der: Uint8Array) => ExtensionFields = readExtensions,
): ParsedCert {
  const node = input instanceof X509Certificate ? input : new X509Certificate(input);
  const der = node.raw;
  const { ca, pathLen, keyUsage, extKeyUsage, ski, aki, critical, san } = read(der);
  const unsupportedCritical = critical.filter((oid) => !SUPPORTED_CRITICAL.has(oid));
  const notBefore = Date.parse(node.validFrom);
  const notAfter = Date.parse(node.validTo);
  // Node prints "Bad time value" for dates OpenSSL cannot read; comparisons with NaN would pass.
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) throw new Error('unreadable validity dates');
  let publicKey: KeyObject | undefined;
  let spki: string | undefined;
  let subject: string | undefined;
  return {
    der,
    // Node has this digest already (collectSent asked for it); the hex form without colons is ours.
    fp256: node.fingerprint256.replace(/:/g, '').toLowerCase(),
    node,
    // Made on first use and kept (node:crypto makes a new key object on every read): an issuer's
    // key verifies every leaf it signed; a leaf's own key is needed only for its JWK, which is read
    // from the DER.
    get publicKey() {
      return (publicKey ??= node.publicKey);
    },
    get spki() {
      return (spki ??= hash('sha256', this.publicKey.export({ type: 'spki', format: 'der' }), 'base64'));
    },
    // Read on first use: a leaf's subject only names it in a failure and in its identity.
    // Node 20 gives undefined, not '', for an empty Name (legal: RFC 5280 4.1.2.6).
    get subject() {
      return (subject ??= node.subject ?? '');
    },
    issuer: node.issuer ?? '',
    version: certificateVersion(der),
    notBefore,
    notAfter,
    ca,
    pathLen,
    keyUsage,
    extKeyUsage,
    ski,
    aki,
    unsupportedCritical,
    san,
  };
}

/** The base64 bodies (white space removed) of the PEM blocks of the given label. */
export function pemBodies(pem: string, label: string): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => m[1]!.replace(/\s+/g, ''));
}

/** Splits a PEM bundle into DER blocks of the given label; throws on anything that is not PEM. */
export function pemBlocks(pem: string, label: string): Buffer[] {
  return pemBodies(pem, label).map((text) => Buffer.from(text, 'base64'));
}

/** Could `issuer` have issued `child`: names chain, and key identifiers agree when both are present. */
export function namesChain(child: ParsedCert, issuer: ParsedCert): boolean {
  if (child.issuer !== issuer.subject) return false;
  if (child.aki !== undefined && issuer.ski !== undefined && child.aki !== issuer.ski) return false;
  return true;
}

/** Signature check with node:crypto (synchronous, several times faster than WebCrypto here). */
export function signedBy(child: ParsedCert, issuer: ParsedCert): boolean {
  try {
    return child.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
