/**
 * CRLs fetched from the client certificate's CRL distribution point (`client.crlFetch`), for
 * deployments that publish CRLs rather than configure them. URLs come from client certificates, so
 * fetching is an attack surface: the caller asks only for chains that verified against the object's
 * CA, and this client asks only http: and https: URLs (optionally on listed hosts), with a timeout,
 * a response size cap, one request in flight per URL, at most 2 per host and 16 in all, and a cache
 * bounded in bytes.
 *
 * A CRL is cached per (issuer key, URL), and only once it is a complete CRL of that issuer, signed by
 * it, not newer than now and not older than the one held (a replayed old CRL, a stale mirror or a
 * forged answer never replaces a good one). It is kept until its nextUpdate and refreshed after
 * `cacheTtlMs` while still current, without making connections wait; a fetch that fails (or gives a
 * CRL refused by those checks) keeps the CRL still current and is tried again after 10 seconds (or
 * `cacheTtlMs`, when shorter).
 */

import { readCapped } from '../internal/body.js';
import { undici } from '../internal/deps.js';
import { certExtension, children, expect, tlv } from '../internal/der.js';
import type { ParsedCert } from './cert.js';
import { type Crl, crlDers, crlSignedBy, MAX_CRL_BYTES, parseCrl } from './crl.js';
import { encodedNames } from './der.js';

const OID_CRL_DP = '2.5.29.31';
const NEGATIVE_TTL_MS = 10_000;

/**
 * The http(s) URLs of a certificate's cRLDistributionPoints that name a complete CRL: a full name,
 * no `reasons` (a partial CRL) and no `cRLIssuer` (an indirect one). Empty when there are none or the
 * extension cannot be read.
 */
export function crlDistributionUrls(der: Uint8Array): string[] {
  try {
    const value = certExtension(der, OID_CRL_DP);
    if (!value) return [];
    const urls: string[] = [];
    for (const dp of children(der, expect(tlv(der, value.start, value.end), 0x30, 'CRLDistributionPoints'))) {
      const fields = children(der, expect(dp, 0x30, 'DistributionPoint'));
      // reasons [1] (a BIT STRING, primitive) or cRLIssuer [2]: a partial or an indirect CRL.
      if (fields.some((f) => (f.tag & 0x1f) === 1 || (f.tag & 0x1f) === 2)) continue;
      const name = fields.find((f) => f.tag === 0xa0);
      const full = name && children(der, name).find((f) => f.tag === 0xa0);
      if (!full) continue;
      for (const g of children(der, full)) {
        if (g.tag !== 0x86) continue;
        const url = Buffer.from(der.subarray(g.start, g.end)).toString('latin1');
        if (/^https?:\/\/[\x21-\x7e]+$/i.test(url)) urls.push(url);
      }
    }
    return urls;
  } catch {
    // An unreadable extension names no URL (the status stays unknown).
  }
  return [];
}

/** What a fetch found: a CRL of the issuer, checked, or why there is none. */
export interface FetchedCrl {
  readonly crl: Crl | undefined;
  readonly detail: string;
  /** After this, the URL is fetched again (in the background while `crl` is current). */
  readonly refreshAt: number;
  readonly bytes: number;
}

/** Options of {@link CrlFetcher}. */
export interface CrlFetcherOptions {
  /** Per request; default 5,000 ms. */
  timeoutMs?: number;
  /** Largest CRL read; default 10 MiB (at most 16 MiB). */
  maxBytes?: number;
  /** A current CRL is fetched again after this long; default 1 hour (never kept past its nextUpdate). */
  cacheTtlMs?: number;
  /** Requests in flight at once; default 16. */
  maxInFlight?: number;
  /** Requests in flight to one host; default 2. */
  maxInFlightPerHost?: number;
  /**
   * Bytes of CRLs kept over all URLs (counted as 3 times the DER: the serial lookup); the oldest are dropped beyond it.
   * Default 256 MiB.
   */
  maxCacheBytes?: number;
}

const usable = (e: FetchedCrl | undefined, now: number): e is FetchedCrl & { crl: Crl } =>
  !!e?.crl && (e.crl.nextUpdate === undefined || e.crl.nextUpdate > now);
const hostKey = (url: string) => {
  try {
    return new URL(url).host.toLowerCase();
  } catch {
    return '';
  }
};

/** Fetches CRLs by URL for an issuer, shared by every object with the same settings. */
export class CrlFetcher {
  readonly #o: Required<CrlFetcherOptions>;
  readonly #cache = new Map<string, FetchedCrl>();
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #perHost = new Map<string, number>();
  #bytes = 0;
  #requests = 0;

  constructor(options: CrlFetcherOptions = {}) {
    this.#o = {
      timeoutMs: 5000,
      maxBytes: 10 * 1024 * 1024,
      cacheTtlMs: 3_600_000,
      maxInFlight: 16,
      maxInFlightPerHost: 2,
      maxCacheBytes: 256 * 1024 * 1024,
      ...options,
    };
    this.#o.maxBytes = Math.min(this.#o.maxBytes, MAX_CRL_BYTES);
  }

  /** Requests sent since creation (tests, metrics). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * The CRL `issuer` publishes at `url`, when one is known and usable now; else a promise settled
   * when a fetch ends (the caller waits, then asks again). A current CRL past its refresh time is
   * returned while a new one is fetched. With every slot busy, the promise settles at once and
   * nothing is remembered (the caller's wait bound decides).
   */
  lookup(url: string, issuer: ParsedCert, now = Date.now()): FetchedCrl | Promise<void> {
    const key = `${issuer.spki} ${url}`;
    const hit = this.#cache.get(key);
    if (hit && hit.refreshAt > now) return hit;
    const pending = this.#inFlight.get(key) ?? this.#start(key, url, issuer);
    return usable(hit, now) ? hit : pending;
  }

  #start(key: string, url: string, issuer: ParsedCert): Promise<void> {
    const host = hostKey(url);
    const onHost = this.#perHost.get(host) ?? 0;
    if (this.#inFlight.size >= this.#o.maxInFlight || onHost >= this.#o.maxInFlightPerHost) return Promise.resolve();
    this.#perHost.set(host, onHost + 1);
    const run = this.#fetch(url, issuer, this.#cache.get(key)?.crl).then((got) => {
      this.#inFlight.delete(key);
      const n = (this.#perHost.get(host) ?? 1) - 1;
      if (n > 0) this.#perHost.set(host, n);
      else this.#perHost.delete(host);
      // A failed refresh keeps the CRL that is still current.
      const old = this.#cache.get(key);
      if (!got.crl && usable(old, Date.now())) got = { ...old, detail: got.detail, refreshAt: got.refreshAt };
      this.#put(key, got);
    });
    this.#inFlight.set(key, run);
    return run;
  }

  #put(key: string, entry: FetchedCrl): void {
    const old = this.#cache.get(key);
    if (old) {
      this.#bytes -= old.bytes;
      this.#cache.delete(key);
    }
    this.#cache.set(key, entry);
    this.#bytes += entry.bytes;
    while (this.#bytes > this.#o.maxCacheBytes && this.#cache.size > 1) {
      const [oldest, e] = this.#cache.entries().next().value as [string, FetchedCrl];
      this.#cache.delete(oldest);
      this.#bytes -= e.bytes;
    }
  }

  async #fetch(url: string, issuer: ParsedCert, held: Crl | undefined): Promise<FetchedCrl> {
    const failed = (detail: string): FetchedCrl => ({
      crl: undefined,
      detail,
      refreshAt: Date.now() + Math.min(NEGATIVE_TTL_MS, this.#o.cacheTtlMs),
      bytes: 0,
    });
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return failed('the CRL URL cannot be read');
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:')
      return failed(`the CRL URL is not http(s): ${target.protocol}`);
    this.#requests++;
    let body: Buffer;
    try {
      const res = await undici.request(target, {
        method: 'GET',
        headers: { accept: 'application/pkix-crl' },
        headersTimeout: this.#o.timeoutMs,
        bodyTimeout: this.#o.timeoutMs,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return failed(`the CRL server answered HTTP ${res.statusCode}`);
      }
      const read = await readCapped(res, this.#o.maxBytes);
      if (!read) return failed(`the CRL is over ${this.#o.maxBytes} bytes`);
      body = read;
    } catch (err) {
      return failed(`the CRL cannot be fetched (${(err as Error).message})`);
    }
    let crl: Crl;
    try {
      const ders = crlDers(body);
      if (ders.length !== 1) throw new Error(ders.length === 0 ? 'not a CRL (DER or PEM)' : 'more than one CRL');
      // Who signed it is checked before the entries are read: a forged or foreign CRL costs one
      // signature check, not a walk of its entries.
      if (!crlSignedBy(ders[0]!, issuer.publicKey, encodedNames(issuer.der).subject))
        throw new Error('it is not a CRL of the issuer (issuer name or signature)');
      crl = parseCrl(ders[0]!);
    } catch (err) {
      return failed(`the fetched CRL is refused: ${(err as Error).message}`);
    }
    const now = Date.now();
    if (crl.thisUpdate > now + 5 * 60_000)
      return failed('the fetched CRL is refused: it is not valid yet (thisUpdate)');
    if (held && crl.thisUpdate < held.thisUpdate)
      return failed('the fetched CRL is refused: it is older than the CRL held (thisUpdate)');
    // An expired CRL (the publisher is late) is asked for again like a failure.
    const refreshAt =
      crl.nextUpdate !== undefined && crl.nextUpdate <= now
        ? now + NEGATIVE_TTL_MS
        : Math.min(now + this.#o.cacheTtlMs, crl.nextUpdate ?? Infinity);
    // The serial lookup takes about 3 times the DER in memory.
    return { crl, detail: '', refreshAt, bytes: body.length * 3 };
  }
}
