// The public key of a certificate as a JWK, for the client identity.
//
// node:crypto exports a JWK for RSA, EC and OKP keys, but at about 30 µs a key on the bench
// machine it was the largest single cost of a new client's identity after the signature check. The
// common key types are read here from the SubjectPublicKeyInfo in a few microseconds; anything else
// goes through node:crypto, and what JWK cannot express (DSA, RSA-PSS: node:crypto refuses them
// too) gives null. The test suite holds this reader to node:crypto's output, member order included.
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { children, expect, oidString, tlv, type Tlv } from './extensions.js';

const EC_CURVES: Record<string, { crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
  '1.3.132.0.35': { crv: 'P-521', size: 66 },
  '1.3.132.0.10': { crv: 'secp256k1', size: 32 },
};
const OKP_CURVES: Record<string, string> = { '1.3.101.112': 'Ed25519', '1.3.101.113': 'Ed448' };
const OID_EC = '1.2.840.10045.2.1';
const OID_RSA = '1.2.840.113549.1.1.1';

const b64u = (der: Uint8Array, start: number, end: number) => Buffer.from(der.buffer, der.byteOffset + start, end - start).toString('base64url');

/** An unsigned INTEGER's magnitude, as JWK wants it: no leading zero bytes. */
function unsigned(der: Uint8Array, t: Tlv): string | undefined {
  if (t.tag !== 0x02 || t.end === t.start || der[t.start]! & 0x80) return undefined;
  let start = t.start;
  while (start < t.end - 1 && der[start] === 0) start++;
  return b64u(der, start, t.end);
}

/** The JWK read from the DER, or undefined when the key is not one of the shapes handled here. */
function fromSpki(der: Uint8Array): JsonWebKey | undefined {
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
    const curve = alg[1]?.tag === 0x06 && alg.length === 2 ? EC_CURVES[oidString(der, alg[1])] : undefined;
    // Uncompressed points only; a compressed one goes through node:crypto, which expands it.
    if (!curve || bits.end - keyStart !== 1 + 2 * curve.size || der[keyStart] !== 0x04) return undefined;
    const x = keyStart + 1;
    const y = x + curve.size;
    return { kty: 'EC', x: b64u(der, x, y), y: b64u(der, y, bits.end), crv: curve.crv };
  }
  if (oid === OID_RSA) {
    // parameters: NULL (RFC 3279); absent is tolerated by OpenSSL, anything else is not this key type.
    if (alg.length > 2 || (alg[1] && (alg[1].tag !== 0x05 || alg[1].end !== alg[1].start))) return undefined;
    const seq = tlv(der, keyStart, bits.end);
    if (seq.tag !== 0x30 || seq.end !== bits.end) return undefined;
    const [n, e, ...rest] = children(der, seq);
    const nb = n && unsigned(der, n);
    const eb = e && unsigned(der, e);
    return nb && eb && rest.length === 0 ? { kty: 'RSA', n: nb, e: eb } : undefined;
  }
  const okp = OKP_CURVES[oid];
  if (okp && alg.length === 1) return { crv: okp, x: b64u(der, keyStart, bits.end), kty: 'OKP' };
  return undefined;
}

/** The certificate's public key as a JWK, or null when JWK cannot express it. `key` is asked for only when needed. */
export function certificateJwk(der: Uint8Array, key: () => KeyObject): JsonWebKey | null {
  try {
    const jwk = fromSpki(der);
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
