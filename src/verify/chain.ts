import type { RejectReason } from '../errors.js';
import type { CaSet } from './ca-set.js';
import {
  KU_DIGITAL_SIGNATURE,
  KU_KEY_AGREEMENT,
  KU_KEY_CERT_SIGN,
  namesChain,
  OID_CLIENT_AUTH,
  type ParsedCert,
  signedBy,
} from './cert.js';

/** Caps on what a client may send, so a hostile chain cannot buy unbounded verification work. */
export const MAX_CHAIN_CERTS = 10;
export const MAX_CHAIN_BYTES = 64 * 1024;
/** Most path-search steps per verification (each step tries the candidates of one certificate). */
export const MAX_PATH_STEPS = 64;
/**
 * Longest failure detail: a detail names a certificate, and a client chooses its subject (60 KB of it, if it likes).
 */
export const MAX_DETAIL = 200;
/** Largest RSA modulus and public exponent an issuer key sent by a client may have before we verify with it. */
export const MAX_RSA_BITS = 8192;
export const MAX_RSA_EXPONENT = 2n ** 32n;

const validAt = (c: ParsedCert, now: number) => c.notBefore <= now && now <= c.notAfter;

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

const fail = (reason: RejectReason, detail: string, recheckAt = Infinity): ChainVerdict => ({
  ok: false,
  reason,
  detail,
  recheckAt,
});

/**
 * Verifies `sent` (leaf first, then whatever else the client sent, in any order) against `caSet`,
 * allowing at most `depth` intermediates between the leaf and an anchor. The reference for edge
 * cases is OpenSSL's verdict for `openssl verify -purpose sslclient -verify_depth <depth>`:
 * trusted-first path building, v1 anchors accepted, every issuer a CA with keyCertSign,
 * pathLenConstraint, the client-auth purpose on the leaf and intermediates, and validity dates
 * (inclusive, RFC 5280 4.1.2.5) on every certificate including the anchor.
 */
export function verifyChain(caSet: CaSet, sent: readonly ParsedCert[], depth: number, now: number): ChainVerdict {
  const validFirst = (list: readonly ParsedCert[]) =>
    list.length < 2 ? list : [...list].sort((x, y) => Number(!validAt(x, now)) - Number(!validAt(y, now)));
  const leaf = sent[0];
  if (!leaf) return fail('missing', 'no certificate');
  const pool: ParsedCert[] = [];
  const seenKeys = new Set<string>();
  // Valid ones first (the pool keeps that order), so that of two certificates with one subject,
  // key and issuer the current one stays.
  for (const c of validFirst(sent.slice(1))) {
    if (c.fp256 === leaf.fp256 || pool.some((p) => p.fp256 === c.fp256)) continue;
    if (issuerKeyProblem(c) !== undefined) continue;
    // The issuer too: a cross-signed twin (same subject and key, another issuer) is another path.
    const subjectKey = `${c.subject}\0${c.spki}\0${c.issuer}`;
    if (seenKeys.has(subjectKey)) continue;
    seenKeys.add(subjectKey);
    pool.push(c);
  }

  // Depth-first path building, anchors tried before the client's own certificates at every step
  // (OpenSSL's X509_V_FLAG_TRUSTED_FIRST), and among candidates the ones valid now first (OpenSSL's
  // find_issuer does the same, so an expired twin of a renewed CA does not hide it). We search a
  // little past `depth` so an over-long chain is reported as such rather than as untrusted.
  // Signature results are memoised and the whole search has a fixed budget: a client sending ten
  // same-name, same-key CA certificates must not buy an exponential search.
  // What a hostile client can make us pay is bounded three ways: at most one candidate per
  // (subject, key) among the certificates it sent, no signature check with a key we would refuse
  // anyway (see issuerKeyProblem: one check with a 3071-bit RSA exponent costs 9-25 ms), and at
  // most depth + 3 signature checks per verification: a legitimate chain needs depth + 1, and the
  // search looks one intermediate past depth (to name an over-long chain) plus one wrong twin.
  let sawBadSignature = false;
  let budget = MAX_PATH_STEPS;
  let signatureBudget = Math.min(depth + 2, MAX_CHAIN_CERTS) + 1;
  const signatures = new Map<string, boolean>();
  const verifies = (child: ParsedCert, issuer: ParsedCert): boolean => {
    const key = child.fp256 + issuer.fp256;
    let ok = signatures.get(key);
    if (ok === undefined) {
      if (--signatureBudget < 0) {
        budget = -1;
        return false;
      }
      ok = signedBy(child, issuer);
      signatures.set(key, ok);
    }
    if (!ok) sawBadSignature = true;
    return ok;
  };
  const searchLimit = Math.min(depth + 2, MAX_CHAIN_CERTS);
  const build = (path: ParsedCert[]): { path: ParsedCert[]; anchor: ParsedCert } | undefined => {
    if (--budget < 0) return undefined;
    const cur = path[path.length - 1]!;
    for (const a of validFirst(caSet.bySubject.get(cur.issuer) ?? [])) {
      if (namesChain(cur, a) && verifies(cur, a)) return { path, anchor: a };
    }
    if (path.length - 1 >= searchLimit) return undefined;
    for (const c of pool) {
      if (path.includes(c) || !namesChain(cur, c) || !verifies(cur, c)) continue;
      const found = build([...path, c]);
      if (found || budget < 0) return found;
    }
    return undefined;
  };
  const built = build([leaf]);
  if (!built) {
    if (budget < 0) return fail('untrusted', 'the certificates sent form too many candidate paths');
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
      if (c.ca !== true)
        return fail('not_a_ca', `"${oneLine(c.subject)}" issues certificates but basicConstraints cA is not true`);
      if (c.keyUsage !== undefined && (c.keyUsage & KU_KEY_CERT_SIGN) === 0) {
        return fail('not_a_ca', `"${oneLine(c.subject)}" has keyUsage without keyCertSign`);
      }
    }
    // OpenSSL's sslclient purpose checks extendedKeyUsage on every CA of the path, the anchor included.
    if (c.extKeyUsage !== undefined && !c.extKeyUsage.includes(OID_CLIENT_AUTH)) {
      return fail(
        'bad_purpose',
        `${isAnchor ? 'CA' : 'intermediate'} "${oneLine(c.subject)}" has extendedKeyUsage without clientAuth`,
      );
    }
    // pathLenConstraint: the number of intermediates below this issuer (self-issued ones do not count).
    if (c.pathLen !== undefined) {
      let below = 0;
      for (let j = 1; j <= i; j++) if (path[j]!.subject !== path[j]!.issuer) below++;
      if (below > c.pathLen)
        return fail(
          'chain_too_long',
          `"${oneLine(c.subject)}" has pathLenConstraint ${c.pathLen}, ${below} intermediate(s) below it`,
        );
    }
  }
  for (const c of [...path, anchor]) {
    if (c.unsupportedCritical.length > 0) {
      return fail(
        'bad_extension',
        `"${oneLine(c.subject)}" has unsupported critical extension ${c.unsupportedCritical.join(', ')}`,
      );
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
    if (now > c.notAfter)
      return fail('expired', `"${oneLine(c.subject)}" expired at ${new Date(c.notAfter).toISOString()}`);
    if (now < c.notBefore) {
      return fail(
        'not_yet_valid',
        `"${oneLine(c.subject)}" is valid from ${new Date(c.notBefore).toISOString()}`,
        c.notBefore,
      );
    }
    recheckAt = Math.min(recheckAt, c.notAfter + 1);
  }
  return { ok: true, path, anchor, recheckAt };
}

/**
 * A DN for a failure detail: one line, control characters escaped, at most 80 characters. The detail
 * goes to logs and into the verdict cache; its length must not be the client's choice.
 */
export function oneLine(name: string): string {
  const line = name.replace(/\n/g, ', ');
  const cut = line.length > 80 ? `${line.slice(0, 80)}...` : line;
  return cut.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Why a certificate sent by a client is not worth a signature check with its key: an RSA key with
 * a public exponent above 2^32 or a modulus above 8192 bits (OpenSSL's own RSA limits are looser,
 * and one such check costs what thousands of ordinary ones do), or a key that cannot sign.
 */
export function issuerKeyProblem(c: ParsedCert): string | undefined {
  let key: ParsedCert['publicKey'];
  try {
    key = c.publicKey;
  } catch {
    return 'its public key cannot be decoded';
  }
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') {
    if ((d.modulusLength ?? Infinity) > MAX_RSA_BITS) return `RSA modulus over ${MAX_RSA_BITS} bits`;
    if (d.publicExponent === undefined || d.publicExponent > MAX_RSA_EXPONENT) return 'RSA public exponent over 2^32';
    return undefined;
  }
  if (type === 'ec' || type === 'ed25519' || type === 'ed448') return undefined;
  if (type === 'dsa') return (d.modulusLength ?? Infinity) > 3072 ? 'DSA key over 3072 bits' : undefined;
  return `a ${type ?? 'unknown'} key cannot sign certificates`;
}
