import assert from 'node:assert/strict';
import { createHash, webcrypto, X509Certificate } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { x509 } from '../../src/internal/x509.js';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';
import { compileCaSet } from '../../src/verify/ca-set.js';
import { type ParsedCert, parseCert } from '../../src/verify/cert.js';
import { verifyChain } from '../../src/verify/chain.js';
import { clientIdentity, rfc2253 } from '../../src/verify/identity.js';
import { Verifier } from '../../src/verify/verifier.js';

const HOUR = 3600_000;
const parse = (pem: string): ParsedCert[] =>
  pem
    .split(/(?=-----BEGIN CERTIFICATE-----)/)
    .filter((b) => b.trim())
    .map((b) => parseCert(new X509Certificate(b)));
let pki: TestPki;

before(async () => {
  pki = await createTestPki();
});

describe('verifyChain', () => {
  test('leaf issued by the anchor; intermediates in any order; root sent too', async () => {
    const ca = compileCaSet(pki.root.cert, 'ca');
    const direct = await pki.client('valid');
    assert.equal(verifyChain(ca, parse(direct.chain), 1, Date.now()).ok, true);
    const via = await pki.client('viaIntermediate');
    const [leaf, int] = parse(via.chain);
    const root = parse(pki.root.cert)[0]!;
    for (const sent of [
      [leaf!, int!],
      [leaf!, root, int!],
      [leaf!, int!, root],
    ]) {
      const v = verifyChain(ca, sent, 1, Date.now());
      assert.equal(v.ok, true);
      if (v.ok) assert.equal(v.anchor.fp256, root.fp256);
    }
  });

  test('validity bounds are inclusive, and apply to the anchor as well', async () => {
    const ca = compileCaSet(pki.root.cert, 'ca');
    const c = await pki.client('valid');
    const sent = parse(c.chain);
    const leaf = sent[0]!;
    assert.equal(verifyChain(ca, sent, 1, leaf.notAfter).ok, true);
    assert.equal(verifyChain(ca, sent, 1, leaf.notBefore).ok, true);
    const late = verifyChain(ca, sent, 1, leaf.notAfter + 1);
    assert.equal(late.ok ? 'ok' : late.reason, 'expired');
    const early = verifyChain(ca, sent, 1, leaf.notBefore - 1);
    assert.equal(early.ok ? 'ok' : early.reason, 'not_yet_valid');
    if (!early.ok) assert.equal(early.recheckAt, leaf.notBefore);

    const expiredRoot = await pki.createRoot({
      notBefore: new Date(Date.now() - 48 * HOUR),
      notAfter: new Date(Date.now() - HOUR),
    });
    const child = await expiredRoot.issue({ subject: 'CN=child of expired root' });
    const v = verifyChain(compileCaSet(expiredRoot.cert, 'ca'), parse(child.chain), 1, Date.now());
    assert.equal(v.ok ? 'ok' : v.reason, 'expired');
  });

  test('depth counts intermediates; pathLenConstraint is enforced', async () => {
    const ca = compileCaSet(pki.root.cert, 'ca');
    const i1 = await pki.root.createCa({ subject: 'CN=i1' });
    const i2 = await i1.createCa({ subject: 'CN=i2' });
    const deep = parse((await i2.issue({ subject: 'CN=deep' })).chain);
    assert.equal(deep.length, 3);
    const r = (d: number) => {
      const v = verifyChain(ca, deep, d, Date.now());
      return v.ok ? 'ok' : v.reason;
    };
    assert.equal(r(0), 'chain_too_long');
    assert.equal(r(1), 'chain_too_long');
    assert.equal(r(2), 'ok');
    const limited = await pki.root.createCa({ subject: 'CN=limited', pathLen: 0 });
    const sub = await limited.createCa({ subject: 'CN=below limited' });
    const v = verifyChain(ca, parse((await sub.issue({ subject: 'CN=x' })).chain), 5, Date.now());
    assert.equal(v.ok ? 'ok' : v.reason, 'chain_too_long');
  });

  test('a forged root with the real root name is not an anchor', async () => {
    const forged = await pki.createRoot({ subject: 'O=mtls-gate, CN=mtls-gate test Root' });
    assert.equal(forged.subject, pki.root.subject);
    const leaf = await forged.issue({ subject: 'CN=mallory' });
    const v = verifyChain(compileCaSet(pki.root.cert, 'ca'), parse(leaf.chain + forged.cert), 1, Date.now());
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.reason, 'bad_signature');
  });

  test('an intermediate without keyCertSign, a leaf EKU without clientAuth, a leaf KU without digitalSignature', async () => {
    const ca = compileCaSet(pki.root.cert, 'ca');
    const noSign = await pki.root.createCa({ subject: 'CN=no keyCertSign', keyUsage: x509.KeyUsageFlags.cRLSign });
    const a = verifyChain(ca, parse((await noSign.issue({ subject: 'CN=a' })).chain), 1, Date.now());
    assert.equal(a.ok ? 'ok' : a.reason, 'not_a_ca');
    const b = verifyChain(
      ca,
      parse((await pki.root.issue({ subject: 'CN=b', keyUsage: x509.KeyUsageFlags.keyEncipherment })).chain),
      1,
      Date.now(),
    );
    assert.equal(b.ok ? 'ok' : b.reason, 'bad_purpose');
    const c = verifyChain(
      ca,
      parse((await pki.root.issue({ subject: 'CN=c', extKeyUsage: null, keyUsage: null })).chain),
      1,
      Date.now(),
    );
    assert.equal(c.ok, true, 'no EKU and no KU = no restriction');
  });

  test('ten same-name, same-key CA certificates cost a bounded search', async () => {
    // Every certificate verifies every other: an unbounded depth-first search explodes.
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const name = 'CN=loop CA';
    const now = Date.now();
    const certs: ParsedCert[] = [];
    for (let i = 0; i < 9; i++) {
      const c = await x509.X509CertificateGenerator.create({
        serialNumber: (0x10 + i).toString(16),
        subject: name,
        issuer: name,
        notBefore: new Date(now - HOUR),
        notAfter: new Date(now + HOUR),
        signingAlgorithm: alg,
        publicKey: keys.publicKey,
        signingKey: keys.privateKey,
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      });
      certs.push(parseCert(Buffer.from(c.rawData)));
    }
    const leafKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: 'CN=leaf',
      issuer: name,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + HOUR),
      signingAlgorithm: alg,
      publicKey: leafKeys.publicKey,
      signingKey: keys.privateKey,
      extensions: [],
    });
    const ca = compileCaSet(pki.root.cert, 'ca');
    for (const depth of [1, 3, 8]) {
      const v = verifyChain(ca, [parseCert(Buffer.from(leaf.rawData)), ...certs], depth, now);
      assert.equal(v.ok ? 'ok' : v.reason, 'untrusted');
    }
  });

  test('an expired twin of a renewed CA (same name and key) does not hide the valid one', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const name = 'CN=rollover root';
    const now = Date.now();
    const root = (nb: number, na: number, serial: string) =>
      x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serial,
        name,
        notBefore: new Date(nb),
        notAfter: new Date(na),
        signingAlgorithm: alg,
        keys,
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      });
    const old = await root(now - 100 * HOUR, now - HOUR, '01');
    const renewed = await root(now - HOUR, now + 100 * HOUR, '02');
    const leafKeys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '03',
      subject: 'CN=device',
      issuer: name,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + HOUR),
      signingAlgorithm: alg,
      publicKey: leafKeys.publicKey,
      signingKey: keys.privateKey,
      extensions: [],
    });
    const ca = compileCaSet(`${old.toString('pem')}\n${renewed.toString('pem')}\n`, 'ca');
    const v = verifyChain(ca, [parseCert(Buffer.from(leaf.rawData))], 1, now);
    assert.equal(v.ok, true);
  });
});

describe('Verifier cache and identity', () => {
  test('verdicts are cached by CA set, depth and chain fingerprints', async () => {
    const verifier = new Verifier(100);
    const ca = compileCaSet(pki.root.cert, 'ca');
    const c: TestCert = await pki.client('viaIntermediate');
    const leaf = new X509Certificate(c.chain);
    // A TLS peer certificate links its chain through issuerCertificate; a parsed PEM does not, so
    // verify the leaf alone at depth 0 against the intermediate's own CA set.
    const intCa = compileCaSet(pki.intermediate.cert, 'ca');
    const v1 = verifier.verify(intCa, 0, leaf);
    assert.equal(v1.ok, true);
    assert.equal(verifier.verify(intCa, 0, leaf), v1);
    const { cachedBytes, ...counts } = verifier.stats();
    assert.deepEqual(counts, { verifications: 1, cacheHits: 1, cached: 1 });
    assert.ok(cachedBytes > 0 && cachedBytes < 4096, `one verdict weighs ${cachedBytes} bytes`);
    const v2 = verifier.verify(ca, 0, leaf);
    assert.equal(v2.ok, false);
    assert.equal(verifier.stats().verifications, 2);
  });

  test('identity fields: RFC 2253 DNs, serial, fingerprints, x5t#S256, JWK, SANs, chain', async () => {
    const verifier = new Verifier();
    const c = await pki.root.issue({
      subject: 'C=DE, O=Acme\\, Inc., CN=alice+OU=dev',
      san: { dns: ['alice.test'], email: ['alice@acme.test'], uri: ['spiffe://acme/alice'], ip: ['10.0.0.1'] },
    });
    const v = verifier.verify(compileCaSet(pki.root.cert, 'ca'), 1, new X509Certificate(c.cert));
    assert.equal(v.ok, true);
    if (!v.ok) return;
    const id = clientIdentity(v.chain);
    const der = new X509Certificate(c.cert).raw;
    assert.match(id.subject, /^(CN=alice\+OU=dev|OU=dev\+CN=alice),O=Acme\\, Inc\.,C=DE$/);
    assert.equal(id.issuer, 'CN=mtls-gate test Root,O=mtls-gate');
    assert.equal(id.fingerprint256, createHash('sha256').update(der).digest('hex'));
    assert.equal(id.fingerprint, createHash('sha1').update(der).digest('hex'));
    assert.equal(id.x5tS256, createHash('sha256').update(der).digest('base64url'));
    assert.equal(id.serialNumber, new X509Certificate(c.cert).serialNumber.toUpperCase());
    assert.equal(id.jwk?.kty, 'EC');
    assert.equal(id.jwk?.crv, 'P-256');
    assert.deepEqual(id.san, {
      dns: ['alice.test'],
      email: ['alice@acme.test'],
      ip: ['10.0.0.1'],
      uri: ['spiffe://acme/alice'],
    });
    assert.equal(id.chain.length, 1);
    assert.equal(id.chain[0]!.subject, 'CN=mtls-gate test Root,O=mtls-gate');
    assert.ok(Object.isFrozen(id));
    const rsa = await pki.client('rsa');
    const r = verifier.verify(compileCaSet(pki.root.cert, 'ca'), 1, new X509Certificate(rsa.cert));
    assert.equal(r.ok && clientIdentity(r.chain).jwk?.kty, 'RSA');
  });

  test('an identity is plain frozen data: its keys, a spread copy and JSON carry every field, reflection reaches nothing else', async () => {
    const verifier = new Verifier();
    const c = await pki.root.issue({ subject: 'O=Acme, CN=bob', san: { dns: ['bob.test'] } });
    const node = new X509Certificate(c.cert);
    const v = verifier.verify(compileCaSet(pki.root.cert, 'ca'), 1, node);
    assert.equal(v.ok, true);
    if (!v.ok) return;
    const id = clientIdentity(v.chain, 'tenant-a');
    const bare = clientIdentity(v.chain);
    const fields = [
      'subject',
      'issuer',
      'serialNumber',
      'fingerprint256',
      'fingerprint',
      'notBefore',
      'notAfter',
      'pem',
      'san',
      'x5tS256',
      'jwk',
      'chain',
    ];
    assert.deepEqual(Reflect.ownKeys(bare), fields);
    assert.deepEqual(Reflect.ownKeys(id), [...fields, 'sslId']);
    assert.equal(id.sslId, 'tenant-a');
    // The values, against node:crypto's own reading of the certificate.
    const der = node.raw;
    assert.equal(id.subject, 'CN=bob,O=Acme');
    assert.equal(id.issuer, 'CN=mtls-gate test Root,O=mtls-gate');
    assert.equal(id.serialNumber, node.serialNumber.toUpperCase());
    assert.equal(id.fingerprint256, createHash('sha256').update(der).digest('hex'));
    assert.equal(id.fingerprint, createHash('sha1').update(der).digest('hex'));
    assert.equal(id.notBefore.getTime(), Date.parse(node.validFrom));
    assert.equal(id.notAfter.getTime(), Date.parse(node.validTo));
    assert.equal(id.pem, node.toString());
    assert.deepEqual(id.jwk, node.publicKey.export({ format: 'jwk' }));
    // A spread copy is plain data with the same values.
    const copy = { ...id };
    assert.deepEqual(Reflect.ownKeys(copy), [...fields, 'sslId']);
    for (const f of [...fields, 'sslId'])
      assert.deepEqual((copy as Record<string, unknown>)[f], (id as unknown as Record<string, unknown>)[f], f);
    const json = JSON.parse(JSON.stringify(id));
    assert.equal(json.subject, 'CN=bob,O=Acme');
    assert.equal(json.fingerprint256, c.fingerprint256);
    assert.equal(json.notAfter, id.notAfter.toISOString());
    assert.deepEqual(json.san.dns, ['bob.test']);
    assert.equal(json.chain[0].subject, 'CN=mtls-gate test Root,O=mtls-gate');
    assert.match(inspect(id), /subject: 'CN=bob,O=Acme'/);
    assert.doesNotMatch(inspect(id, { showHidden: true }), /Getter/);
    // Frozen: no field can be replaced, added or removed, and nothing else hangs off it.
    assert.ok(Object.isFrozen(id));
    assert.throws(() => Object.defineProperty(id, 'subject', { value: 'CN=mallory' }), TypeError);
    assert.throws(() => ((id as unknown as Record<string, unknown>).extra = 1), TypeError);
    assert.equal(id.subject, 'CN=bob,O=Acme');
    assert.deepEqual(Object.getOwnPropertySymbols(id), []);
    // A Date stays mutable inside a frozen object: changing one read does not change the next.
    id.notAfter.setTime(0);
    assert.equal(id.notAfter.getTime(), Date.parse(node.validTo));
    bare.notBefore.setTime(0);
    assert.equal(bare.notBefore.getTime(), Date.parse(node.validFrom));
    // Fields are computed once per chain and shared, frozen, by its identities.
    assert.equal(id.san, bare.san);
    assert.equal(id.jwk, bare.jwk);
    assert.equal(id.chain, bare.chain);
    assert.ok(
      Object.isFrozen(id.san) &&
        Object.isFrozen(id.san.dns) &&
        Object.isFrozen(id.jwk) &&
        Object.isFrozen(id.chain) &&
        Object.isFrozen(id.chain[0]),
    );
    const other = clientIdentity(v.chain, 'tenant-b');
    assert.equal(other.sslId, 'tenant-b');
    assert.equal(id.sslId, 'tenant-a');
    assert.equal(other.subject, id.subject);
    // A certificate without SANs: empty (frozen) lists.
    const plain = await pki.root.issue({ subject: 'CN=nosan' });
    const w = verifier.verify(compileCaSet(pki.root.cert, 'ca'), 1, new X509Certificate(plain.cert));
    assert.ok(w.ok);
    if (w.ok) assert.deepEqual(clientIdentity(w.chain, 'x').san, { dns: [], email: [], ip: [], uri: [] });
  });

  test('rfc2253 reverses RDN order and joins multi-valued RDNs with +', () => {
    assert.equal(rfc2253('C=US\nO=Example\nCN=a'), 'CN=a,O=Example,C=US');
    assert.equal(rfc2253('OU=web'), 'OU=web');
    assert.equal(rfc2253('O=x\nCN=a + UID=1'), 'CN=a+UID=1,O=x');
    assert.equal(rfc2253(''), '');
  });
});

describe('CA bundles', () => {
  test('a bundle of several CAs: every one anchors', async () => {
    const ca = compileCaSet(pki.root.cert + pki.otherRoot.cert, 'client.ca');
    assert.equal(ca.anchors.length, 2);
    for (const c of [await pki.client('valid'), await pki.client('otherCa')]) {
      assert.equal(verifyChain(ca, parse(c.chain), 1, Date.now()).ok, true);
    }
  });
  test('bad bundles are refused with the field named', async () => {
    const leaf = await pki.client('valid');
    assert.throws(() => compileCaSet(leaf.cert, 'client.ca'), { code: 'ERR_MTLS_CA_INVALID', field: 'client.ca[0]' });
    assert.throws(() => compileCaSet(pki.root.cert + leaf.cert, 'client.ca'), {
      code: 'ERR_MTLS_CA_INVALID',
      field: 'client.ca[1]',
    });
    assert.throws(() => compileCaSet('not pem', 'client.ca'), { code: 'ERR_MTLS_PEM_INVALID', field: 'client.ca' });
    assert.throws(() => compileCaSet('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'client.ca'), {
      code: 'ERR_MTLS_PEM_INVALID',
      field: 'client.ca[0]',
    });
    assert.throws(() => compileCaSet(42, 'client.ca'), { code: 'ERR_MTLS_INVALID_OPTION', field: 'client.ca' });
  });
});
