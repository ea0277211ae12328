// Many distinct server certificates, fast: a hand-written DER encoder and one ECDSA signature each
// (about 0.1 ms), for the many-tenants bench. Bench code only; the product mints with createTestPki.
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';

const len = (n: number) =>
  n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
const tlv = (tag: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...p: Buffer[]) => tlv(0x30, ...p);
const int = (n: number) => {
  const hex = n.toString(16).padStart(2, '0');
  let b = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
};
const oid = (s: string) => {
  const arcs = s.split('.').map(Number);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const a of arcs.slice(2)) {
    const bytes = [a & 0x7f];
    for (let v = a >> 7; v > 0; v >>= 7) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
};
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s));
const name = (cn: string) => seq(tlv(0x31, seq(oid('2.5.4.3'), utf8(cn))));
const time = (d: Date) => tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const ext = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));

const pem = (der: Buffer, label: string) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

function certificate(o: {
  serial: number;
  issuer: string;
  subject: string;
  spki: Buffer;
  extensions: Buffer[];
  signer: KeyObject;
}): Buffer {
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, int(2)),
    int(o.serial),
    ECDSA_SHA256,
    name(o.issuer),
    seq(time(new Date(now - 3_600_000)), time(new Date(now + 30 * 86_400_000))),
    name(o.subject),
    o.spki,
    tlv(0xa3, seq(...o.extensions)),
  );
  const signature = sign('sha256', tbs, o.signer);
  return seq(tbs, ECDSA_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}

/** A server CA, then `serverCert(i)` for `t<i>.bench.test` with a key from a pool of `keys`. */
export function serverMint(keys = 1000) {
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = ca.publicKey.export({ type: 'spki', format: 'der' });
  const caDer = certificate({
    serial: 1,
    issuer: 'bench server CA',
    subject: 'bench server CA',
    spki: caSpki,
    extensions: [
      ext('2.5.29.19', true, seq(tlv(0x01, Buffer.from([0xff])))),
      ext('2.5.29.15', true, tlv(0x03, Buffer.from([1, 0x06]))),
    ],
    signer: ca.privateKey,
  });
  const caPem = pem(caDer, 'CERTIFICATE');
  const pool = Array.from({ length: keys }, () => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return {
      spki: k.publicKey.export({ type: 'spki', format: 'der' }),
      pem: createPrivateKey(k.privateKey.export({ type: 'pkcs8', format: 'pem' })).export({
        type: 'pkcs8',
        format: 'pem',
      }) as string,
    };
  });
  return {
    caPem,
    serverCert(i: number): { cert: string; key: string; sni: string } {
      const sni = `t${i}.bench.test`;
      const k = pool[i % keys]!;
      const der = certificate({
        serial: 1000 + i,
        issuer: 'bench server CA',
        subject: sni,
        spki: k.spki,
        extensions: [
          ext('2.5.29.17', false, seq(tlv(0x82, Buffer.from(sni)))),
          ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))),
        ],
        signer: ca.privateKey,
      });
      return { cert: pem(der, 'CERTIFICATE') + caPem, key: k.pem, sni };
    },
  };
}
