/**
 * What a client certificate's allow-list entries are matched on, read from the DER: subject
 * alternative names by type with their exact values (not Node's `subjectAltName` string, which
 * escapes commas, expands IPv6 and names otherName only for OIDs it knows), and the SHA-256 of the
 * SubjectPublicKeyInfo (Envoy's `verify_certificate_spki` form). Read once per verified chain.
 */
import { createHash } from 'node:crypto';
import { certExtension, children, expect, oidString, type Tlv, tlv } from '../internal/der.js';
import { ipv6 } from '../verify/extensions.js';

export interface SanValues {
  /**
   * DNS, URI and email SANs made of printable ASCII only: a value with a control or non-ASCII byte (`a.example\0.evil`)
   * matches no matcher.
   */
  readonly dns: readonly string[];
  readonly uri: readonly string[];
  readonly email: readonly string[];
  /** Every URI SAN, matchable or not (the SPIFFE rule: exactly one). */
  readonly uriCount: number;
  /** Dotted IPv4 or RFC 5952 IPv6 text. */
  readonly ip: readonly string[];
  /** otherName entries: the type OID and the value (a string type's text, else the DER's hex). */
  readonly otherName: readonly { readonly oid: string; readonly value: string }[];
}

const EMPTY: SanValues = Object.freeze({ dns: [], uri: [], email: [], uriCount: 0, ip: [], otherName: [] });
const printable = (v: string) => /^[\x21-\x7e]*$/.test(v);
const text = (der: Uint8Array, t: Tlv, encoding: BufferEncoding = 'latin1') =>
  Buffer.from(der.subarray(t.start, t.end)).toString(encoding);

/** The text of an IP address SAN (4 or 16 bytes); other lengths as hex. */
export function ipAddressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) return ipv6(bytes);
  return Buffer.from(bytes).toString('hex');
}

// DirectoryString and friends an otherName value is usually made of (UPN: UTF8String).
function otherValue(der: Uint8Array, value: Tlv): string {
  switch (value.tag) {
    case 0x0c: // UTF8String
      return text(der, value, 'utf8');
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x1a: // VisibleString
      return text(der, value);
    case 0x1e: // BMPString: UTF-16BE
      return Buffer.from(der.subarray(value.start, value.end)).swap16().toString('utf16le');
    default:
      return Buffer.from(der.subarray(value.at, value.end)).toString('hex');
  }
}

/** The SANs of a DER certificate. Throws on a malformed extension (the caller refuses the match). */
export function readSans(der: Uint8Array): SanValues {
  const value = certExtension(der, '2.5.29.17');
  if (!value) return EMPTY;
  const out = {
    dns: [] as string[],
    uri: [] as string[],
    email: [] as string[],
    uriCount: 0,
    ip: [] as string[],
    otherName: [] as { oid: string; value: string }[],
  };
  const push = (list: string[], v: string) => {
    if (printable(v)) list.push(v);
  };
  for (const name of children(der, expect(tlv(der, value.start, value.end), 0x30, 'subjectAltName'))) {
    if (name.tag === 0x81) push(out.email, text(der, name));
    else if (name.tag === 0x82) push(out.dns, text(der, name));
    else if (name.tag === 0x86) {
      out.uriCount++;
      push(out.uri, text(der, name));
    } else if (name.tag === 0x87) out.ip.push(ipAddressText(der.subarray(name.start, name.end)));
    else if (name.tag === 0xa0) {
      // OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }, implicitly tagged [0].
      const [oid, wrapped] = children(der, name);
      const inner = wrapped && wrapped.tag === 0xa0 ? children(der, wrapped)[0] : undefined;
      if (!oid || !inner) throw new Error('malformed otherName');
      out.otherName.push({
        oid: oidString(der, expect(oid, 0x06, 'otherName type-id')),
        value: otherValue(der, inner),
      });
    }
  }
  return Object.freeze(out);
}

/** Base64 SHA-256 of the certificate's SubjectPublicKeyInfo DER. */
export function spki256(der: Uint8Array): string {
  const cert = expect(tlv(der, 0, der.length), 0x30, 'Certificate');
  const fields = children(der, expect(children(der, cert)[0], 0x30, 'TBSCertificate'));
  const spki = expect(fields[fields[0]!.tag === 0xa0 ? 6 : 5], 0x30, 'SubjectPublicKeyInfo');
  return createHash('sha256').update(der.subarray(spki.at, spki.end)).digest('base64');
}
