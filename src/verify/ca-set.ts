import { hash } from 'node:crypto';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { describe } from '../internal/validate.js';
import { KU_KEY_CERT_SIGN, type ParsedCert, parseCert, pemBlocks, readExtensionsThoroughly } from './cert.js';

/**
 * The trust anchors of one SSL object's `client.ca`, parsed and checked once, when the object is set.
 * Every client verified against this set shares this work.
 */
export interface CaSet {
  /** SHA-256 over the anchors' fingerprints: equal bundles share verdicts, a changed bundle shares none. */
  readonly key: string;
  readonly anchors: readonly ParsedCert[];
  readonly bySubject: ReadonlyMap<string, readonly ParsedCert[]>;
  readonly byFingerprint: ReadonlyMap<string, ParsedCert>;
  /** The bundle as PEM, for the TLS context (CertificateRequest CA names, OpenSSL's own check). */
  readonly pem: string;
}

/** A certificate can anchor a client chain if it is a CA: basicConstraints cA, or an X.509 v1 self-issued root. */
function anchorProblem(c: ParsedCert): string | undefined {
  if (c.ca === false) return 'basicConstraints cA is false';
  if (c.ca === undefined && !(c.version === 1 && c.subject === c.issuer)) {
    return 'it has no basicConstraints extension (only an X.509 v1 self-issued root may omit it)';
  }
  if (c.keyUsage !== undefined && (c.keyUsage & KU_KEY_CERT_SIGN) === 0) return 'keyUsage lacks keyCertSign';
  if (c.unsupportedCritical.length > 0)
    return `it has unsupported critical extension ${c.unsupportedCritical.join(', ')}`;
  return undefined;
}

/** Parses and checks a CA bundle; throws a config error naming `field` when it is unusable. */
export function compileCaSet(pem: unknown, field: string): CaSet {
  if (typeof pem !== 'string' || pem.length === 0) {
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, `expected a PEM string, received ${describe(pem)}`);
  }
  if (pem.length > 256 * 1024) {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      field,
      `CA bundle is ${pem.length} bytes, over the 256 KiB limit`,
    );
  }
  const blocks = pemBlocks(pem, 'CERTIFICATE');
  if (blocks.length === 0) {
    throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, field, 'no "-----BEGIN CERTIFICATE-----" block found');
  }
  const anchors: ParsedCert[] = [];
  blocks.forEach((der, i) => {
    let c: ParsedCert;
    try {
      c = parseCert(der, readExtensionsThoroughly);
      // parseCert makes the public key on first use; an anchor's key must decode now, at config time.
      void c.publicKey;
    } catch (err) {
      throw new MtlsGateConfigError(ErrorCodes.PEM_INVALID, `${field}[${i}]`, 'certificate cannot be parsed', err);
    }
    const problem = anchorProblem(c);
    if (problem) {
      throw new MtlsGateConfigError(
        ErrorCodes.CA_INVALID,
        `${field}[${i}]`,
        `"${c.subject.replace(/\n/g, ', ')}" is not a CA certificate: ${problem}`,
      );
    }
    if (!anchors.some((a) => a.fp256 === c.fp256)) anchors.push(c);
  });
  const bySubject = new Map<string, ParsedCert[]>();
  for (const a of anchors) {
    const list = bySubject.get(a.subject);
    if (list) list.push(a);
    else bySubject.set(a.subject, [a]);
  }
  // One-shot digests (crypto.hash) everywhere a native object would otherwise wait for a GC: see
  // `retained` in ssl/object.ts for what late native frees cost a large store.
  const key = hash(
    'sha256',
    anchors
      .map((a) => a.fp256)
      .sort()
      .join(','),
    'hex',
  );
  return {
    key,
    anchors,
    bySubject,
    byFingerprint: new Map(anchors.map((a) => [a.fp256, a])),
    pem: anchors.map((a) => a.node.toString()).join(''),
  };
}
