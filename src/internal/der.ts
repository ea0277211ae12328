/**
 * The one strict DER reader of the house: tag-length-value with definite, minimal lengths (at most
 * 3 length bytes: 16 MiB), children of a constructed value, OIDs. Used for certificates' extensions
 * and keys (verify/extensions.ts, verify/jwk.ts), CRLs (verify/crl.ts) and serial numbers.
 */

export interface Tlv {
  tag: number;
  /** Where the whole element (its tag) starts. */
  at: number;
  start: number;
  end: number;
}

/** Reads one tag-length-value inside [off, limit). DER only: definite, minimal lengths. */
export function tlv(der: Uint8Array, off: number, limit: number): Tlv {
  if (off + 2 > limit) throw new Error('truncated DER');
  const tag = der[off]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('high tag numbers are not used in certificates');
  let len = der[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) throw new Error('unsupported DER length');
    if (start + n > limit) throw new Error('truncated DER');
    if (der[start] === 0) throw new Error('non-minimal DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    if (len < 0x80) throw new Error('non-minimal DER length');
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('truncated DER');
  return { tag, at: off, start, end };
}

/** The children of a constructed value. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = parent.start; off < parent.end; ) {
    const t = tlv(der, off, parent.end);
    out.push(t);
    off = t.end;
  }
  return out;
}

export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`malformed ${what}`);
  return t;
}

/** Dotted form of an OBJECT IDENTIFIER's content. */
export function oidString(der: Uint8Array, t: Tlv): string {
  if (t.end === t.start) throw new Error('empty OID');
  const arcs: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    const b = der[i]!;
    if (v === 0 && b === 0x80) throw new Error('non-minimal OID');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw new Error('OID arc too large');
    if (!(b & 0x80)) {
      if (arcs.length === 0) arcs.push(v < 40 ? 0 : v < 80 ? 1 : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    } else if (i === t.end - 1) {
      throw new Error('truncated OID');
    }
  }
  return arcs.join('.');
}

/**
 * The extnValue (the OCTET STRING's content) of the extension `oid` of a DER certificate, if present. Throws on
 * malformed DER.
 */
export function certExtension(der: Uint8Array, oid: string): Tlv | undefined {
  const cert = expect(tlv(der, 0, der.length), 0x30, 'Certificate');
  const tbs = expect(children(der, cert)[0], 0x30, 'TBSCertificate');
  const wrapper = children(der, tbs).find((f) => f.tag === 0xa3);
  if (!wrapper) return undefined;
  for (const ext of children(der, expect(children(der, wrapper)[0], 0x30, 'Extensions'))) {
    const parts = children(der, ext);
    if (oidString(der, expect(parts[0], 0x06, 'extnID')) === oid) return expect(parts.at(-1), 0x04, 'extnValue');
  }
  return undefined;
}
