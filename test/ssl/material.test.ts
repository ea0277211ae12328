// Setting an SSL object checks its certificate chain and key with the DER reader (ssl/material.ts)
// when they are of the common kinds, and with node:crypto and a TLS context otherwise. Held here to
// OpenSSL's own answer: whatever the store accepts, a TLS context accepts too (so a context built
// at the first handshake cannot fail on it), and what OpenSSL refuses, the store refuses.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { before, describe, test } from 'node:test';
import tls from 'node:tls';
import { createSslStore, ErrorCodes, type MtlsGateError } from '../../src/index.js';
import { derToPem } from '../../src/ssl/material.js';
import { compileSslObject, takeFirstContext } from '../../src/ssl/object.js';
import { type OpensslPair, opensslPair, PAIR_KINDS } from './openssl-pairs.js';

/** Kinds the DER reader vouches for; the others go through node:crypto and a check context. */
const FAST = new Set([
  'ec-p256-pkcs8',
  'ec-p384-pkcs8',
  'ec-p521-pkcs8',
  'ec-p256-sec1-params',
  'ec-p256-sec1',
  'ec-k256-sec1',
  'rsa-2048-pkcs8',
  'rsa-2048-pkcs1',
]);

const pairs = new Map<string, [OpensslPair, OpensslPair]>();
before(() => {
  for (const kind of PAIR_KINDS) pairs.set(kind, [opensslPair(kind, 'a.test'), opensslPair(kind, 'b.test')]);
});

/** OpenSSL's answer: does a TLS context take this pair? */
function opensslTakes(cert: string, key: string): boolean {
  try {
    tls.createSecureContext({ cert, key });
    return true;
  } catch {
    return false;
  }
}

function storeAnswer(cert: string, key: string): { ok: true; fast: boolean } | { ok: false; code: string } {
  try {
    const entry = compileSslObject({ id: 'x', cert, key, snis: ['a.test'] });
    return { ok: true, fast: takeFirstContext(entry) === undefined };
  } catch (err) {
    return { ok: false, code: (err as MtlsGateError).code };
  }
}

describe('every kind of key openssl writes', () => {
  test('a matching pair is accepted exactly when OpenSSL takes it, by the DER reader for the common kinds', () => {
    for (const kind of PAIR_KINDS) {
      const [a] = pairs.get(kind)!;
      const answer = storeAnswer(a.cert, a.key);
      const takes = opensslTakes(a.cert, a.key);
      assert.equal(answer.ok, takes, `${kind}: ${JSON.stringify(answer)}`);
      if (answer.ok) assert.equal(answer.fast, FAST.has(kind), `${kind} read by the DER reader?`);
    }
    // The one OpenSSL refuses: a 512-bit RSA key ("ee key too small").
    assert.deepEqual(storeAnswer(pairs.get('rsa-512')![0].cert, pairs.get('rsa-512')![0].key), {
      ok: false,
      code: ErrorCodes.TLS_CONTEXT,
    });
  });

  test('a key of another certificate is refused for every kind', () => {
    for (const kind of PAIR_KINDS) {
      const [a, b] = pairs.get(kind)!;
      assert.deepEqual(storeAnswer(a.cert, b.key), { ok: false, code: ErrorCodes.KEY_MISMATCH }, kind);
    }
    // Across kinds too: an EC certificate with an RSA key, a P-256 certificate with a P-384 key.
    assert.deepEqual(storeAnswer(pairs.get('ec-p256-pkcs8')![0].cert, pairs.get('rsa-2048-pkcs8')![0].key), {
      ok: false,
      code: ErrorCodes.KEY_MISMATCH,
    });
    assert.deepEqual(storeAnswer(pairs.get('ec-p256-pkcs8')![0].cert, pairs.get('ec-p384-pkcs8')![0].key), {
      ok: false,
      code: ErrorCodes.KEY_MISMATCH,
    });
  });

  test('the view is what node:crypto reads: the certificate re-encoded, its expiry', () => {
    const store = createSslStore();
    for (const kind of FAST) {
      const [a] = pairs.get(kind)!;
      const view = store.set({ id: kind, cert: a.cert, key: a.key, snis: ['a.test'] });
      const x = new X509Certificate(a.cert);
      assert.equal(view.cert, x.toString(), kind);
      assert.equal(view.validTo.getTime(), new Date(x.validTo).getTime(), kind);
    }
  });

  test('derived SNIs come from the certificate read by the DER reader as before', () => {
    const [a] = pairs.get('ec-p256-pkcs8')!;
    const view = createSslStore().set({ id: 'derived', cert: a.cert, key: a.key });
    assert.deepEqual(view.snis, ['a.test']);
    assert.equal(view.snisDerived, true);
  });
});

/** A small deterministic generator: the same mutations on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const derOf = (pem: string, label: string) =>
  Buffer.from(pem.split(`-----BEGIN ${label}-----`)[1]!.split('-----END')[0]!.replace(/\s+/g, ''), 'base64');

describe('damaged material', () => {
  test('what the store accepts, OpenSSL takes: 1,500 single-byte changes of certificates and keys', () => {
    const random = prng(19);
    let accepted = 0;
    let refused = 0;
    for (const kind of ['ec-p256-pkcs8', 'ec-p256-sec1', 'rsa-2048-pkcs1', 'rsa-2048-pkcs8']) {
      const [a] = pairs.get(kind)!;
      const keyLabel = /-----BEGIN ([A-Z ]*PRIVATE KEY)-----/.exec(a.key)![1]!;
      for (let i = 0; i < 375; i++) {
        const which = i % 2 === 0 ? 'cert' : 'key';
        const der = derOf(which === 'cert' ? a.cert : a.key, which === 'cert' ? 'CERTIFICATE' : keyLabel);
        const at = Math.floor(random() * der.length);
        der[at] = random() < 0.5 ? der[at]! ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
        const cert = which === 'cert' ? derToPem(der, 'CERTIFICATE') : a.cert;
        const key = which === 'key' ? derToPem(der, keyLabel) : a.key;
        const answer = storeAnswer(cert, key);
        if (answer.ok) {
          accepted++;
          assert.ok(opensslTakes(cert, key), `${kind} ${which} byte ${at}: accepted by the store, refused by OpenSSL`);
        } else refused++;
      }
    }
    // Both outcomes occur (the mutations are not all harmless, nor all fatal).
    assert.ok(accepted > 100 && refused > 100, `${accepted} accepted, ${refused} refused`);
  });

  test('base64 that is not the exact encoding of its bytes is left to node:crypto', () => {
    const [a] = pairs.get('ec-p256-pkcs8')!;
    // A stray "=" inside the body: Node's decoder would skip it, OpenSSL's would not.
    const lines = a.cert.split('\n');
    lines[2] = `${lines[2]!.slice(0, 10)}=${lines[2]!.slice(10)}`;
    const cert = lines.join('\n');
    const answer = storeAnswer(cert, a.key);
    if (answer.ok) assert.equal(answer.fast, false);
    assert.equal(answer.ok, opensslTakes(cert, a.key));
  });
});
