import type { X509Certificate } from 'node:crypto';
import { parseCert, type ParsedCert } from './cert.js';
import { MAX_CHAIN_BYTES, MAX_CHAIN_CERTS, verifyChain, type ChainVerdict } from './chain.js';
import { verifiedChain, type VerifiedChain } from './identity.js';
import type { CaSet } from './ca-set.js';
import type { RejectReason } from '../errors.js';

export type Verdict =
  | { ok: true; chain: VerifiedChain; recheckAt: number }
  | { ok: false; reason: RejectReason; detail: string; recheckAt: number };

/**
 * A bounded cache that keeps the most recently used entries: two generations of Maps. Inserts go
 * to the current one; when it is full it becomes the previous one (the older previous is dropped
 * whole); a hit in the previous generation moves the entry up. A hit in the current generation
 * is a plain `get`: no delete-and-reinsert per hit, whose holes make V8 rebuild a large Map's table
 * over and over (measured on the handshake path with 10,000 SSL objects). Holds at most `max`
 * entries, and at least the `max / 2` most recently used.
 */
export class RecentCache<K, V> {
  #current = new Map<K, V>();
  #previous = new Map<K, V>();
  readonly #generation: number;
  constructor(readonly max: number) {
    this.#generation = Math.max(1, Math.floor(max / 2));
  }
  get(key: K): V | undefined {
    const v = this.#current.get(key);
    if (v !== undefined || this.#previous.size === 0) return v;
    const old = this.#previous.get(key);
    if (old !== undefined) {
      this.#previous.delete(key);
      this.#insert(key, old);
    }
    return old;
  }
  set(key: K, value: V): void {
    const cur = this.#current.get(key);
    if (cur === value) return;
    if (cur !== undefined) this.#current.set(key, value);
    else {
      this.#previous.delete(key);
      this.#insert(key, value);
    }
  }
  #insert(key: K, value: V): void {
    if (this.#current.size >= this.#generation) {
      // With max 1 a previous generation would make it hold 2.
      this.#previous = this.max > 1 ? this.#current : new Map();
      this.#current = new Map();
    }
    this.#current.set(key, value);
  }
  get size(): number {
    return this.#current.size + this.#previous.size;
  }
}

export interface VerifierStats {
  /** Chains verified from scratch. */
  verifications: number;
  /** Verdicts served from the chain cache. */
  cacheHits: number;
  /** Entries held in the chain cache. */
  cached: number;
}

/**
 * Verifies peer chains and remembers verdicts by CA set, depth and the SHA-256 fingerprints of
 * every certificate the client sent. Intermediates are parsed once and shared across clients;
 * only a new leaf costs a parse.
 */
export class Verifier {
  readonly #verdicts: RecentCache<string, Verdict>;
  /** Agreed verdicts by SSL object + leaf, for resumed sessions (which carry the leaf alone). */
  readonly #byLeaf: RecentCache<string, Verdict>;
  readonly #issuers = new RecentCache<string, ParsedCert>(1024);
  #verifications = 0;
  #hits = 0;

  constructor(cacheSize = 10_000) {
    this.#verdicts = new RecentCache(cacheSize);
    this.#byLeaf = new RecentCache(cacheSize);
  }

  /** Verdict for the certificates the client sent (the `leaf.issuerCertificate` walk) against `caSet`. */
  verify(caSet: CaSet, depth: number, leaf: X509Certificate, now = Date.now()): Verdict {
    const sent = collectSent(leaf);
    let key = `${caSet.key}:${depth}:`;
    for (const c of sent) key += c.fingerprint256;
    const cached = this.#verdicts.get(key);
    if (cached && now < cached.recheckAt) {
      this.#hits++;
      return cached;
    }
    let verdict: Verdict;
    let bytes = 0;
    for (const c of sent) bytes += c.raw.length;
    if (sent.length > MAX_CHAIN_CERTS || bytes > MAX_CHAIN_BYTES) {
      verdict = { ok: false, reason: 'chain_too_long', detail: `client sent ${sent.length} certificates (${bytes} bytes)`, recheckAt: Infinity };
    } else {
      verdict = this.#verifyFresh(caSet, depth, sent, now);
    }
    this.#verdicts.set(key, verdict);
    return verdict;
  }

  /**
   * Records a verdict from a full handshake that every check (ours and OpenSSL's) agreed on, for
   * the SSL object that chose the connection. A resumed session brings the leaf alone and a stale
   * OpenSSL verdict; it is accepted only through such a record, so a session made under another
   * SNI, or before the object changed, is never taken on trust.
   */
  rememberForResumption(sslKey: string, leaf: X509Certificate, verdict: Verdict): void {
    if (verdict.ok) this.#byLeaf.set(`${sslKey}:${leaf.fingerprint256}`, verdict);
  }

  /** The recorded verdict for a resumed session's leaf under this SSL object, if still valid. */
  resumed(sslKey: string, leaf: X509Certificate, now = Date.now()): Verdict | undefined {
    const v = this.#byLeaf.get(`${sslKey}:${leaf.fingerprint256}`);
    if (!v || now >= v.recheckAt) return undefined;
    this.#hits++;
    return v;
  }

  #verifyFresh(caSet: CaSet, depth: number, sent: X509Certificate[], now: number): Verdict {
    this.#verifications++;
    let parsed: ParsedCert[];
    try {
      parsed = sent.map((c, i) => (i === 0 ? parseCert(c) : this.#issuer(c)));
    } catch (err) {
      return { ok: false, reason: 'untrusted', detail: `unparsable certificate: ${(err as Error).message}`, recheckAt: Infinity };
    }
    const v: ChainVerdict = verifyChain(caSet, parsed, depth, now);
    if (!v.ok) return v;
    return { ok: true, chain: verifiedChain(v.path, v.anchor), recheckAt: v.recheckAt };
  }

  #issuer(c: X509Certificate): ParsedCert {
    const fp = c.fingerprint256;
    let p = this.#issuers.get(fp);
    if (!p) {
      p = parseCert(c);
      this.#issuers.set(fp, p);
    }
    return p;
  }

  stats(): VerifierStats {
    return { verifications: this.#verifications, cacheHits: this.#hits, cached: this.#verdicts.size };
  }

}

/** The certificates the client sent, leaf first, in the order it sent them (Node links them so). */
function collectSent(leaf: X509Certificate): X509Certificate[] {
  const out = [leaf];
  const seen = new Set([leaf.fingerprint256]);
  let cur: X509Certificate | undefined = leaf.issuerCertificate;
  // A self-signed certificate links to itself (a new object each time, so compare fingerprints);
  // the cap also bounds a hostile list.
  while (cur && out.length <= MAX_CHAIN_CERTS && !seen.has(cur.fingerprint256)) {
    seen.add(cur.fingerprint256);
    out.push(cur);
    cur = cur.issuerCertificate;
  }
  return out;
}
