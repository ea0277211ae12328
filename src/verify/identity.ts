import { hash, type JsonWebKey } from 'node:crypto';
import type { ParsedCert, SubjectAltNames } from './cert.js';
import { certificateJwk } from './jwk.js';

const freezeJwk = (jwk: JsonWebKey | null) => (jwk ? Object.freeze(jwk) : null);

/** A certificate as the application sees it: plain data, no library objects. */
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
  return Object.freeze({
    subject: rfc2253(c.subject),
    issuer: rfc2253(c.issuer),
    serialNumber: c.node.serialNumber.toUpperCase(),
    fingerprint256: c.fp256,
    fingerprint: hash('sha1', c.der, 'hex'),
    notBefore: new Date(c.notBefore),
    notAfter: new Date(c.notAfter),
    pem: c.node.toString(),
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

export function chainIdentity(path: readonly ParsedCert[], anchor: ParsedCert): ChainIdentity {
  const leaf = path[0]!;
  return Object.freeze({
    ...certificateInfo(leaf),
    san: Object.freeze({
      dns: Object.freeze([...leaf.san.dns]),
      email: Object.freeze([...leaf.san.email]),
      ip: Object.freeze([...leaf.san.ip]),
      uri: Object.freeze([...leaf.san.uri]),
    }) as Readonly<SubjectAltNames>,
    x5tS256: Buffer.from(leaf.fp256, 'hex').toString('base64url'),
    jwk: freezeJwk(certificateJwk(leaf.der, () => leaf.publicKey)),
    chain: Object.freeze([...path.slice(1), anchor].map(sharedInfo)),
  });
}
