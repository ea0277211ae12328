// The X.509 v3 extensions the verifier needs, read straight from the DER.
//
// This runs once per new client certificate, on the handshake path: a fleet of devices brings a new
// leaf on every connection. Reading the handful of fields below costs microseconds, where building
// @peculiar/x509's object model for the same certificate cost over a millisecond on this project's
// bench machine. @peculiar/x509 still reads every certificate given at configuration time
// (client.ca, server certificates), and the test suite checks that both readers agree.
//
// Strict: anything that is not well-formed DER where a field is expected throws, and the caller
// turns that into a refusal (fail closed). OpenSSL has already parsed the certificate, so a throw
// here means an encoding OpenSSL tolerates and we do not; refusing it is the safe side.

import { children, expect, oidString, type Tlv, tlv } from '../internal/der.js';

/** Bits of keyUsage, in @peculiar/x509's `KeyUsageFlags` numbering (bit n of the BIT STRING = 1 << n). */
export type KeyUsageBits = number;

/** What {@link readExtensions} returns: the same fields `parseCert` fills from @peculiar/x509. */
export interface ExtensionFields {
  ca: boolean | undefined;
  pathLen: number | undefined;
  keyUsage: KeyUsageBits | undefined;
  extKeyUsage: string[] | undefined;
  ski: string | undefined;
  aki: string | undefined;
  /** Every extension marked critical, by OID (the caller decides which it supports). */
  critical: string[];
  san: { dns: string[]; email: string[]; ip: string[]; uri: string[] };
}

function hex(der: Uint8Array, t: Tlv): string {
  return Buffer.from(der.buffer, der.byteOffset + t.start, t.end - t.start).toString('hex');
}

function ascii(der: Uint8Array, t: Tlv): string {
  return escapeSanText(Buffer.from(der.buffer, der.byteOffset + t.start, t.end - t.start).toString('latin1'));
}

/**
 * A SAN string (an IA5String: 7-bit ASCII) as the identity shows it: control characters, bytes
 * above 0x7f and the backslash escaped as in the subject DN Node prints (`\00`, `\\`), so that
 * a NUL inside `evil.test\0.good.test` can neither cut a log line nor fool a string comparison.
 */
export function escapeSanText(s: string): string {
  if (!/[\x00-\x1f\x7f-\uffff\\]/.test(s)) return s;
  return s.replace(/[\x00-\x1f\x7f-\uffff\\]/g, (c) =>
    c === '\\' ? '\\\\' : `\\${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

/** RFC 5952 text of an IPv6 address: lower-case, the first longest run of two or more zero groups as `::`. */
export function ipv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const text = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestLen < 2) return text(groups);
  return `${text(groups.slice(0, best))}::${text(groups.slice(best + bestLen))}`;
}

function ipText(der: Uint8Array, t: Tlv): string {
  const bytes = der.subarray(t.start, t.end);
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) return ipv6(bytes);
  return hex(der, t);
}

function boolean(der: Uint8Array, t: Tlv): boolean {
  if (t.end - t.start !== 1) throw new Error('malformed BOOLEAN');
  // DER says 0xff; OpenSSL takes any non-zero byte as TRUE, and so do we.
  return der[t.start] !== 0;
}

function smallInteger(der: Uint8Array, t: Tlv): number {
  const n = t.end - t.start;
  if (n === 0) throw new Error('malformed INTEGER');
  if (der[t.start]! & 0x80) throw new Error('negative INTEGER');
  // pathLenConstraint: anything beyond 2^31 is "no practical limit".
  if (n > 4) return 0x7fffffff;
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + der[i]!;
  return Math.min(v, 0x7fffffff);
}

/** keyUsage BIT STRING to bits: BIT STRING bit n (MSB first) becomes `1 << n`. */
function keyUsageBits(der: Uint8Array, t: Tlv): number {
  if (t.end - t.start < 1) throw new Error('malformed BIT STRING');
  const unused = der[t.start]!;
  if (unused > 7 || (unused > 0 && t.end - t.start === 1)) throw new Error('malformed BIT STRING');
  let bits = 0;
  const nbits = (t.end - t.start - 1) * 8 - unused;
  for (let n = 0; n < nbits && n < 16; n++) {
    const byte = der[t.start + 1 + (n >> 3)]!;
    if (byte & (0x80 >> (n & 7))) bits |= 1 << n;
  }
  return bits;
}

/** Reads the extensions of a DER certificate. A certificate without extensions (v1) gives all-undefined fields. */
export function readExtensions(der: Uint8Array): ExtensionFields {
  const out: ExtensionFields = {
    ca: undefined,
    pathLen: undefined,
    keyUsage: undefined,
    extKeyUsage: undefined,
    ski: undefined,
    aki: undefined,
    critical: [],
    san: { dns: [], email: [], ip: [], uri: [] },
  };
  const cert = expect(tlv(der, 0, der.length), 0x30, 'Certificate');
  const tbs = expect(children(der, cert)[0], 0x30, 'TBSCertificate');
  const fields = children(der, tbs);
  const wrapper = fields.find((f) => f.tag === 0xa3);
  if (!wrapper) return out;
  if (fields.at(-1) !== wrapper) throw new Error('malformed TBSCertificate: extensions are not last');
  const list = expect(children(der, wrapper)[0], 0x30, 'Extensions');
  const seen = new Set<string>();
  for (const ext of children(der, list)) {
    expect(ext, 0x30, 'Extension');
    const parts = children(der, ext);
    const oid = oidString(der, expect(parts[0], 0x06, 'extnID'));
    let critical = false;
    let valueAt = 1;
    if (parts[1]?.tag === 0x01) {
      // An explicit FALSE is not DER (DEFAULT values are left out), but OpenSSL reads it.
      critical = boolean(der, parts[1]);
      valueAt = 2;
    }
    const value = expect(parts[valueAt], 0x04, 'extnValue');
    if (parts.length !== valueAt + 1) throw new Error('malformed Extension');
    if (seen.has(oid)) throw new Error(`duplicate extension ${oid}`);
    seen.add(oid);
    if (critical) out.critical.push(oid);
    const body = () => tlv(der, value.start, value.end);
    const whole = (t: Tlv) => {
      if (t.end !== value.end) throw new Error(`trailing data in extension ${oid}`);
      return t;
    };
    switch (oid) {
      case '2.5.29.19': {
        const seq = whole(expect(body(), 0x30, 'basicConstraints'));
        const items = children(der, seq);
        let i = 0;
        out.ca = false;
        if (items[i]?.tag === 0x01) out.ca = boolean(der, items[i++]!);
        if (items[i]?.tag === 0x02) out.pathLen = smallInteger(der, items[i++]!);
        if (i !== items.length) throw new Error('malformed basicConstraints');
        break;
      }
      case '2.5.29.15':
        out.keyUsage = keyUsageBits(der, whole(expect(body(), 0x03, 'keyUsage')));
        break;
      case '2.5.29.37': {
        const seq = whole(expect(body(), 0x30, 'extKeyUsage'));
        out.extKeyUsage = children(der, seq).map((t) => oidString(der, expect(t, 0x06, 'KeyPurposeId')));
        break;
      }
      case '2.5.29.14':
        out.ski = hex(der, whole(expect(body(), 0x04, 'subjectKeyIdentifier')));
        break;
      case '2.5.29.35': {
        const seq = whole(expect(body(), 0x30, 'authorityKeyIdentifier'));
        const id = children(der, seq).find((t) => t.tag === 0x80);
        if (id) out.aki = hex(der, id);
        break;
      }
      case '2.5.29.17': {
        const seq = whole(expect(body(), 0x30, 'subjectAltName'));
        for (const name of children(der, seq)) {
          if (name.tag === 0x81) out.san.email.push(ascii(der, name));
          else if (name.tag === 0x82) out.san.dns.push(ascii(der, name));
          else if (name.tag === 0x86) out.san.uri.push(ascii(der, name));
          else if (name.tag === 0x87) out.san.ip.push(ipText(der, name));
        }
        break;
      }
    }
  }
  return out;
}
