import {
  KU_DIGITAL_SIGNATURE,
  KU_KEY_AGREEMENT,
  KU_KEY_CERT_SIGN,
  OID_CLIENT_AUTH,
  namesChain,
  signedBy,
  type ParsedCert,
} from './cert.js';
import type { CaSet } from './ca-set.js';
import type { RejectReason } from '../errors.js';

/** Caps on what a client may send, so a hostile chain cannot buy unbounded verification work. */
export const MAX_CHAIN_CERTS = 10;
export const MAX_CHAIN_BYTES = 64 * 1024;

export type ChainVerdict =
  | {
      ok: true;
      /** leaf, then intermediates, in issuing order (anchor excluded). */
      path: readonly ParsedCert[];
      anchor: ParsedCert;
      /** Re-verify after this instant (the earliest notAfter on the path). */
      recheckAt: number;
    }
  | { ok: false; reason: RejectReason; detail: string; recheckAt: number };

const fail = (reason: RejectReason, detail: string, recheckAt = Infinity): ChainVerdict => ({ ok: false, reason, detail, recheckAt });

/**
 * Verifies `sent` (leaf first, then whatever else the client sent, in any order) against `caSet`,
 * allowing at most `depth` intermediates between the leaf and an anchor. The reference for edge
 * cases is OpenSSL's verdict for `openssl verify -purpose sslclient -verify_depth <depth>`:
 * trusted-first path building, v1 anchors accepted, every issuer a CA with keyCertSign,
 * pathLenConstraint, the client-auth purpose on the leaf and intermediates, and validity dates
 * (inclusive, RFC 5280 4.1.2.5) on every certificate including the anchor.
 */
export function verifyChain(caSet: CaSet, sent: readonly ParsedCert[], depth: number, now: number): ChainVerdict {
  const leaf = sent[0];
  if (!leaf) return fail('missing', 'no certificate');
  const pool: ParsedCert[] = [];
  for (const c of sent.slice(1)) if (c.fp256 !== leaf.fp256 && !pool.some((p) => p.fp256 === c.fp256)) pool.push(c);

  // Depth-first path building, anchors tried before the client's own certificates at every step
  // (OpenSSL's X509_V_FLAG_TRUSTED_FIRST). We search a little past `depth` so an over-long
  // chain is reported as such rather than as untrusted.
  let sawBadSignature = false;
  const searchLimit = Math.min(depth + 2, MAX_CHAIN_CERTS);
  const build = (path: ParsedCert[]): { path: ParsedCert[]; anchor: ParsedCert } | undefined => {
    const cur = path[path.length - 1]!;
    for (const a of caSet.bySubject.get(cur.issuer) ?? []) {
      if (!namesChain(cur, a)) continue;
      if (signedBy(cur, a)) return { path, anchor: a };
      sawBadSignature = true;
    }
    if (path.length - 1 >= searchLimit) return undefined;
    for (const c of pool) {
      if (path.includes(c) || !namesChain(cur, c)) continue;
      if (!signedBy(cur, c)) {
        sawBadSignature = true;
        continue;
      }
      const found = build([...path, c]);
      if (found) return found;
    }
    return undefined;
  };
  const built = build([leaf]);
  if (!built) {
    return sawBadSignature
      ? fail('bad_signature', 'a certificate names an issuer whose key does not verify its signature')
      : fail('untrusted', `no path from "${oneLine(leaf.subject)}" to a CA in client.ca`);
  }
  const { path, anchor } = built;
  const intermediates = path.length - 1;
  if (intermediates > depth) {
    return fail('chain_too_long', `${intermediates} intermediate certificate(s), client.depth allows ${depth}`);
  }

  // Issuers: every certificate above the leaf, the anchor included for pathLen.
  const issuers = [...path.slice(1), anchor];
  for (let i = 0; i < issuers.length; i++) {
    const c = issuers[i]!;
    const isAnchor = i === issuers.length - 1;
    if (!isAnchor) {
      if (c.ca !== true) return fail('not_a_ca', `"${oneLine(c.subject)}" issues certificates but basicConstraints cA is not true`);
      if (c.keyUsage !== undefined && (c.keyUsage & KU_KEY_CERT_SIGN) === 0) {
        return fail('not_a_ca', `"${oneLine(c.subject)}" has keyUsage without keyCertSign`);
      }
      if (c.extKeyUsage !== undefined && !c.extKeyUsage.includes(OID_CLIENT_AUTH)) {
        return fail('bad_purpose', `intermediate "${oneLine(c.subject)}" has extendedKeyUsage without clientAuth`);
      }
    }
    // pathLenConstraint: the number of intermediates below this issuer (self-issued ones do not count).
    if (c.pathLen !== undefined) {
      let below = 0;
      for (let j = 1; j <= i; j++) if (path[j]!.subject !== path[j]!.issuer) below++;
      if (below > c.pathLen) return fail('chain_too_long', `"${oneLine(c.subject)}" has pathLenConstraint ${c.pathLen}, ${below} intermediate(s) below it`);
    }
  }
  for (const c of [...path, anchor]) {
    if (c.unsupportedCritical.length > 0) {
      return fail('bad_extension', `"${oneLine(c.subject)}" has unsupported critical extension ${c.unsupportedCritical.join(', ')}`);
    }
  }
  // The client-auth purpose on the leaf (OpenSSL's check_purpose_ssl_client).
  if (leaf.extKeyUsage !== undefined && !leaf.extKeyUsage.includes(OID_CLIENT_AUTH)) {
    return fail('bad_purpose', 'the client certificate has extendedKeyUsage without clientAuth');
  }
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) === 0) {
    return fail('bad_purpose', 'the client certificate has keyUsage without digitalSignature or keyAgreement');
  }

  // Dates, inclusive at both ends. A failure caused by "not yet" is re-checked when it may pass.
  let recheckAt = Infinity;
  for (const c of [...path, anchor]) {
    if (now > c.notAfter) return fail('expired', `"${oneLine(c.subject)}" expired at ${new Date(c.notAfter).toISOString()}`);
    if (now < c.notBefore) {
      return fail('not_yet_valid', `"${oneLine(c.subject)}" is valid from ${new Date(c.notBefore).toISOString()}`, c.notBefore);
    }
    recheckAt = Math.min(recheckAt, c.notAfter + 1);
  }
  return { ok: true, path, anchor, recheckAt };
}

export function oneLine(name: string): string {
  return name.replace(/\n/g, ', ');
}
