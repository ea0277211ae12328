import type { X509Certificate } from 'node:crypto';
import type { RejectReason } from '../errors.js';
import type { CaSet } from './ca-set.js';
import {
  hasUnsupportedCritical,
  KU_DIGITAL_SIGNATURE,
  KU_KEY_AGREEMENT,
  KU_KEY_CERT_SIGN,
  OID_CLIENT_AUTH,
  type ParsedCert,
} from './cert.js';
import { MAX_CHAIN_BYTES, MAX_CHAIN_CERTS } from './chain.js';
import { encodedNames } from './der.js';
import { type ExtensionFields, readExtensions } from './extensions.js';

/** What the explanation reads of a certificate: encoded names, extensions, dates. Nothing is printed or verified. */
interface Shape {
  readonly der: Buffer;
  readonly issuer: string;
  readonly subject: string;
  readonly ext: ExtensionFields;
  readonly node: X509Certificate;
}

function shapeOf(node: X509Certificate): Shape {
  const der = node.raw;
  return { der, ...encodedNames(der), ext: readExtensions(der), node };
}

/** The leaf's part of the rules: a self-issued leaf that is no anchor, its own critical extensions and purpose. */
function leafReason(
  leaf: Pick<Shape, 'der' | 'issuer' | 'subject' | 'ext'>,
  anchors: readonly Shape[],
): RejectReason | undefined {
  if (leaf.issuer === leaf.subject && !anchors.some((a) => a.der.equals(leaf.der))) return 'untrusted';
  if (hasUnsupportedCritical(leaf.ext.critical)) return 'bad_extension';
  if (leaf.ext.extKeyUsage !== undefined && !leaf.ext.extKeyUsage.includes(OID_CLIENT_AUTH)) return 'bad_purpose';
  if (leaf.ext.keyUsage !== undefined && (leaf.ext.keyUsage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT)) === 0)
    return 'bad_purpose';
  return undefined;
}

/**
 * {@link explainRefusal}'s verdict when the leaf alone settles it (its DER, as the TLS session holds
 * it), else undefined: then the whole chain is needed.
 */
export function explainLeaf(caSet: CaSet, leafDer: Buffer): RejectReason | undefined {
  if (leafDer.length > MAX_CHAIN_BYTES) return 'chain_too_long';
  try {
    return leafReason({ der: leafDer, ...encodedNames(leafDer), ext: readExtensions(leafDer) }, anchorsOf(caSet));
  } catch {
    return 'untrusted';
  }
}

/** The anchors' shapes, made once per CA set. */
const anchorShapes = new WeakMap<readonly ParsedCert[], Shape[]>();
function anchorsOf(caSet: CaSet): Shape[] {
  let shapes = anchorShapes.get(caSet.anchors);
  if (!shapes) anchorShapes.set(caSet.anchors, (shapes = caSet.anchors.map((a) => shapeOf(a.node))));
  return shapes;
}

/** `issuer` could have issued `child`: the encoded names chain, and key identifiers agree where both are given. */
function chains(child: Shape, issuer: Shape): boolean {
  if (child.issuer !== issuer.subject) return false;
  return child.ext.aki === undefined || issuer.ext.ski === undefined || child.ext.aki === issuer.ext.ski;
}

/**
 * Names the reason for a chain OpenSSL refused with a code that covers several of ours
 * (INVALID_PURPOSE is also what a self-signed leaf, a leaf used as issuer and an unknown critical
 * extension end in: OpenSSL reports its last error). The verdict is already "refused"; only its
 * name is wanted, so this does no signature check and prints no name: an attacker's chain (keys
 * with 3071-bit exponents, shuffled twins, a 60 KB subject) buys structural reads of at most ten
 * certificates, 64 KiB in all, and nothing else.
 *
 * The rules, in order. The leaf first: self-issued and not one of `client.ca` is `untrusted`, an
 * unsupported critical extension `bad_extension`, a purpose other than client authentication
 * (extendedKeyUsage, keyUsage) `bad_purpose`. Then the chain: an unsupported critical extension
 * anywhere is `bad_extension`; no chain of names (and key identifiers) from the leaf to a CA of
 * `client.ca` is `untrusted`; on that path an issuer that is not a CA is `not_a_ca`, a CA's purpose
 * other than client authentication `bad_purpose`, too many intermediates `chain_too_long`, a date
 * `expired` / `not_yet_valid`; otherwise `fallback`.
 */
export function explainRefusal(
  caSet: CaSet,
  depth: number,
  sent: readonly X509Certificate[],
  fallback: RejectReason,
  now: number,
): RejectReason {
  if (sent.length > MAX_CHAIN_CERTS) return 'chain_too_long';
  let bytes = 0;
  for (const c of sent) bytes += c.raw.length;
  if (bytes > MAX_CHAIN_BYTES) return 'chain_too_long';
  let certs: Shape[];
  let anchors: Shape[];
  try {
    certs = sent.map(shapeOf);
    anchors = anchorsOf(caSet);
  } catch {
    return 'untrusted';
  }
  const leaf = certs[0];
  if (!leaf) return 'missing';
  const byLeaf = leafReason(leaf, anchors);
  if (byLeaf) return byLeaf;
  if (certs.some((c) => hasUnsupportedCritical(c.ext.critical))) return 'bad_extension';

  // A path by names only: anchors first, then what the client sent, CAs before non-CAs.
  const pool = certs.slice(1);
  const path: Shape[] = [leaf];
  let anchor: Shape | undefined;
  for (let cur = leaf; path.length <= depth + 2; ) {
    anchor = anchors.find((a) => chains(cur, a));
    if (anchor) break;
    const candidates = pool.filter((c) => !path.includes(c) && chains(cur, c));
    const next = candidates.find((c) => c.ext.ca === true) ?? candidates[0];
    // A self-issued certificate that is not an anchor ends the walk: above it are only its twins.
    if (!next || next.issuer === next.subject) {
      path.length = 0;
      break;
    }
    path.push(next);
    cur = next;
  }
  if (!anchor) return path.length > depth + 2 ? 'chain_too_long' : 'untrusted';

  for (const c of path.slice(1)) {
    if (c.ext.ca !== true || (c.ext.keyUsage !== undefined && (c.ext.keyUsage & KU_KEY_CERT_SIGN) === 0))
      return 'not_a_ca';
  }
  for (const c of [...path.slice(1), anchor]) {
    if (c.ext.extKeyUsage !== undefined && !c.ext.extKeyUsage.includes(OID_CLIENT_AUTH)) return 'bad_purpose';
  }
  if (path.length - 1 > depth) return 'chain_too_long';
  for (const c of [...path, anchor]) {
    if (now > Date.parse(c.node.validTo)) return 'expired';
    if (now < Date.parse(c.node.validFrom)) return 'not_yet_valid';
  }
  return fallback;
}
