// Many distinct server certificates, fast, for the many-tenants bench: the tests' synchronous minter
// (test/reliability/lib/mint.ts: a DER encoder and one ECDSA signature each, about 0.15 ms a certificate).
import { OID } from '../../test/reliability/lib/der.js';
import { KU, keyPool, mint } from '../../test/reliability/lib/mint.js';

/** A server CA, then `serverCert(i)` for `t<i>.bench.test` (leaf + CA) with a key from a pool of `keys`. */
export function serverMint(keys = 1000) {
  const pool = keyPool(keys + 1, 0).ec;
  const caKey = pool.pop()!;
  const now = Date.now();
  const validity = { notBefore: now - 3_600_000, notAfter: now + 30 * 86_400_000 };
  const caName = [[OID.cn, 'bench server CA']] as const;
  const ca = mint({
    subject: caName,
    issuer: caName,
    ...validity,
    key: caKey,
    signer: caKey,
    basicConstraints: { ca: true, critical: true },
    keyUsage: { mask: KU.keyCertSign | KU.cRLSign, critical: true },
  });
  return {
    caPem: ca.pem,
    serverCert(i: number): { cert: string; key: string; sni: string } {
      const sni = `t${i}.bench.test`;
      const key = pool[i % keys]!;
      const leaf = mint({
        serial: BigInt(1000 + i),
        subject: [[OID.cn, sni]],
        issuer: caName,
        ...validity,
        key,
        signer: caKey,
        extKeyUsage: [OID.serverAuth],
        san: { dns: [sni] },
      });
      return { cert: leaf.pem + ca.pem, key: key.keyPem, sni };
    },
  };
}
