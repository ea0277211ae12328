import type { X509Certificate } from 'node:crypto';
import type { RejectReason } from '../errors.js';
import type { CaSet } from './ca-set.js';
import { KU_DIGITAL_SIGNATURE, KU_KEY_AGREEMENT, KU_KEY_CERT_SIGN, OID_CLIENT_AUTH, namesChain, parseCert, type ParsedCert } from './cert.js';
import { MAX_CHAIN_CERTS } from './chain.js';

/**
 * Names the reason for a chain OpenSSL refused with a code that covers several of ours
 * (INVALID_PURPOSE is also what a self-signed leaf, a leaf used as issuer and an unknown critical
 * extension end in: OpenSSL reports its last error). The verdict is already "refused"; only its
 * name is wanted, so this does no signature check at all: an attacker's chain (keys with 3071-bit
 * exponents, shuffled twins) buys structural reads of at most ten certificates and nothing else.
 *
 * The rules, in order: a self-issued leaf that is not one of `client.ca` is `untrusted`; an
 * unsupported critical extension anywhere is `bad_extension`; no chain of names (and key
 * identifiers) from the leaf to a CA of `client.ca` is `untrusted`; on the path of names an issuer
 * that is not a CA is `not_a_ca`, a purpose that is not client authentication `bad_purpose`, too
 * many intermediates `chain_too_long`, a date `expired` / `not_yet_valid`; otherwise `fallback`.
 */
export function explainRefusal(caSet: CaSet, depth: number, sent: readonly X509Certificate[], fallback: RejectReason, now: number): RejectReason {
  let certs: ParsedCert[];
  try {
    certs = sent.slice(0, MAX_CHAIN_CERTS + 1).map((c) => parseCert(c));
  } catch {
    return 'untrusted';
  }
  const leaf = certs[0];
  if (!leaf) return 'missing';
  if (leaf.subject === leaf.issuer && !caSet.byFingerprint.has(leaf.fp256)) return 'untrusted';
  if (certs.some((c) => c.unsupportedCritical.length > 0)) return 'bad_extension';

  // A path by names only: anchors first, then what the client sent, CAs before non-CAs.
  const pool = certs.slice(1);
  const path: ParsedCert[] = [leaf];
  let anchor: ParsedCert | undefined;
  for (let cur = leaf; path.length <= depth + 2; ) {
    anchor = (caSet.bySubject.get(cur.issuer) ?? []).find((a) => namesChain(cur, a));
    if (anchor) break;
    const candidates = pool.filter((c) => !path.includes(c) && namesChain(cur, c));
    const next = candidates.find((c) => c.ca === true) ?? candidates[0];
    // A self-issued certificate that is not an anchor ends the walk: above it are only its twins.
    if (!next || next.subject === next.issuer) {
      path.length = 0;
      break;
    }
    path.push(next);
    cur = next;
  }
  if (!anchor) return path.length > depth + 2 ? 'chain_too_long' : 'untrusted';

  for (const c of path.slice(1)) {
    if (c.ca !== true || (c.keyUsage !== undefined && (c.keyUsage & KU_KEY_CERT_SIGN) === 0)) return 'not_a_ca';
  }
  for (const c of [...path, anchor]) {
    if (c.extKeyUsage !== undefined && !c.extKeyUsage.includes(OID_CLIENT_AUTH)) return 'bad_purpose';
  }
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) === 0) return 'bad_purpose';
  if (path.length - 1 > depth) return 'chain_too_long';
  for (const c of [...path, anchor]) {
    if (now > c.notAfter) return 'expired';
    if (now < c.notBefore) return 'not_yet_valid';
  }
  return fallback;
}
