import type { X509Certificate } from 'node:crypto';
import type { RejectReason } from '../errors.js';
import type { CaSet } from './ca-set.js';
import { type ParsedCert, parseCert } from './cert.js';
import { type ChainVerdict, MAX_CHAIN_BYTES, MAX_CHAIN_CERTS, MAX_DETAIL, verifyChain } from './chain.js';
import { explainLeaf, explainRefusal } from './explain.js';
import { type VerifiedChain, verifiedChain } from './identity.js';

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
 *
 * With `weigh`, entries are bounded by bytes too: a generation also turns over when the bytes it
 * holds reach `maxBytes / 2`, so the cache never holds more than about `maxBytes`, however large the
 * entries a client can make us keep.
 */
export class RecentCache<K, V> {
  #current = new Map<K, V>();
  #previous = new Map<K, V>();
  #currentBytes = 0;
  #previousBytes = 0;
  readonly #generation: number;
  readonly #generationBytes: number;
  constructor(
    readonly max: number,
    readonly maxBytes = Infinity,
    readonly weigh?: (key: K, value: V) => number,
  ) {
    this.#generation = Math.max(1, Math.floor(max / 2));
    this.#generationBytes = maxBytes / 2;
  }
  get(key: K): V | undefined {
    const v = this.#current.get(key);
    if (v !== undefined || this.#previous.size === 0) return v;
    const old = this.#previous.get(key);
    if (old !== undefined) {
      this.#previous.delete(key);
      if (this.weigh) this.#previousBytes -= this.weigh(key, old);
      this.#insert(key, old);
    }
    return old;
  }
  set(key: K, value: V): void {
    const cur = this.#current.get(key);
    if (cur === value) return;
    if (cur !== undefined) {
      this.#current.set(key, value);
      if (this.weigh) this.#currentBytes += this.weigh(key, value) - this.weigh(key, cur);
    } else {
      const old = this.#previous.get(key);
      if (old !== undefined) {
        this.#previous.delete(key);
        if (this.weigh) this.#previousBytes -= this.weigh(key, old);
      }
      this.#insert(key, value);
    }
  }
  #insert(key: K, value: V): void {
    const bytes = this.weigh ? this.weigh(key, value) : 0;
    if (bytes > this.#generationBytes) return; // larger than a generation may hold: not kept
    if (this.#current.size >= this.#generation || this.#currentBytes + bytes > this.#generationBytes) {
      // With max 1 a previous generation would make it hold 2.
      this.#previous = this.max > 1 ? this.#current : new Map();
      this.#previousBytes = this.max > 1 ? this.#currentBytes : 0;
      this.#current = new Map();
      this.#currentBytes = 0;
    }
    this.#current.set(key, value);
    this.#currentBytes += bytes;
  }
  get size(): number {
    return this.#current.size + this.#previous.size;
  }
  /** Bytes held, as `weigh` counts them (0 without it). */
  get bytes(): number {
    return this.#currentBytes + this.#previousBytes;
  }
}

/**
 * What a cached verdict keeps alive, roughly: its key (two bytes a character, to be safe), the
 * verdict object, and for a success the leaf's DER and SANs (the certificates above it are shared
 * with every other client of the same CA).
 */
function verdictBytes(key: string, v: Verdict): number {
  let n = 2 * key.length + 160;
  if (v.ok) {
    n += v.chain.der.length + 64 * v.chain.above.length;
    const { dns, email, ip, uri } = v.chain.san;
    for (const list of [dns, email, ip, uri]) for (const s of list) n += 2 * s.length + 32;
  } else {
    n += 2 * v.detail.length;
  }
  return n;
}

/** A parsed intermediate keeps its DER, Node's certificate object and a few strings. */
const issuerBytes = (_key: string, c: ParsedCert): number => 3 * c.der.length + 1024;

export interface VerifierStats {
  /** Chains verified from scratch. */
  verifications: number;
  /** Verdicts served from the chain cache. */
  cacheHits: number;
  /** Entries held in the chain cache. */
  cached: number;
  /** Bytes the chain cache holds, by its own estimate (bounded by `verifyCacheBytes`). */
  cachedBytes: number;
}

/** Default of `verifyCacheBytes`: 10,000 ordinary verdicts take about 20 MB. */
export const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Verifies peer chains and remembers verdicts by CA set, depth and the SHA-256 fingerprints of
 * every certificate the client sent. Intermediates are parsed once and shared across clients;
 * only a new leaf costs a parse.
 */
export class Verifier {
  readonly #verdicts: RecentCache<string, Verdict>;
  /** Agreed verdicts by SSL object + leaf, for resumed sessions (which carry the leaf alone). */
  readonly #byLeaf: RecentCache<string, Verdict>;
  readonly #issuers = new RecentCache<string, ParsedCert>(1024, 16 * 1024 * 1024, issuerBytes);
  #verifications = 0;
  #hits = 0;

  constructor(cacheSize = 10_000, cacheBytes = DEFAULT_CACHE_BYTES) {
    this.#verdicts = new RecentCache(cacheSize, cacheBytes, verdictBytes);
    // Holds the same verdict objects, and may keep one alive after #verdicts dropped it: weighed whole.
    this.#byLeaf = new RecentCache(cacheSize, cacheBytes, verdictBytes);
  }

  /** Verdict for the certificates the client sent (the `leaf.issuerCertificate` walk) against `caSet`. */
  verify(caSet: CaSet, depth: number, leaf: X509Certificate, now = Date.now()): Verdict {
    const sent = collectSent(leaf);
    // The leaf, then the rest sorted: the same certificates sent in another order are the same
    // chain (a client reshuffling them must not buy a fresh verification each time).
    let key = `${caSet.key}:${depth}:${leaf.fingerprint256}`;
    if (sent.length > 1)
      key += sent
        .slice(1)
        .map((c) => c.fingerprint256)
        .sort()
        .join('');
    const cached = this.#verdicts.get(key);
    if (cached && now < cached.recheckAt) {
      this.#hits++;
      return cached;
    }
    let verdict: Verdict;
    let bytes = 0;
    for (const c of sent) bytes += c.raw.length;
    if (sent.length > MAX_CHAIN_CERTS || bytes > MAX_CHAIN_BYTES) {
      verdict = {
        ok: false,
        reason: 'chain_too_long',
        detail: `client sent ${sent.length} certificates (${bytes} bytes)`,
        recheckAt: Infinity,
      };
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
      return {
        ok: false,
        reason: 'untrusted',
        detail: `unparsable certificate: ${String((err as Error)?.message).slice(0, 100)}`,
        recheckAt: Infinity,
      };
    }
    const v: ChainVerdict = verifyChain(caSet, parsed, depth, now);
    if (!v.ok) return v.detail.length > MAX_DETAIL ? { ...v, detail: `${v.detail.slice(0, MAX_DETAIL - 3)}...` } : v;
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

  /**
   * The reason for a chain OpenSSL refused with an ambiguous code, from structural checks alone (no
   * signature, nothing cached): see verify/explain.ts.
   */
  explain(caSet: CaSet, depth: number, leaf: X509Certificate, fallback: RejectReason, now = Date.now()): RejectReason {
    return explainRefusal(caSet, depth, collectSent(leaf), fallback, now);
  }

  /** The same, from the leaf's DER alone when that settles it (see verify/explain.ts), else undefined. */
  explainLeaf(caSet: CaSet, leafDer: Buffer): RejectReason | undefined {
    return explainLeaf(caSet, leafDer);
  }

  stats(): VerifierStats {
    return {
      verifications: this.#verifications,
      cacheHits: this.#hits,
      cached: this.#verdicts.size,
      cachedBytes: this.#verdicts.bytes,
    };
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
