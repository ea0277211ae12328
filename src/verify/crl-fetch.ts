/**
 * CRLs fetched from the client certificate's CRL distribution point (`client.crlFetch`), for
 * deployments that publish CRLs rather than configure them. URLs come from client certificates, so
 * fetching is an attack surface: the caller asks only for chains that verified against the object's
 * CA, and this client asks only http: and https: URLs (optionally on listed hosts), with a timeout,
 * a response size cap, one request in flight per URL, a bound on requests in flight, and a cache
 * bounded in bytes. A CRL is kept until its nextUpdate (and refreshed after `cacheTtlMs` while still
 * current, without making connections wait); a failed fetch is remembered for 10 seconds.
 */
import { request } from 'undici';
import { children, expect, oidString, tlv } from '../internal/der.js';
import { crlDers, MAX_CRL_BYTES, parseCrl, type Crl } from './crl.js';

const OID_CRL_DP = '2.5.29.31';
const NEGATIVE_TTL_MS = 10_000;

/**
 * The http(s) URLs of a certificate's cRLDistributionPoints that name a complete CRL: a full name,
 * no `reasons` (a partial CRL) and no `cRLIssuer` (an indirect one). Empty when there are none or the
 * extension cannot be read.
 */
export function crlDistributionUrls(der: Uint8Array): string[] {
  try {
    const cert = expect(tlv(der, 0, der.length), 0x30, 'Certificate');
    const tbs = expect(children(der, cert)[0], 0x30, 'TBSCertificate');
    const wrapper = children(der, tbs).find((f) => f.tag === 0xa3);
    if (!wrapper) return [];
    for (const ext of children(der, expect(children(der, wrapper)[0], 0x30, 'Extensions'))) {
      const parts = children(der, ext);
      if (oidString(der, expect(parts[0], 0x06, 'extnID')) !== OID_CRL_DP) continue;
      const value = expect(parts.at(-1), 0x04, 'extnValue');
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
    }
  } catch {
    // An unreadable extension names no URL (the status stays unknown).
  }
  return [];
}

/** What a fetch found: a CRL (still to be checked against the issuer by the caller) or why there is none. */
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
  /** Requests in flight at once; beyond it, no CRL for a second. Default 8. */
  maxInFlight?: number;
  /** Bytes of CRLs kept over all URLs; the oldest are dropped beyond it. Default 256 MiB. */
  maxCacheBytes?: number;
}

/** Fetches CRLs by URL, shared by every object with the same settings. */
export class CrlFetcher {
  readonly #o: Required<CrlFetcherOptions>;
  readonly #cache = new Map<string, FetchedCrl>();
  readonly #inFlight = new Map<string, Promise<void>>();
  #bytes = 0;
  #requests = 0;

  constructor(options: CrlFetcherOptions = {}) {
    this.#o = { timeoutMs: 5000, maxBytes: 10 * 1024 * 1024, cacheTtlMs: 3_600_000, maxInFlight: 8, maxCacheBytes: 256 * 1024 * 1024, ...options };
    this.#o.maxBytes = Math.min(this.#o.maxBytes, MAX_CRL_BYTES);
  }

  /** Requests sent since creation (tests, metrics). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * The CRL of `url` when one is known and usable now; else a promise settled when a fetch ends (the
   * caller waits, then asks again). A current CRL past its refresh time is returned while a new one
   * is fetched.
   */
  lookup(url: string, now = Date.now()): FetchedCrl | Promise<void> {
    const hit = this.#cache.get(url);
    if (hit && hit.refreshAt > now) return hit;
    const usable = hit?.crl && (hit.crl.nextUpdate === undefined || hit.crl.nextUpdate > now);
    const pending = this.#inFlight.get(url) ?? this.#start(url);
    return usable ? hit : pending;
  }

  #start(url: string): Promise<void> {
    if (this.#inFlight.size >= this.#o.maxInFlight) {
      // A CRL still current is kept; else none for a second, so the connections waiting are judged.
      const old = this.#cache.get(url);
      if (!old?.crl || (old.crl.nextUpdate !== undefined && old.crl.nextUpdate <= Date.now())) {
        this.#put(url, { crl: undefined, detail: 'too many CRL fetches in flight', refreshAt: Date.now() + 1000, bytes: 0 });
      }
      return Promise.resolve();
    }
    const run = this.#fetch(url).then((got) => {
      this.#inFlight.delete(url);
      // A failed refresh keeps the CRL that is still current.
      const old = this.#cache.get(url);
      if (!got.crl && old?.crl && (old.crl.nextUpdate === undefined || old.crl.nextUpdate > Date.now())) got = { ...old, refreshAt: Date.now() + NEGATIVE_TTL_MS };
      this.#put(url, got);
    });
    this.#inFlight.set(url, run);
    return run;
  }

  #put(url: string, entry: FetchedCrl): void {
    const old = this.#cache.get(url);
    if (old) {
      this.#bytes -= old.bytes;
      this.#cache.delete(url);
    }
    this.#cache.set(url, entry);
    this.#bytes += entry.bytes;
    while (this.#bytes > this.#o.maxCacheBytes && this.#cache.size > 1) {
      const [oldest, e] = this.#cache.entries().next().value as [string, FetchedCrl];
      this.#cache.delete(oldest);
      this.#bytes -= e.bytes;
    }
  }

  async #fetch(url: string): Promise<FetchedCrl> {
    const failed = (detail: string): FetchedCrl => ({ crl: undefined, detail, refreshAt: Date.now() + NEGATIVE_TTL_MS, bytes: 0 });
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return failed('the CRL URL cannot be read');
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return failed(`the CRL URL is not http(s): ${target.protocol}`);
    this.#requests++;
    let body: Buffer;
    try {
      const res = await request(target, {
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
      const declared = Number(res.headers['content-length']);
      if (declared > this.#o.maxBytes) {
        destroyBody(res.body);
        return failed(`the CRL is over ${this.#o.maxBytes} bytes`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.#o.maxBytes) {
          destroyBody(res.body);
          return failed(`the CRL is over ${this.#o.maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      body = Buffer.concat(chunks);
    } catch (err) {
      return failed(`the CRL cannot be fetched (${(err as Error).message})`);
    }
    let crl: Crl;
    try {
      const ders = crlDers(body);
      if (ders.length !== 1) throw new Error(ders.length === 0 ? 'not a CRL (DER or PEM)' : 'more than one CRL');
      crl = parseCrl(ders[0]!);
    } catch (err) {
      return failed(`the fetched CRL is refused: ${(err as Error).message}`);
    }
    const now = Date.now();
    // An expired CRL (the publisher is late) is asked for again like a failure.
    const refreshAt = crl.nextUpdate !== undefined && crl.nextUpdate <= now ? now + NEGATIVE_TTL_MS : Math.min(now + this.#o.cacheTtlMs, crl.nextUpdate ?? Infinity);
    return { crl, detail: '', refreshAt, bytes: body.length };
  }
}

/** Stops reading a response body; undici reports the abort as an error, which is expected here. */
function destroyBody(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => {});
  body.destroy();
}
