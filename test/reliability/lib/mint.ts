// Certificates of any shape, signed with node:crypto (synchronous, no @peculiar/x509), from a small
// pool of keys minted once: key generation is the cost, signing is cheap.
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import {
  bits,
  bool,
  explicit,
  ia5,
  implicit,
  int,
  name,
  namedBits,
  nul,
  OID,
  octets,
  oid,
  pem,
  seq,
  time,
  tlv,
} from './der.js';

export type KeyType = 'ec' | 'rsa';

export interface PoolKey {
  readonly type: KeyType;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly spki: Buffer;
  /** SHA-1 over the SPKI: what SKI/AKI carry for this key. */
  readonly keyId: Buffer;
  readonly keyPem: string;
}

/** One fresh key of the pool's kinds. */
export function poolKey(type: KeyType): PoolKey {
  const { privateKey, publicKey } =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return Object.freeze({
    type,
    privateKey,
    publicKey,
    spki,
    keyId: createHash('sha1').update(spki).digest(),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  });
}

/** `ec` EC P-256 keys and `rsa` RSA 2048 keys, generated now. */
export function keyPool(ec: number, rsa: number): { ec: PoolKey[]; rsa: PoolKey[] } {
  return {
    ec: Array.from({ length: ec }, () => poolKey('ec')),
    rsa: Array.from({ length: rsa }, () => poolKey('rsa')),
  };
}

export type Rdns = readonly (readonly [string, string])[];

export interface CertSpec {
  /** 1 = no version field and no extensions (the guide's `openssl x509 -req` output). Default 3. */
  version?: 1 | 3;
  serial?: bigint | Buffer;
  subject: Rdns;
  issuer: Rdns;
  notBefore: number;
  notAfter: number;
  /** The certified key. */
  key: PoolKey;
  /** The key that signs. */
  signer: PoolKey;
  /** basicConstraints; absent when undefined. */
  basicConstraints?: { ca: boolean; pathLen?: number; critical?: boolean };
  /**
   * keyUsage bit mask (bit n = 1 << n: 0 digitalSignature, 2 keyEncipherment, 4 keyAgreement, 5 keyCertSign, 6
   * cRLSign).
   */
  keyUsage?: { mask: number; critical?: boolean };
  extKeyUsage?: readonly string[];
  ski?: Buffer;
  aki?: Buffer;
  san?: { dns?: readonly string[]; email?: readonly string[]; uri?: readonly string[]; ip?: readonly Buffer[] };
  extra?: readonly { oid: string; critical: boolean; value: Buffer }[];
  /** Flip one bit of the signature value. */
  damageSignature?: boolean;
}

export interface Minted {
  readonly der: Buffer;
  readonly pem: string;
}

function extension(type: string, critical: boolean | undefined, value: Buffer): Buffer {
  return seq(oid(type), ...(critical ? [bool(true)] : []), octets(value));
}

export const KU = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
} as const;

/** The TBSCertificate of a spec (exported for tests that want to re-sign or cut it). */
export function tbsOf(s: CertSpec): Buffer {
  const alg = s.signer.type === 'ec' ? seq(oid(OID.ecdsaSha256)) : seq(oid(OID.rsaSha256), nul());
  const exts: Buffer[] = [];
  if (s.version !== 1) {
    if (s.basicConstraints) {
      const { ca, pathLen, critical } = s.basicConstraints;
      exts.push(
        extension(
          OID.basicConstraints,
          critical,
          seq(...(ca ? [bool(true)] : []), ...(pathLen !== undefined ? [int(pathLen)] : [])),
        ),
      );
    }
    if (s.keyUsage) exts.push(extension(OID.keyUsage, s.keyUsage.critical, namedBits(s.keyUsage.mask)));
    if (s.extKeyUsage) exts.push(extension(OID.extKeyUsage, false, seq(...s.extKeyUsage.map(oid))));
    if (s.san) {
      const names = [
        ...(s.san.email ?? []).map((v) => implicit(1, Buffer.from(v, 'utf8'))),
        ...(s.san.dns ?? []).map((v) => implicit(2, Buffer.from(v, 'utf8'))),
        ...(s.san.uri ?? []).map((v) => implicit(6, Buffer.from(v, 'utf8'))),
        ...(s.san.ip ?? []).map((v) => implicit(7, v)),
      ];
      exts.push(extension(OID.san, false, seq(...names)));
    }
    if (s.ski) exts.push(extension(OID.ski, false, octets(s.ski)));
    if (s.aki) exts.push(extension(OID.aki, false, seq(implicit(0, s.aki))));
    for (const e of s.extra ?? []) exts.push(extension(e.oid, e.critical, e.value));
  }
  const serial =
    s.serial ??
    createHash('sha256')
      .update(s.key.spki)
      .update(JSON.stringify([s.subject, s.issuer, s.notBefore]))
      .digest()
      .subarray(0, 16);
  return seq(
    ...(s.version === 1 ? [] : [explicit(0, int(2))]),
    int(typeof serial === 'bigint' ? serial : Buffer.from(serial)),
    alg,
    name(s.issuer),
    seq(time(s.notBefore), time(s.notAfter)),
    name(s.subject),
    s.key.spki,
    ...(exts.length > 0 ? [explicit(3, seq(...exts))] : []),
  );
}

/** Signs a TBSCertificate with `signer` and wraps it into a Certificate. */
export function signTbs(tbs: Buffer, signer: PoolKey, damage = false): Minted {
  const alg = signer.type === 'ec' ? seq(oid(OID.ecdsaSha256)) : seq(oid(OID.rsaSha256), nul());
  const sig = sign('sha256', tbs, signer.privateKey);
  // The last byte sits inside the value (ECDSA's s, or the RSA block), so the DER stays well-formed.
  if (damage) sig[sig.length - 1]! ^= 0x01;
  const der = seq(tbs, alg, bits(sig));
  return Object.freeze({ der, pem: pem(der) });
}

export function mint(s: CertSpec): Minted {
  return signTbs(tbsOf(s), s.signer, s.damageSignature);
}

export { ia5, tlv };
