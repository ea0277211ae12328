import { X509Certificate, hash, type JsonWebKey } from 'node:crypto';
import type { ParsedCert, SubjectAltNames } from './cert.js';
import { certificateJwk } from './jwk.js';

/** A certificate as the application sees it: plain data (frozen), no library objects. */
export interface CertificateInfo {
  /** Subject DN in RFC 2253 form (most specific RDN first), as nginx's `$ssl_client_s_dn`. */
  readonly subject: string;
  /** Issuer DN in RFC 2253 form. */
  readonly issuer: string;
  /** Serial number, upper-case hex (nginx's `$ssl_client_serial`). Not unique across issuers: key on fingerprints. */
  readonly serialNumber: string;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint256: string;
  /** SHA-1 of the DER, lower-case hex (nginx's `$ssl_client_fingerprint`). */
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly pem: string;
}

/** The verified client, as exposed by `getClientIdentity(req)`. */
export interface ClientIdentity extends CertificateInfo {
  /** Subject alternative names by type (empty arrays when the certificate has none, as v1 certificates). */
  readonly san: Readonly<SubjectAltNames>;
  /** RFC 8705 certificate thumbprint: base64url SHA-256 of the DER, for `cnf` in bound tokens. */
  readonly x5tS256: string;
  /**
   * The certificate's public key as a JWK (RSA, EC and OKP keys), or null for keys node:crypto
   * cannot export as JWK (DSA, RSA-PSS, curves without a JWK name such as brainpool); those
   * clients are still verified and accepted.
   */
  readonly jwk: Readonly<JsonWebKey> | null;
  /** The intermediates the path went through, leaf's issuer first, and the trust anchor last. */
  readonly chain: readonly CertificateInfo[];
  /** Id of the SSL object whose `client.ca` verified the certificate. */
  readonly sslId: string;
}

/** Node's multi-line DN (one RDN a line, values already escaped per RFC 2253) to RFC 2253 order and form. */
export function rfc2253(multiline: string): string {
  if (multiline === '') return '';
  return multiline
    .split('\n')
    .reverse()
    .map((rdn) => rdn.replace(/ \+ /g, '+'))
    .join(',');
}

export function certificateInfo(c: ParsedCert): CertificateInfo {
  return infoOf(c.node, c.der, c.fp256);
}

function infoOf(node: X509Certificate, der: Buffer, fp256: string): CertificateInfo {
  return Object.freeze({
    // Node 20 gives undefined, not '', for an empty Name (legal: RFC 5280 4.1.2.6).
    subject: rfc2253(node.subject ?? ''),
    issuer: rfc2253(node.issuer ?? ''),
    serialNumber: node.serialNumber.toUpperCase(),
    fingerprint256: fp256,
    fingerprint: hash('sha1', der, 'hex'),
    notBefore: new Date(Date.parse(node.validFrom)),
    notAfter: new Date(Date.parse(node.validTo)),
    pem: node.toString(),
  });
}

/** Everything of the identity that depends only on the verified path; the SSL object id is added per connection. */
export type ChainIdentity = Omit<ClientIdentity, 'sslId'>;

/** Issuers and anchors are shared by many clients: their info is made once. */
const issuerInfo = new WeakMap<ParsedCert, CertificateInfo>();
function sharedInfo(c: ParsedCert): CertificateInfo {
  let info = issuerInfo.get(c);
  if (!info) issuerInfo.set(c, (info = certificateInfo(c)));
  return info;
}

/**
 * What an identity is made from. Verification keeps only this (the leaf's DER, what the check
 * already read, the certificates above it); each field is computed the first time any identity
 * of the chain is read, and kept. A fleet of devices each connecting once costs the gateway no
 * more than the check when the application never reads the identity, and a cached verdict holds a
 * few hundred bytes of heap instead of a dozen strings and objects.
 */
interface Source {
  readonly der: Buffer;
  readonly fp256: string;
  readonly san: SubjectAltNames;
  /** The intermediates of the path, leaf's issuer first, then the anchor. */
  readonly above: readonly ParsedCert[];
  info?: CertificateInfo;
  sanView?: Readonly<SubjectAltNames>;
  jwk?: Readonly<JsonWebKey> | null;
  chain?: readonly CertificateInfo[];
  /** The identity per SSL object: nearly always one, so the first is kept outside the map. */
  firstSsl?: ClientIdentity;
  moreSsl?: Map<string, ClientIdentity>;
}

const kSource = Symbol('mtls-gate.identity');
type Holder = { [kSource]: Source };

function leafInfo(s: Source): CertificateInfo {
  return (s.info ??= infoOf(new X509Certificate(s.der), s.der, s.fp256));
}
const fromInfo = (k: keyof CertificateInfo): PropertyDescriptor => ({
  enumerable: true,
  get(this: Holder) {
    return leafInfo(this[kSource])[k];
  },
});
const computed = <T>(compute: (s: Source) => T): PropertyDescriptor => ({
  enumerable: true,
  get(this: Holder) {
    return compute(this[kSource]);
  },
});
/**
 * The identity's fields, as own enumerable accessors: an identity reads, spreads, lists its keys
 * and serialises to JSON as the plain data object it describes.
 */
const FIELDS: PropertyDescriptorMap = {
  subject: fromInfo('subject'),
  issuer: fromInfo('issuer'),
  serialNumber: fromInfo('serialNumber'),
  fingerprint256: computed((s) => s.fp256),
  fingerprint: fromInfo('fingerprint'),
  notBefore: fromInfo('notBefore'),
  notAfter: fromInfo('notAfter'),
  pem: fromInfo('pem'),
  san: computed(
    (s) =>
      (s.sanView ??= Object.freeze({
        dns: Object.freeze([...s.san.dns]),
        email: Object.freeze([...s.san.email]),
        ip: Object.freeze([...s.san.ip]),
        uri: Object.freeze([...s.san.uri]),
      }) as Readonly<SubjectAltNames>),
  ),
  x5tS256: computed((s) => Buffer.from(s.fp256, 'hex').toString('base64url')),
  jwk: computed((s) => {
    if (s.jwk === undefined) {
      const jwk = certificateJwk(s.der, () => new X509Certificate(s.der).publicKey);
      s.jwk = jwk ? Object.freeze(jwk) : null;
    }
    return s.jwk;
  }),
  chain: computed((s) => (s.chain ??= Object.freeze(s.above.map(sharedInfo)))),
};

function identityOf(s: Source, sslId: string | undefined): ClientIdentity {
  const o = {};
  Object.defineProperty(o, kSource, { value: s });
  Object.defineProperties(o, FIELDS);
  if (sslId !== undefined) Object.defineProperty(o, 'sslId', { value: sslId, enumerable: true });
  return Object.freeze(o) as ClientIdentity;
}

/** The identity of a verified path (leaf first, then intermediates), anchored at `anchor`. */
export function chainIdentity(path: readonly ParsedCert[], anchor: ParsedCert): ChainIdentity {
  const leaf = path[0]!;
  const s: Source = { der: leaf.der, fp256: leaf.fp256, san: leaf.san, above: [...path.slice(1), anchor] };
  return identityOf(s, undefined);
}

/** The same identity with the id of the SSL object that verified it; one object per (chain, SSL object). */
export function withSslId(identity: ChainIdentity, sslId: string): ClientIdentity {
  const s = (identity as unknown as Holder)[kSource];
  if (s.firstSsl?.sslId === sslId) return s.firstSsl;
  if (!s.firstSsl) return (s.firstSsl = identityOf(s, sslId));
  s.moreSsl ??= new Map();
  let id = s.moreSsl.get(sslId);
  if (!id) s.moreSsl.set(sslId, (id = identityOf(s, sslId)));
  return id;
}
