// The handshake-path DER reader (readExtensions) against @peculiar/x509 (readExtensionsThoroughly):
// the same fields on every certificate shape mtls-gate mints, on random ones, and on openssl's own.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ClientShape, createTestPki, type IssueOptions, type TestCa } from '../../src/testing/index.js';
import { pemBlocks, readExtensionsThoroughly } from '../../src/verify/cert.js';
import { readExtensions } from '../../src/verify/extensions.js';

function agree(pem: string, label: string): void {
  for (const der of pemBlocks(pem, 'CERTIFICATE')) {
    const fast = readExtensions(der);
    const thorough = readExtensionsThoroughly(der);
    assert.deepEqual(fast, thorough, label);
  }
}

/** A small deterministic generator, so a failure names a case that can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

test('every minted shape, EC and RSA, with their CAs', async () => {
  for (const keyType of ['ec', 'rsa'] as const) {
    const pki = await createTestPki({ keyType, serverNames: ['a.test', '*.b.test'] });
    for (const c of [pki.root, pki.intermediate, pki.otherRoot, pki.server]) agree(c.chain, `${keyType} ${c.subject}`);
    const shapes: ClientShape[] = [
      'valid',
      'rsa',
      'ec',
      'viaIntermediate',
      'expired',
      'notYetValid',
      'otherCa',
      'tooDeep',
      'nonCaIssuer',
      'serverAuthOnly',
      'selfSigned',
      'unknownCriticalExtension',
    ];
    for (const shape of shapes) agree((await pki.client(shape)).chain, `${keyType} ${shape}`);
  }
});

test('random extensions: key usage bits, EKUs, pathLen, SANs of every type, critical unknowns', async () => {
  const pki = await createTestPki();
  const next = rng(20261126);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]!;
  const ekus = [
    '1.3.6.1.5.5.7.3.1',
    '1.3.6.1.5.5.7.3.2',
    '1.3.6.1.5.5.7.3.4',
    '1.3.6.1.4.1.311.20.2.2',
    '2.5.29.37.0',
    '1.2.840.113635.100.4.1',
  ];
  const ips = [
    '127.0.0.1',
    '10.0.0.255',
    '::1',
    '2001:db8::1',
    '2001:db8:0:0:1:0:0:1',
    'fe80::1:2:3:4',
    '::',
    '1:0:0:2:0:0:0:3',
    '2001:db8:1:2:3:4:5:6',
  ];
  let cas: TestCa[] = [pki.root];
  for (let i = 0; i < 150; i++) {
    const ca = pick(cas);
    const options: IssueOptions = {
      subject: `O=random, CN=case ${i}`,
      keyUsage: next() < 0.2 ? null : Math.floor(next() * 512),
      extKeyUsage: next() < 0.3 ? null : ekus.filter(() => next() < 0.4),
      san:
        next() < 0.3
          ? undefined
          : {
              dns: Array.from({ length: Math.floor(next() * 4) }, (_, k) => `h${k}.case${i}.test`),
              email: next() < 0.5 ? [`u${i}@example.test`] : [],
              ip: ips.filter(() => next() < 0.3),
              uri: next() < 0.3 ? [`urn:device:${i}`, `https://id.example.test/${i}`] : [],
            },
      extraExtensions:
        next() < 0.2 ? [{ oid: `1.3.6.1.4.1.99999.${Math.floor(next() * 1000)}`, critical: next() < 0.5 }] : [],
    };
    if (next() < 0.25) {
      const sub = await ca.createCa({ ...options, pathLen: next() < 0.5 ? undefined : Math.floor(next() * 300) });
      agree(sub.cert, `case ${i} (CA)`);
      if (cas.length < 8) cas = [...cas, sub];
    } else {
      agree((await ca.issue(options)).cert, `case ${i}`);
    }
  }
});

test("openssl's own certificates: the guide's v1 leaves, a v3 CA, a leaf with every extension openssl writes", () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-ext-'));
  try {
    const openssl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    openssl(
      'req',
      '-x509',
      '-nodes',
      '-new',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '30',
      '-subj',
      '/C=/ST=/L=/O=/OU=web/CN=private_ca',
    );
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'client.key',
      '-out',
      'client.req',
      '-subj',
      '/C=/ST=/L=/O=/OU=web/',
    );
    openssl(
      'x509',
      '-req',
      '-days',
      '30',
      '-set_serial',
      '01',
      '-in',
      'client.req',
      '-out',
      'client.crt',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
    );
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'full.key',
      '-out',
      'full.req',
      '-subj',
      '/CN=full',
    );
    const ext = join(dir, 'ext.cnf');
    execFileSync('bash', [
      '-c',
      `cat > ${ext} <<'E'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement,decipherOnly
extendedKeyUsage=clientAuth,emailProtection
subjectAltName=DNS:a.test,DNS:*.b.test,email:x@y.test,IP:192.0.2.1,IP:2001:db8::7,URI:spiffe://trust/x
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
certificatePolicies=1.2.3.4
nsComment="odd but legal"
E`,
    ]);
    openssl(
      'x509',
      '-req',
      '-days',
      '30',
      '-in',
      'full.req',
      '-out',
      'full.crt',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '0',
      '-extfile',
      ext,
    );
    for (const f of ['ca.crt', 'client.crt', 'full.crt']) agree(readFileSync(join(dir, f), 'utf8'), f);
    const full = readExtensions(new X509Certificate(readFileSync(join(dir, 'full.crt'))).raw);
    assert.deepEqual(full.san, {
      dns: ['a.test', '*.b.test'],
      email: ['x@y.test'],
      ip: ['192.0.2.1', '2001:db8::7'],
      uri: ['spiffe://trust/x'],
    });
    assert.deepEqual(full.critical, ['2.5.29.19', '2.5.29.15']);
    assert.equal(full.keyUsage, 1 | 16 | 256);
    const v1 = readExtensions(new X509Certificate(readFileSync(join(dir, 'client.crt'))).raw);
    assert.equal(v1.ca, undefined, 'a v1 certificate has no extensions');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damaged DER throws (the verifier then refuses), never reads past the buffer', async () => {
  const pki = await createTestPki();
  const der = new X509Certificate((await pki.client('valid')).cert).raw;
  let threw = 0;
  for (let cut = 1; cut < der.length; cut += 7) {
    try {
      readExtensions(der.subarray(0, cut));
    } catch {
      threw++;
    }
  }
  assert.equal(threw, Math.ceil((der.length - 1) / 7), 'every truncation throws');
  const next = rng(7);
  for (let i = 0; i < 2000; i++) {
    const bad = Buffer.from(der);
    for (let k = 0; k < 3; k++) bad[Math.floor(next() * bad.length)] = Math.floor(next() * 256);
    try {
      readExtensions(bad);
    } catch (e) {
      assert.ok(e instanceof Error);
    }
  }
});
