// The public key of a certificate as a JWK, for the client identity.
//
// node:crypto exports a JWK for RSA, EC and OKP keys, but at about 30 µs a key on the bench
// machine it was the largest single cost of a new client's identity after the signature check. The
// common key types are read here from the SubjectPublicKeyInfo in a few microseconds, with the checks
// node:crypto makes (EC point on the curve, key sizes, positive integers); anything else goes through
// node:crypto, and what it cannot export (DSA, RSA-PSS, curves without a JWK name, malformed keys)
// gives null. The test suite holds this reader to node:crypto's output, member order included, on
// openssl-made keys and on hand-built malformed ones.
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { children, expect, oidString, type Tlv, tlv } from '../internal/der.js';

/** Short Weierstrass curves y² = x³ + ax + b over p (SEC 2, FIPS 186-4): the point must lie on the curve. */
interface Curve {
  crv: string;
  size: number;
  p: bigint;
  a: bigint;
  b: bigint;
}
const P256 = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P384 = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn;
const P521 = (1n << 521n) - 1n;
const K256 = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const EC_CURVES: Record<string, Curve> = {
  '1.2.840.10045.3.1.7': {
    crv: 'P-256',
    size: 32,
    p: P256,
    a: P256 - 3n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
  },
  '1.3.132.0.34': {
    crv: 'P-384',
    size: 48,
    p: P384,
    a: P384 - 3n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
  },
  '1.3.132.0.35': {
    crv: 'P-521',
    size: 66,
    p: P521,
    a: P521 - 3n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
  },
  '1.3.132.0.10': { crv: 'secp256k1', size: 32, p: K256, a: 0n, b: 7n },
};
/** Edwards curves and their key sizes (RFC 8410). */
const OKP_CURVES: Record<string, { crv: string; size: number }> = {
  '1.3.101.112': { crv: 'Ed25519', size: 32 },
  '1.3.101.113': { crv: 'Ed448', size: 57 },
};
const OID_EC = '1.2.840.10045.2.1';
const OID_RSA = '1.2.840.113549.1.1.1';

const b64u = (der: Uint8Array, start: number, end: number) =>
  Buffer.from(der.buffer, der.byteOffset + start, end - start).toString('base64url');

/** A positive INTEGER's magnitude, as JWK wants it: no leading zero bytes. Zero and negatives: undefined. */
export function positive(der: Uint8Array, t: Tlv): string | undefined {
  if (t.tag !== 0x02 || t.end === t.start || der[t.start]! & 0x80) return undefined;
  let start = t.start;
  while (start < t.end - 1 && der[start] === 0) start++;
  if (der[start] === 0) return undefined;
  return b64u(der, start, t.end);
}

const bigint = (der: Uint8Array, start: number, end: number) =>
  BigInt(`0x${Buffer.from(der.buffer, der.byteOffset + start, end - start).toString('hex')}`);

/** Is (x, y) a point of the curve (not the point at infinity, which has no affine form)? */
function onCurve(c: Curve, x: bigint, y: bigint): boolean {
  if (x >= c.p || y >= c.p) return false;
  const { p } = c;
  return (y * y - (x * x * x + c.a * x + c.b)) % p === 0n;
}

/**
 * An EC public point (the bytes [start, end) of `der`) on the curve named by `curveOid` as a JWK, or
 * undefined when the curve is not one of those above, the point is compressed or it is off the curve.
 */
export function ecPointJwk(der: Uint8Array, curveOid: string, start: number, end: number): JsonWebKey | undefined {
  const curve = EC_CURVES[curveOid];
  // Uncompressed points only; a compressed one goes through node:crypto, which expands it.
  if (!curve || end - start !== 1 + 2 * curve.size || der[start] !== 0x04) return undefined;
  const x = start + 1;
  const y = x + curve.size;
  // node:crypto refuses a point off the curve; so does this reader (to node:crypto, then null).
  if (!onCurve(curve, bigint(der, x, y), bigint(der, y, end))) return undefined;
  return { kty: 'EC', x: b64u(der, x, y), y: b64u(der, y, end), crv: curve.crv };
}

/**
 * The public key of a DER certificate as a JWK, or undefined when the key is not one of the shapes
 * handled here (RSA, EC on P-256/384/521 or secp256k1 with an uncompressed point, Ed25519/Ed448).
 */
export function spkiJwk(der: Uint8Array): JsonWebKey | undefined {
  const cert = expect(tlv(der, 0, der.length), 0x30, 'Certificate');
  const tbs = children(der, expect(children(der, cert)[0], 0x30, 'TBSCertificate'));
  // version [0] (absent in v1), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  const spki = children(der, expect(tbs[tbs[0]?.tag === 0xa0 ? 6 : 5], 0x30, 'SubjectPublicKeyInfo'));
  const alg = children(der, expect(spki[0], 0x30, 'AlgorithmIdentifier'));
  const bits = expect(spki[1], 0x03, 'subjectPublicKey');
  if (spki.length !== 2 || bits.end - bits.start < 2 || der[bits.start] !== 0) return undefined;
  const keyStart = bits.start + 1;
  const oid = oidString(der, expect(alg[0], 0x06, 'algorithm'));
  if (oid === OID_EC) {
    if (alg[1]?.tag !== 0x06 || alg.length !== 2) return undefined;
    return ecPointJwk(der, oidString(der, alg[1]), keyStart, bits.end);
  }
  if (oid === OID_RSA) {
    // parameters: NULL (RFC 3279); absent is tolerated by OpenSSL, anything else is not this key type.
    if (alg.length > 2 || (alg[1] && (alg[1].tag !== 0x05 || alg[1].end !== alg[1].start))) return undefined;
    const seq = tlv(der, keyStart, bits.end);
    if (seq.tag !== 0x30 || seq.end !== bits.end) return undefined;
    const [n, e, ...rest] = children(der, seq);
    const nb = n && positive(der, n);
    const eb = e && positive(der, e);
    return nb && eb && rest.length === 0 ? { kty: 'RSA', n: nb, e: eb } : undefined;
  }
  const okp = OKP_CURVES[oid];
  if (okp && alg.length === 1 && bits.end - keyStart === okp.size)
    return { crv: okp.crv, x: b64u(der, keyStart, bits.end), kty: 'OKP' };
  return undefined;
}

/** The certificate's public key as a JWK, or null when JWK cannot express it. `key` is asked for only when needed. */
export function certificateJwk(der: Uint8Array, key: () => KeyObject): JsonWebKey | null {
  try {
    const jwk = spkiJwk(der);
    if (jwk) return jwk;
  } catch {
    // Left to node:crypto, which parsed this certificate already.
  }
  try {
    return key().export({ format: 'jwk' });
  } catch {
    return null;
  }
}
