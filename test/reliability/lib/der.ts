// A small DER writer for the reliability tests: enough of X.509 to mint certificates of any shape
// (v1, no extensions, empty subject, serial 0, damaged signatures, wrong issuer names), which the
// product's own minting (src/testing/pki.ts, through @peculiar/x509) deliberately does not offer.

export type Der = Buffer;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One tag-length-value. */
export function tlv(tag: number, ...content: Buffer[]): Der {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

export const seq = (...items: Buffer[]): Der => tlv(0x30, ...items);
export const set = (...items: Buffer[]): Der => tlv(0x31, ...items);
export const nul = (): Der => Buffer.from([0x05, 0x00]);
export const bool = (v: boolean): Der => Buffer.from([0x01, 0x01, v ? 0xff : 0x00]);
export const octets = (b: Buffer): Der => tlv(0x04, b);
export const utf8 = (s: string): Der => tlv(0x0c, Buffer.from(s, 'utf8'));
export const printable = (s: string): Der => tlv(0x13, Buffer.from(s, 'latin1'));
export const ia5 = (s: string): Der => tlv(0x16, Buffer.from(s, 'latin1'));
/** [n] EXPLICIT (constructed context tag). */
export const explicit = (n: number, inner: Buffer): Der => tlv(0xa0 | n, inner);
/** [n] IMPLICIT primitive (context tag over the value bytes). */
export const implicit = (n: number, value: Buffer): Der => tlv(0x80 | n, value);

/** INTEGER from a non-negative bigint or big-endian magnitude bytes, minimally encoded. */
export function int(v: number | bigint | Buffer): Der {
  let mag: Buffer;
  if (Buffer.isBuffer(v)) mag = v;
  else {
    let hex = BigInt(v).toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    mag = Buffer.from(hex, 'hex');
  }
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0 && mag[i + 1]! < 0x80) i++;
  mag = mag.subarray(i);
  if (mag.length === 0) mag = Buffer.from([0]);
  if (mag[0]! & 0x80) mag = Buffer.concat([Buffer.from([0]), mag]);
  return tlv(0x02, mag);
}

export function oid(dotted: string): Der {
  const parts = dotted.split('.').map((p) => BigInt(p));
  const out: number[] = [Number(parts[0]! * 40n + parts[1]!)];
  for (const p of parts.slice(2)) {
    const bytes: number[] = [];
    let v = p;
    do {
      bytes.unshift(Number(v & 0x7fn));
      v >>= 7n;
    } while (v > 0n);
    for (let i = 0; i < bytes.length - 1; i++) bytes[i]! |= 0x80;
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING holding whole bytes (signatures, public keys). */
export const bits = (b: Buffer): Der => tlv(0x03, Buffer.from([0]), b);

/**
 * BIT STRING of named bits (keyUsage): bit n is the n-th bit from the most significant, trailing zeros dropped (DER).
 */
export function namedBits(mask: number): Der {
  if (mask === 0) return tlv(0x03, Buffer.from([0]));
  let highest = 0;
  for (let n = 0; n < 16; n++) if (mask & (1 << n)) highest = n;
  const nbytes = Math.floor(highest / 8) + 1;
  const out = Buffer.alloc(nbytes);
  for (let n = 0; n <= highest; n++) if (mask & (1 << n)) out[Math.floor(n / 8)]! |= 0x80 >> (n % 8);
  const unused = nbytes * 8 - 1 - highest;
  return tlv(0x03, Buffer.from([unused]), out);
}

/** UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5), seconds precision. */
export function time(ms: number): Der {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(p(y % 100) + rest, 'latin1'));
  return tlv(0x18, Buffer.from(p(y, 4) + rest, 'latin1'));
}

export const OID = {
  cn: '2.5.4.3',
  o: '2.5.4.10',
  ou: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  san: '2.5.29.17',
  ski: '2.5.29.14',
  aki: '2.5.29.35',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  anyEku: '2.5.29.37.0',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  rsaSha256: '1.2.840.113549.1.1.11',
} as const;

/** A Name from [type, value] pairs, one RDN each, in encoding order (most general first). Empty list = empty Name. */
export function name(rdns: readonly (readonly [string, string])[]): Der {
  return seq(...rdns.map(([type, value]) => set(seq(oid(type), utf8(value)))));
}

/** Framing of one PEM block. */
export function pem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
