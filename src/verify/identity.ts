import { hash, type JsonWebKey, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
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
  /**
   * What the SSL object's revocation check learned (absent when it checks none): `good` (a current CRL
   * of every issuer in scope does not list it, or OCSP said good) or `unknown` (admitted under mode
   * ignore-ca-error), and how the leaf's status was learned.
   */
  readonly revocation?: Readonly<{ status: 'good' | 'unknown'; via: 'crl' | 'ocsp' }>;
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

/** Issuers and anchors are shared by many clients: their info is made once. */
const issuerInfo = new WeakMap<ParsedCert, CertificateInfo>();
function sharedInfo(c: ParsedCert): CertificateInfo {
  let info = issuerInfo.get(c);
  if (!info) issuerInfo.set(c, (info = certificateInfo(c)));
  return info;
}

const NO_SAN: SubjectAltNames = Object.freeze({ dns: [], email: [], ip: [], uri: [] }) as unknown as SubjectAltNames;

/**
 * A verified chain, as the verifier's cache keeps it: the leaf's DER (as a one-byte string: one
 * heap object, where a Buffer is three and an array-buffer record the collector walks), its
 * fingerprint and SANs, and the certificates above it. It is never handed to the application.
 * Identities are made from it per connection ({@link clientIdentity}); each field is computed the
 * first time any identity of the chain reads it, and kept here. A fleet of devices each connecting
 * once then costs the gateway the check alone when the application never reads who they are, and
 * a cached verdict holds a few small objects instead of a dozen strings and objects (the verifier
 * keeps 10,000 of them by default, and what they hold is what every major GC walks).
 */
export interface VerifiedChain {
  readonly der: string;
  readonly fp256: string;
  readonly san: SubjectAltNames;
  /** The intermediates of the path, leaf's issuer first, then the anchor. */
  readonly above: readonly ParsedCert[];
  info?: CertificateInfo;
  sanView?: Readonly<SubjectAltNames>;
  jwk?: Readonly<JsonWebKey> | null;
  chain?: readonly CertificateInfo[];
}

export function verifiedChain(path: readonly ParsedCert[], anchor: ParsedCert): VerifiedChain {
  const leaf = path[0]!;
  const { dns, email, ip, uri } = leaf.san;
  const san = dns.length + email.length + ip.length + uri.length === 0 ? NO_SAN : leaf.san;
  return {
    der: leaf.der.toString('latin1'),
    fp256: leaf.fp256,
    san,
    above: path.length === 1 ? [anchor] : [...path.slice(1), anchor],
  };
}

function leafInfo(c: VerifiedChain): CertificateInfo {
  if (!c.info) {
    const der = Buffer.from(c.der, 'latin1');
    c.info = infoOf(new X509Certificate(der), der, c.fp256);
  }
  return c.info;
}

/**
 * A verified client as the application sees it. The fields are own enumerable accessors, so an
 * identity reads, spreads (`{ ...identity }`), lists its keys and serialises to JSON as the plain
 * data object it describes; the chain it reads from is a private field, out of reach of
 * reflection. Frozen.
 */
class Identity {
  readonly #chain: VerifiedChain;
  declare readonly sslId: string;

  constructor(chain: VerifiedChain, sslId: string | undefined, revocation?: ClientIdentity['revocation']) {
    this.#chain = chain;
    Object.defineProperties(this, Identity.#fields);
    if (sslId !== undefined) Object.defineProperty(this, 'sslId', { value: sslId, enumerable: true });
    if (revocation !== undefined)
      Object.defineProperty(this, 'revocation', { value: Object.freeze({ ...revocation }), enumerable: true });
    Object.freeze(this);
  }

  static readonly #fields: PropertyDescriptorMap = (() => {
    const field = <T>(compute: (c: VerifiedChain) => T): PropertyDescriptor => ({
      enumerable: true,
      get(this: Identity) {
        return compute(this.#chain);
      },
    });
    const info = (k: keyof CertificateInfo) => field((c) => leafInfo(c)[k]);
    return {
      subject: info('subject'),
      issuer: info('issuer'),
      serialNumber: info('serialNumber'),
      fingerprint256: field((c) => c.fp256),
      fingerprint: info('fingerprint'),
      // A Date can be changed even inside a frozen object: each read gets its own.
      notBefore: field((c) => new Date(leafInfo(c).notBefore.getTime())),
      notAfter: field((c) => new Date(leafInfo(c).notAfter.getTime())),
      pem: info('pem'),
      san: field(
        (c) =>
          (c.sanView ??= Object.freeze({
            dns: Object.freeze([...c.san.dns]),
            email: Object.freeze([...c.san.email]),
            ip: Object.freeze([...c.san.ip]),
            uri: Object.freeze([...c.san.uri]),
          }) as Readonly<SubjectAltNames>),
      ),
      x5tS256: field((c) => Buffer.from(c.fp256, 'hex').toString('base64url')),
      jwk: field((c) => {
        if (c.jwk === undefined) {
          const der = Buffer.from(c.der, 'latin1');
          const jwk = certificateJwk(der, () => new X509Certificate(der).publicKey);
          c.jwk = jwk ? Object.freeze(jwk) : null;
        }
        return c.jwk;
      }),
      chain: field((c) => (c.chain ??= Object.freeze(c.above.map(sharedInfo)))),
    };
  })();

  /** `console.log` and `util.inspect` show the fields, not the accessors. */
  [inspect.custom](): object {
    return { ...this };
  }
}

/**
 * An identity of a verified chain: with `sslId`, the client of a connection whose SSL object's
 * `client.ca` verified it (`getClientIdentity`); without, the chain alone.
 */
export function clientIdentity(
  chain: VerifiedChain,
  sslId: string,
  revocation?: ClientIdentity['revocation'],
): ClientIdentity;
export function clientIdentity(chain: VerifiedChain): Omit<ClientIdentity, 'sslId'>;
export function clientIdentity(
  chain: VerifiedChain,
  sslId?: string,
  revocation?: ClientIdentity['revocation'],
): ClientIdentity | Omit<ClientIdentity, 'sslId'> {
  return new Identity(chain, sslId, revocation) as unknown as ClientIdentity;
}
