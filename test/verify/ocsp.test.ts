// OCSP against a real `openssl ocsp` responder on 127.0.0.1 (an index made by `openssl ca`, a
// delegated responder with the OCSPSigning EKU), and an in-process responder for the answers openssl
// will not make: a signer without authority, a stale answer, a wrong nonce, an unknown status.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import crypto, { createPrivateKey, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { asnSchema, asnX509, ocsp } from '../../src/internal/x509.js';
import { parseCert } from '../../src/verify/cert.js';
import { OcspClient, readOcspResponse } from '../../src/verify/ocsp.js';
import { opensslCa } from './openssl-ca.js';
import { startOcspResponder } from './openssl-ocsp.js';

// The ASN.1 classes of the instances mtls-gate loads (its CommonJS builds, on first use).
const { AsnConvert, OctetString } = asnSchema;
const { AlgorithmIdentifier, Certificate, Extension } = asnX509;

let dir: string;
let responder: ChildProcess;
let url: string;
const read = (f: string) => readFileSync(join(dir, f), 'utf8');
const der = (f: string) => new X509Certificate(read(f)).raw;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-gate-ocsp-'));
  const pki = opensslCa(dir);
  pki.ca('ca');
  for (const [name, ext] of [
    ['good', 'leaf'],
    ['revoked', 'leaf'],
    ['signer', 'signer'],
    ['forger', 'leaf'],
  ] as const)
    pki.issue('ca', name, ext);
  pki.revoke('ca', 'revoked');
  // A certificate of another CA with a serial this one never issued: the responder does not know it.
  const started = await startOcspResponder(dir);
  responder = started.child;
  url = started.url;
});
after(() => {
  responder?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const issuer = () => parseCert(Buffer.from(der('ca/cert.pem')));

test('openssl ocsp: good is good, revoked is revoked, an unknown certificate is unknown; answers are cached and shared', async () => {
  const client = new OcspClient({ timeoutMs: 3000 });
  assert.equal((await client.status(der('good.pem'), issuer(), url)).status, 'good');
  const revoked = await client.status(der('revoked.pem'), issuer(), url);
  assert.equal(revoked.status, 'revoked');
  assert.match(revoked.detail, /revoked at/);
  // The forger's certificate is in the index (issued, not revoked): good; a serial never issued is unknown.
  const stranger = Buffer.from(der('good.pem'));
  const strangerIssuer = parseCert(Buffer.from(der('forger.pem')));
  assert.equal(
    (await client.status(stranger, strangerIssuer, url)).status,
    'unknown',
    'an issuer the responder does not serve',
  );
  const before = client.requests;
  // Twenty connections asking at once: one request, then the cache.
  const all = await Promise.all(
    Array.from({ length: 20 }, () => new OcspClient().status(der('good.pem'), issuer(), url)),
  );
  assert.ok(all.every((a) => a.status === 'good'));
  const shared = new OcspClient();
  await Promise.all(Array.from({ length: 20 }, () => shared.status(der('good.pem'), issuer(), url)));
  assert.equal(shared.requests, 1);
  await shared.status(der('good.pem'), issuer(), url);
  assert.equal(shared.requests, 1, 'cached');
  assert.equal(client.requests, before);
});

test('a responder that is down or not http(s) gives unknown, within the timeout', async () => {
  const client = new OcspClient({ timeoutMs: 500 });
  const t0 = Date.now();
  assert.equal((await client.status(der('good.pem'), issuer(), 'http://127.0.0.1:1')).status, 'unknown');
  assert.equal((await client.status(der('good.pem'), issuer(), 'ldap://127.0.0.1/')).status, 'unknown');
  assert.ok(Date.now() - t0 < 2000);
});

/** An in-process responder's answer, signed by `signerKey` (PEM), with its certificate attached. */
function answer(opts: {
  signer: string;
  signerKey: string;
  status: 'good' | 'revoked' | 'unknown';
  thisUpdate?: Date;
  nextUpdate?: Date | null;
  nonce?: Buffer;
  serialOf?: string;
}): Buffer {
  const ca = Buffer.from(der('ca/cert.pem'));
  const caCert = AsnConvert.parse(ca, Certificate);
  const leaf = AsnConvert.parse(Buffer.from(der(opts.serialOf ?? 'good.pem')), Certificate);
  const certID = new ocsp.CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: '1.3.14.3.2.26', parameters: null }),
    issuerNameHash: new OctetString(
      crypto
        .createHash('sha1')
        .update(Buffer.from(AsnConvert.serialize(caCert.tbsCertificate.subject)))
        .digest(),
    ),
    issuerKeyHash: new OctetString(
      crypto
        .createHash('sha1')
        .update(Buffer.from(caCert.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey))
        .digest(),
    ),
    serialNumber: leaf.tbsCertificate.serialNumber,
  });
  const certStatus = new ocsp.CertStatus(
    opts.status === 'good'
      ? { good: null }
      : opts.status === 'revoked'
        ? { revoked: new ocsp.RevokedInfo({ revocationTime: new Date(Date.now() - 60_000) }) }
        : { unknown: null },
  );
  const now = new Date();
  const data = new ocsp.ResponseData({
    responderID: new ocsp.ResponderID({
      byKey: new ocsp.KeyHash(
        crypto
          .createHash('sha1')
          .update(Buffer.from(caCert.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey))
          .digest(),
      ),
    }),
    producedAt: now,
    responses: [
      new ocsp.SingleResponse({
        certID,
        certStatus,
        thisUpdate: opts.thisUpdate ?? new Date(now.getTime() - 60_000),
        ...(opts.nextUpdate === null ? {} : { nextUpdate: opts.nextUpdate ?? new Date(now.getTime() + 3_600_000) }),
      }),
    ],
    ...(opts.nonce
      ? {
          responseExtensions: [
            new Extension({
              extnID: ocsp.id_pkix_ocsp_nonce,
              critical: false,
              extnValue: new OctetString(AsnConvert.serialize(new OctetString(opts.nonce))),
            }),
          ],
        }
      : {}),
  });
  const tbs = Buffer.from(AsnConvert.serialize(data));
  const signature = sign('sha256', tbs, createPrivateKey(opts.signerKey));
  const basic = new ocsp.BasicOCSPResponse({
    tbsResponseData: data,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }),
    signature: new Uint8Array(signature).buffer,
    certs: [AsnConvert.parse(Buffer.from(new X509Certificate(opts.signer).raw), Certificate)],
  });
  return Buffer.from(
    AsnConvert.serialize(
      new ocsp.OCSPResponse({
        responseStatus: ocsp.OCSPResponseStatus.successful,
        responseBytes: new ocsp.ResponseBytes({
          responseType: ocsp.id_pkix_ocsp_basic,
          response: new OctetString(AsnConvert.serialize(basic)),
        }),
      }),
    ),
  );
}

test('in-process answers: only an authorised, fresh answer with the right nonce counts', () => {
  const leaf = der('good.pem');
  const now = Date.now();
  const judge = (a: Buffer, nonce?: Buffer) => readOcspResponse(a, leaf, issuer(), { now, nonce });
  // The control: the delegated responder (OCSPSigning), good.
  assert.equal(
    judge(answer({ signer: read('signer.pem'), signerKey: read('signer.key'), status: 'good' })).status,
    'good',
  );
  // The CA itself signing: authorised.
  assert.equal(
    judge(answer({ signer: read('ca/cert.pem'), signerKey: read('ca/key.pem'), status: 'revoked' })).status,
    'revoked',
  );
  // A certificate of the same CA without OCSPSigning: not authorised, so unknown, never good.
  const forged = judge(answer({ signer: read('forger.pem'), signerKey: read('forger.key'), status: 'good' }));
  assert.equal(forged.status, 'unknown');
  assert.match(forged.detail, /not signed by the issuing CA or a responder it authorised/);
  // Stale and future answers.
  assert.match(
    judge(
      answer({
        signer: read('signer.pem'),
        signerKey: read('signer.key'),
        status: 'good',
        thisUpdate: new Date(now - 7_200_000),
        nextUpdate: new Date(now - 3_600_000),
      }),
    ).detail,
    /stale/,
  );
  assert.match(
    judge(
      answer({
        signer: read('signer.pem'),
        signerKey: read('signer.key'),
        status: 'good',
        thisUpdate: new Date(now + 3_600_000),
      }),
    ).detail,
    /not valid yet/,
  );
  // Without nextUpdate: good while young, unknown once older than the cache TTL (no replay of an old answer).
  assert.equal(
    judge(answer({ signer: read('signer.pem'), signerKey: read('signer.key'), status: 'good', nextUpdate: null }))
      .status,
    'good',
  );
  assert.match(
    judge(
      answer({
        signer: read('signer.pem'),
        signerKey: read('signer.key'),
        status: 'good',
        thisUpdate: new Date(now - 400 * 86_400_000),
        nextUpdate: null,
      }),
    ).detail,
    /no nextUpdate and is older/,
  );
  // Nonces.
  const nonce = Buffer.from('0123456789abcdef');
  assert.equal(
    judge(answer({ signer: read('signer.pem'), signerKey: read('signer.key'), status: 'good', nonce }), nonce).status,
    'good',
  );
  assert.match(
    judge(
      answer({
        signer: read('signer.pem'),
        signerKey: read('signer.key'),
        status: 'good',
        nonce: Buffer.from('another nonce!!!'),
      }),
      nonce,
    ).detail,
    /nonce/,
  );
  assert.match(
    judge(answer({ signer: read('signer.pem'), signerKey: read('signer.key'), status: 'good' }), nonce).detail,
    /nonce/,
  );
  // Unknown, and an answer about another certificate.
  assert.equal(
    judge(answer({ signer: read('signer.pem'), signerKey: read('signer.key'), status: 'unknown' })).status,
    'unknown',
  );
  assert.match(
    judge(
      answer({ signer: read('signer.pem'), signerKey: read('signer.key'), status: 'good', serialOf: 'revoked.pem' }),
    ).detail,
    /does not mention/,
  );
  // Garbage.
  assert.equal(judge(Buffer.from('not ocsp')).status, 'unknown');
});

test('a response over the size cap is not read', async () => {
  const big = http.createServer((_q, s) => s.end(Buffer.alloc(200 * 1024)));
  await new Promise<void>((r) => big.listen(0, '127.0.0.1', () => r()));
  try {
    const a = await new OcspClient({ maxResponseBytes: 64 * 1024 }).status(
      der('good.pem'),
      issuer(),
      `http://127.0.0.1:${(big.address() as AddressInfo).port}`,
    );
    assert.equal(a.status, 'unknown');
    assert.match(a.detail, /over 65536 bytes/);
  } finally {
    big.close();
  }
});
