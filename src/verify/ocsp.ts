/**
 * OCSP (RFC 6960) for client certificates: the request for one certificate, the responder's answer
 * read and judged, and a client that asks a responder with bounds (timeout, response size, requests
 * in flight), one request per certificate however many connections ask, and a cache until the
 * answer's nextUpdate. Messages are built and read with @peculiar/asn1-ocsp (the ASN.1 stack of
 * @peculiar/x509); hashes and signatures with node:crypto.
 *
 * An answer counts only when it is signed by an authorised responder (RFC 6960 4.2.2.2): the issuing
 * CA itself, or a certificate the issuing CA issued with the OCSPSigning extended key usage, valid
 * now. Anything else (a response signed by another key, a stale or future one, a wrong nonce, a
 * certificate it does not mention) is `unknown`, never `good`.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readCapped } from '../internal/body.js';
import { undici } from '../internal/deps.js';
import { children, tlv } from '../internal/der.js';
import { asnSchema, asnX509, type Ocsp, ocsp } from '../internal/x509.js';
import type { ParsedCert } from './cert.js';
import { certSerial, signedWith } from './crl.js';

/** What OCSP said of a certificate. */
export interface OcspAnswer {
  readonly status: 'good' | 'revoked' | 'unknown';
  readonly detail: string;
  /** Until when the answer may be used (its nextUpdate, or thisUpdate + the cache TTL). */
  readonly until: number;
}

/** Clock skew allowed on thisUpdate / nextUpdate (nginx allows 300 s). */
export const OCSP_SKEW_MS = 5 * 60_000;
const SHA1 = '1.3.14.3.2.26';
/** How long an answer that could not be learned is kept before the responder is asked again. */
const NEGATIVE_TTL_MS = 10_000;

/** The OCSP responder URL of a certificate's authorityInfoAccess, if any (http or https only). */
export function aiaResponder(leafDer: Uint8Array): string | undefined {
  let info: string | undefined;
  try {
    info = new X509Certificate(leafDer).infoAccess;
  } catch {
    return undefined;
  }
  const m = /^OCSP - URI:(https?:\/\/\S+)$/m.exec(info ?? '');
  return m?.[1];
}
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

/** The subjectPublicKey BIT STRING's content of a certificate (what issuerKeyHash hashes). */
function publicKeyBits(der: Uint8Array): Buffer {
  const cert = tlv(der, 0, der.length);
  const tbs = children(der, cert)[0]!;
  const fields = children(der, tbs);
  const spki = fields[fields[0]!.tag === 0xa0 ? 6 : 5]!;
  const bits = children(der, spki)[1]!;
  return Buffer.from(der.subarray(bits.start + 1, bits.end));
}

function subjectName(der: Uint8Array): Buffer {
  const cert = tlv(der, 0, der.length);
  const tbs = children(der, cert)[0]!;
  const fields = children(der, tbs);
  const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]!;
  return Buffer.from(der.subarray(subject.at, subject.end));
}

/** The CertID of a certificate under its issuer (SHA-1, as responders expect). */
function certId(serial: string, issuerDer: Uint8Array): { nameHash: Buffer; keyHash: Buffer; serial: string } {
  return {
    nameHash: createHash('sha1').update(subjectName(issuerDer)).digest(),
    keyHash: createHash('sha1').update(publicKeyBits(issuerDer)).digest(),
    serial,
  };
}

/** The DER of an OCSP request for `leafDer` issued by `issuerDer`, with an optional nonce. */
export function ocspRequest(leafDer: Uint8Array, issuerDer: Uint8Array, nonce?: Buffer): Buffer {
  const id = certId(certSerial(leafDer), issuerDer);
  // The INTEGER content exactly as the certificate carries it.
  const serialBytes = Buffer.from(id.serial, 'hex');
  const reqCert = new ocsp.CertID({
    hashAlgorithm: new asnX509.AlgorithmIdentifier({ algorithm: SHA1, parameters: null }),
    issuerNameHash: new asnSchema.OctetString(id.nameHash),
    issuerKeyHash: new asnSchema.OctetString(id.keyHash),
    serialNumber: new Uint8Array(serialBytes).buffer,
  });
  const tbsRequest = new ocsp.TBSRequest({
    requestList: [new ocsp.Request({ reqCert })],
    ...(nonce
      ? {
          requestExtensions: [
            new asnX509.Extension({
              extnID: ocsp.id_pkix_ocsp_nonce,
              critical: false,
              extnValue: new asnSchema.OctetString(asnSchema.AsnConvert.serialize(new asnSchema.OctetString(nonce))),
            }),
          ],
        }
      : {}),
  });
  return Buffer.from(asnSchema.AsnConvert.serialize(new ocsp.OCSPRequest({ tbsRequest })));
}

const unknown = (detail: string, until = 0): OcspAnswer => ({ status: 'unknown', detail, until });

/**
 * Reads a responder's answer about `leafDer` (issued by `issuer`). Never throws: whatever cannot be
 * trusted is `unknown` with the reason.
 */
export function readOcspResponse(
  der: Uint8Array,
  leafDer: Uint8Array,
  issuer: ParsedCert,
  options: { now: number; nonce?: Buffer; cacheTtlMs?: number },
): OcspAnswer {
  let basic: Ocsp.BasicOCSPResponse;
  let tbsRaw: Buffer;
  try {
    const outer = asnSchema.AsnConvert.parse(der, ocsp.OCSPResponse);
    if (outer.responseStatus !== ocsp.OCSPResponseStatus.successful)
      return unknown(`the responder answered ${ocsp.OCSPResponseStatus[outer.responseStatus] ?? outer.responseStatus}`);
    if (!outer.responseBytes || outer.responseBytes.responseType !== ocsp.id_pkix_ocsp_basic)
      return unknown('not a basic OCSP response');
    const bytes = Buffer.from(outer.responseBytes.response.buffer);
    basic = asnSchema.AsnConvert.parse(bytes, ocsp.BasicOCSPResponse);
    // The signature covers tbsResponseData exactly as sent.
    const top = tlv(bytes, 0, bytes.length);
    const first = children(bytes, top)[0]!;
    tbsRaw = bytes.subarray(first.at, first.end);
  } catch (err) {
    return unknown(`the response cannot be read (${(err as Error).message})`);
  }
  const alg = basic.signatureAlgorithm.algorithm;
  const signature = Buffer.from(basic.signature);
  // Who signed: the issuing CA itself, or a delegated responder the CA issued for OCSP signing.
  let authorised = signedWith(alg, tbsRaw, issuer.publicKey, signature);
  if (!authorised) {
    for (const c of basic.certs ?? []) {
      let responder: X509Certificate;
      try {
        responder = new X509Certificate(Buffer.from(asnSchema.AsnConvert.serialize(c)));
      } catch {
        continue;
      }
      const validNow =
        Date.parse(responder.validFrom) <= options.now + OCSP_SKEW_MS &&
        options.now - OCSP_SKEW_MS <= Date.parse(responder.validTo);
      if (!validNow || !responder.checkIssued(issuer.node) || !responder.verify(issuer.publicKey)) continue;
      if (!(responder.keyUsage ?? []).includes(OCSP_SIGNING)) continue;
      if (signedWith(alg, tbsRaw, responder.publicKey, signature)) {
        authorised = true;
        break;
      }
    }
  }
  if (!authorised)
    return unknown('the response is not signed by the issuing CA or a responder it authorised (OCSPSigning)');
  const data = basic.tbsResponseData;
  if (options.nonce) {
    const ext = (data.responseExtensions ?? []).find((e) => e.extnID === ocsp.id_pkix_ocsp_nonce);
    const value = ext ? Buffer.from(ext.extnValue.buffer) : undefined;
    const expected = Buffer.from(asnSchema.AsnConvert.serialize(new asnSchema.OctetString(options.nonce)));
    if (!value || (!value.equals(expected) && !value.equals(options.nonce)))
      return unknown('the response does not carry the nonce of the request');
  }
  const want = certId(certSerial(leafDer), issuer.der);
  const single = data.responses.find((r) => {
    const got = Buffer.from(r.certID.serialNumber);
    return (
      r.certID.hashAlgorithm.algorithm === SHA1 &&
      Buffer.from(r.certID.issuerNameHash.buffer).equals(want.nameHash) &&
      Buffer.from(r.certID.issuerKeyHash.buffer).equals(want.keyHash) &&
      got.toString('hex').toUpperCase() === want.serial
    );
  });
  if (!single) return unknown('the response does not mention the certificate');
  const thisUpdate = single.thisUpdate.getTime();
  const nextUpdate = single.nextUpdate?.getTime();
  if (thisUpdate > options.now + OCSP_SKEW_MS) return unknown('the response is not valid yet (thisUpdate)');
  if (nextUpdate !== undefined && nextUpdate + OCSP_SKEW_MS < options.now)
    return unknown('the response is stale (nextUpdate passed)');
  // Without nextUpdate an answer would never go stale: one captured before a revocation could be
  // replayed for ever. It counts only while younger than the cache TTL.
  if (nextUpdate === undefined && options.now - thisUpdate > (options.cacheTtlMs ?? 3_600_000))
    return unknown('the response has no nextUpdate and is older than cacheTtlMs');
  const until = Math.min(nextUpdate ?? thisUpdate + 3_600_000, options.now + (options.cacheTtlMs ?? 3_600_000));
  if (single.certStatus.revoked)
    return {
      status: 'revoked',
      detail: `OCSP: revoked at ${single.certStatus.revoked.revocationTime.toISOString()}`,
      until,
    };
  // A CHOICE: the alternative that was sent is the one set (good and unknown carry NULL).
  if (single.certStatus.good === null && single.certStatus.unknown === undefined)
    return { status: 'good', detail: '', until };
  return unknown('the responder does not know the certificate', until);
}

/** Options of {@link OcspClient}. */
export interface OcspClientOptions {
  /** Per request; default 5,000 ms. */
  timeoutMs?: number;
  /** Longest an answer is kept (also bounded by its nextUpdate); default 1 hour. */
  cacheTtlMs?: number;
  /** Send a nonce and require it back. Default false (most responders answer from a cache without one). */
  nonce?: boolean;
  /** Largest response read; default 64 KiB. */
  maxResponseBytes?: number;
  /** Requests in flight at once over all responders; beyond it, `unknown` at once. Default 32. */
  maxInFlight?: number;
  /** Most answers kept; default 10,000. */
  cacheSize?: number;
}

/**
 * Asks responders, with a cache keyed by (issuer key hash, serial) and one request in flight per
 * certificate. Only http: and https: responder URLs are asked.
 */
export class OcspClient {
  readonly #o: Required<OcspClientOptions>;
  readonly #cache = new Map<string, OcspAnswer>();
  readonly #inFlight = new Map<string, Promise<OcspAnswer>>();
  #requests = 0;

  constructor(options: OcspClientOptions = {}) {
    this.#o = {
      timeoutMs: 5000,
      cacheTtlMs: 3_600_000,
      nonce: false,
      maxResponseBytes: 64 * 1024,
      maxInFlight: 32,
      cacheSize: 10_000,
      ...options,
    };
  }

  /** Requests sent since creation (tests, metrics). */
  get requests(): number {
    return this.#requests;
  }

  #key(leafDer: Uint8Array, issuer: ParsedCert, serial = certSerial(leafDer)): string {
    return `${issuer.spki}:${serial}`;
  }

  /** The cached answer, if one is still good to use (`serial`: the leaf's, when the caller has it). */
  cached(leafDer: Uint8Array, issuer: ParsedCert, now = Date.now(), serial?: string): OcspAnswer | undefined {
    const hit = this.#cache.get(this.#key(leafDer, issuer, serial));
    return hit && hit.until > now ? hit : undefined;
  }

  /** The status of `leafDer` from `responder`, from the cache or from one request shared by every caller. */
  status(leafDer: Uint8Array, issuer: ParsedCert, responder: string): Promise<OcspAnswer> {
    const hit = this.cached(leafDer, issuer);
    if (hit) return Promise.resolve(hit);
    const key = this.#key(leafDer, issuer);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    if (this.#inFlight.size >= this.#o.maxInFlight) {
      // Kept a moment, so that the connections waiting are judged on it (by their mode) at once.
      const busy = unknown('too many OCSP requests in flight', Date.now() + 1000);
      this.#cache.set(key, busy);
      return Promise.resolve(busy);
    }
    const ask = this.#ask(leafDer, issuer, responder).then((got) => {
      this.#inFlight.delete(key);
      // An unknown answer is kept briefly too: the connections waiting for it decide on it, and a
      // responder that is down is not asked again by every new connection.
      // Only an unknown answer is stretched: a good or revoked one is never kept past its own time.
      const answer =
        got.until > Date.now() || got.status !== 'unknown' ? got : { ...got, until: Date.now() + NEGATIVE_TTL_MS };
      if (answer.until <= Date.now()) return answer;
      if (this.#cache.size >= this.#o.cacheSize) this.#cache.delete(this.#cache.keys().next().value as string);
      this.#cache.set(key, answer);
      return answer;
    });
    this.#inFlight.set(key, ask);
    return ask;
  }

  async #ask(leafDer: Uint8Array, issuer: ParsedCert, responder: string): Promise<OcspAnswer> {
    let url: URL;
    try {
      url = new URL(responder);
    } catch {
      return unknown('the responder URL cannot be read');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return unknown(`the responder URL is not http(s): ${url.protocol}`);
    const nonce = this.#o.nonce ? randomBytes(16) : undefined;
    this.#requests++;
    try {
      const res = await undici.request(url, {
        method: 'POST',
        body: ocspRequest(leafDer, issuer.der, nonce),
        headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
        headersTimeout: this.#o.timeoutMs,
        bodyTimeout: this.#o.timeoutMs,
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return unknown(`the responder answered HTTP ${res.statusCode}`);
      }
      const body = await readCapped(res, this.#o.maxResponseBytes);
      if (!body) return unknown(`the response is over ${this.#o.maxResponseBytes} bytes`);
      return readOcspResponse(body, leafDer, issuer, { now: Date.now(), nonce, cacheTtlMs: this.#o.cacheTtlMs });
    } catch (err) {
      return unknown(`the responder cannot be reached (${(err as Error).message})`);
    }
  }
}
