/**
 * The revocation status of a verified chain under an SSL object's `client.revocation`: each
 * certificate in scope (the leaf, or every certificate below the trust anchor) is `revoked` (listed by
 * a valid, current CRL of its issuer), `good` (such a CRL does not list it) or `unknown` (no CRL of
 * its issuer, or only expired, not yet valid or badly signed ones). Decided once per connection (and
 * per change of the object), in microseconds: Map lookups and, the first time a CRL meets an issuer
 * key, one signature check.
 */

import type { ParsedCert } from './cert.js';
import { type Crl, certSerial } from './crl.js';
import { type CrlFetcher, crlDistributionUrls } from './crl-fetch.js';
import { encodedNames } from './der.js';
import type { VerifiedChain } from './identity.js';
import { aiaResponder, type OcspClient } from './ocsp.js';

export type RevocationMode = 'strict' | 'ignore-ca-error' | 'skip';

/** An SSL object's revocation settings, compiled. */
export interface RevocationPolicy {
  readonly mode: RevocationMode;
  readonly scope: 'leaf' | 'chain';
  /** CRLs by their issuer Name's DER. */
  readonly crls: ReadonlyMap<string, readonly Crl[]>;
  /** OCSP for the leaf: the configured responder (else the certificate's AIA) and the client that asks it. */
  readonly ocsp?: {
    readonly responder: string | undefined;
    readonly client: OcspClient;
    readonly allowedHosts?: ReadonlySet<string> | undefined;
  };
  /** CRLs fetched from the leaf's CRL distribution point when the configured ones do not answer. */
  readonly crlFetch?: { readonly fetcher: CrlFetcher; readonly allowedHosts?: ReadonlySet<string> | undefined };
}

/** What the check found; `recheckAt` is when the answer may change (a CRL's nextUpdate). */
export interface RevocationResult {
  /** `pending`: an OCSP answer is being fetched; `pending` resolves when it is in the cache. */
  readonly status: 'good' | 'revoked' | 'unknown' | 'pending';
  readonly detail: string;
  readonly recheckAt: number;
  /** How the leaf's status was learned. */
  readonly via?: 'crl' | 'ocsp';
  readonly pending?: Promise<void>;
}

/** Clock skew allowed on thisUpdate / nextUpdate. */
export const CRL_SKEW_MS = 5 * 60_000;

function statusOf(
  policy: RevocationPolicy,
  der: Uint8Array,
  serial: string,
  issuer: ParsedCert,
  now: number,
  issuerName?: string,
): RevocationResult {
  return statusIn(
    policy.crls.size === 0 ? [] : (policy.crls.get(issuerName ?? encodedNames(der).issuer) ?? []),
    serial,
    issuer,
    now,
  );
}

function statusIn(candidates: readonly Crl[], serial: string, issuer: ParsedCert, now: number): RevocationResult {
  let why = 'no CRL of its issuer';
  // Every valid, current CRL of the issuer counts (an old and a new one side by side during a
  // rollover): listed by any, revoked; else good when at least one is current.
  let current = false;
  let recheckAt = Infinity;
  for (const crl of candidates) {
    if (!crl.signedBy(issuer.publicKey)) {
      why = 'the CRL of its issuer is not signed by the issuer';
      continue;
    }
    if (crl.thisUpdate > now + CRL_SKEW_MS) {
      why = 'the CRL of its issuer is not valid yet (thisUpdate)';
      // The answer may change when it becomes valid.
      recheckAt = Math.min(recheckAt, crl.thisUpdate - CRL_SKEW_MS);
      continue;
    }
    if (crl.nextUpdate !== undefined && crl.nextUpdate + CRL_SKEW_MS < now) {
      why = 'the CRL of its issuer expired (nextUpdate passed)';
      continue;
    }
    if (crl.revoked.has(serial))
      return { status: 'revoked', detail: `serial ${serial} is listed by the CRL of its issuer`, recheckAt: Infinity };
    current = true;
    if (crl.nextUpdate !== undefined) recheckAt = Math.min(recheckAt, crl.nextUpdate + CRL_SKEW_MS);
  }
  if (current) return { status: 'good', detail: '', recheckAt };
  return { status: 'unknown', detail: why, recheckAt };
}

// What a check reads of a leaf, once per verified chain (the verifier shares a chain's object across
// its connections): the DER, the serial and the AIA responder (reading it builds an X509Certificate).
/** A responder URL's host, lower-case, without IPv6 brackets ('' when unreadable). */
function hostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return '';
  }
}

interface LeafFacts {
  der: Buffer;
  serial: string;
  issuerName: string;
  responder: string | undefined;
  /** The http(s) URLs of its CRL distribution points. */
  crlUrls: readonly string[];
}
const leaves = new WeakMap<VerifiedChain, LeafFacts>();
function leafFacts(chain: VerifiedChain): LeafFacts {
  let f = leaves.get(chain);
  if (!f) {
    const der = Buffer.from(chain.der, 'latin1');
    f = {
      der,
      serial: certSerial(der),
      issuerName: encodedNames(der).issuer,
      responder: aiaResponder(der),
      crlUrls: crlDistributionUrls(der),
    };
    leaves.set(chain, f);
  }
  return f;
}

/** The status of a verified chain: revoked if any certificate in scope is, else unknown if any is, else good. */
export function checkRevocation(policy: RevocationPolicy, chain: VerifiedChain, now: number): RevocationResult {
  const facts = leafFacts(chain);
  const leafDer = facts.der;
  let leaf = statusOf(policy, leafDer, facts.serial, chain.above[0]!, now, facts.issuerName);
  let via: 'crl' | 'ocsp' = 'crl';
  if (policy.crlFetch && leaf.status === 'unknown') {
    // Fetched only here, for a chain that verified: a stranger's CRL distribution point is never asked.
    const allowed = policy.crlFetch.allowedHosts;
    const url = facts.crlUrls.find((u) => !allowed || allowed.has(hostOf(u)));
    if (facts.crlUrls.length === 0)
      leaf = { ...leaf, detail: `${leaf.detail}, and no http(s) CRL distribution point in the certificate` };
    else if (!url)
      leaf = {
        ...leaf,
        detail: `${leaf.detail}; no CRL distribution point of the certificate is on a host of crlFetch.allowedHosts`,
      };
    else {
      const got = policy.crlFetch.fetcher.lookup(url, chain.above[0]!, now);
      if (got instanceof Promise) return { status: 'pending', detail: 'fetching the CRL', recheckAt: 0, pending: got };
      // The fetcher keeps only CRLs of this issuer, signed by it; whatever the answer, the
      // connection is judged again when the fetcher refreshes it.
      const fetched = got.crl
        ? statusIn([got.crl], facts.serial, chain.above[0]!, now)
        : { ...leaf, detail: `CRL fetch: ${got.detail}` };
      leaf =
        fetched.status === 'revoked' ? fetched : { ...fetched, recheckAt: Math.min(fetched.recheckAt, got.refreshAt) };
    }
  }
  if (policy.ocsp && leaf.status !== 'revoked') {
    // OCSP for the leaf: asked only here, for a chain that verified (a stranger's AIA is never fetched).
    const responder = policy.ocsp.responder ?? facts.responder;
    const allowed = !responder || !policy.ocsp.allowedHosts || policy.ocsp.allowedHosts.has(hostOf(responder));
    if (responder && !allowed) {
      if (leaf.status !== 'good')
        leaf = {
          status: 'unknown',
          detail: `OCSP: the responder ${JSON.stringify(hostOf(responder))} is not in allowedHosts`,
          recheckAt: leaf.recheckAt,
        };
    } else if (responder) {
      const answer = policy.ocsp.client.cached(leafDer, chain.above[0]!, now, facts.serial);
      if (!answer) {
        const pending = policy.ocsp.client.status(leafDer, chain.above[0]!, responder).then(() => undefined);
        return { status: 'pending', detail: 'waiting for the OCSP responder', recheckAt: 0, pending };
      }
      if (answer.status !== 'unknown' || leaf.status !== 'good') {
        leaf = {
          status: answer.status,
          detail: answer.status === 'unknown' ? `OCSP: ${answer.detail}` : answer.detail,
          recheckAt: Math.min(leaf.recheckAt, answer.until),
        };
        via = 'ocsp';
      }
    } else if (leaf.status !== 'good') {
      leaf = {
        status: 'unknown',
        detail: 'no OCSP responder: none configured and none in the certificate',
        recheckAt: leaf.recheckAt,
      };
    }
  }
  const results: { who: string; r: RevocationResult }[] = [{ who: 'the client certificate', r: leaf }];
  if (policy.scope === 'chain') {
    // Every certificate below the anchor; the anchor itself is trusted as configured.
    for (let i = 0; i < chain.above.length - 1; i++) {
      const c = chain.above[i]!;
      results.push({
        who: `intermediate ${i + 1}`,
        r: statusOf(policy, c.der, certSerial(c.der), chain.above[i + 1]!, now),
      });
    }
  }
  const revoked = results.find((x) => x.r.status === 'revoked');
  if (revoked) return { status: 'revoked', detail: `${revoked.who}: ${revoked.r.detail}`, recheckAt: Infinity, via };
  const unknown = results.find((x) => x.r.status === 'unknown');
  const recheckAt = Math.min(...results.map((x) => x.r.recheckAt));
  if (unknown) return { status: 'unknown', detail: `${unknown.who}: ${unknown.r.detail}`, recheckAt, via };
  return { status: 'good', detail: '', recheckAt, via };
}
