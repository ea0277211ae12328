// The client identity's JWK: the DER reader against node:crypto's export (same members, same order)
// on every key type a client certificate can carry, and null where JWK has no form for the key.
// Certificates and keys are made by openssl, so the encodings are OpenSSL's own.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestPki } from '../../src/testing/index.js';
import { compileCaSet } from '../../src/verify/ca-set.js';
import { clientIdentity } from '../../src/verify/identity.js';
import { certificateJwk } from '../../src/verify/jwk.js';
import { Verifier } from '../../src/verify/verifier.js';
import { createSslStore, request1, startGuarded } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-jwk-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });

/** A self-signed certificate for a key made by `genpkey` with these options. */
function certFor(name: string, genpkey: string[], extra: (key: string) => void = () => {}): X509Certificate {
  const key = join(dir, `${name}.key`);
  openssl('genpkey', ...genpkey, '-out', key);
  extra(key);
  const crt = join(dir, `${name}.crt`);
  openssl('req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '2', '-out', crt);
  return new X509Certificate(readFileSync(crt));
}

const nodeJwk = (c: X509Certificate) => {
  try {
    return c.publicKey.export({ format: 'jwk' });
  } catch {
    return null;
  }
};

const cases: [string, string[], ((key: string) => void)?][] = [
  ['p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
  ['p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']],
  ['p521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']],
  ['secp256k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1']],
  // A compressed point and explicit curve parameters: node:crypto's path.
  [
    'p256-compressed',
    ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    (key) => {
      openssl('pkey', '-in', key, '-ec_conv_form', 'compressed', '-out', `${key}.c`);
      renameSync(`${key}.c`, key);
    },
  ],
  ['p256-explicit', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:explicit']],
  ['rsa1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']],
  ['rsa2048-e3', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3']],
  ['rsa3072', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072']],
  ['rsa2047', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2047']],
  ['ed25519', ['-algorithm', 'ED25519']],
  ['ed448', ['-algorithm', 'ED448']],
  ['rsa-pss', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048']],
];

test('the DER reader gives node:crypto’s JWK, member order included, for every key type', () => {
  for (const [name, genpkey, extra] of cases) {
    const c = certFor(name, genpkey, extra);
    if (name === 'p256-compressed')
      assert.equal(c.raw.includes(Buffer.from([0x03, 0x42, 0x00, 0x04])), false, 'the point is compressed');
    const expected = nodeJwk(c);
    let asked = false;
    const got = certificateJwk(c.raw, () => ((asked = true), c.publicKey));
    assert.equal(JSON.stringify(got), JSON.stringify(expected), name);
    if (
      ['p256', 'p384', 'p521', 'secp256k1', 'rsa1024', 'rsa2048-e3', 'rsa3072', 'rsa2047', 'ed25519', 'ed448'].includes(
        name,
      )
    ) {
      assert.equal(asked, false, `${name}: read from the DER, node:crypto not needed`);
      assert.notEqual(got, null, name);
    }
  }
});

test('keys JWK cannot express give jwk null, and the client is still verified', async () => {
  // An RSA-PSS and a DSA client certificate signed by an EC CA: valid chains whose keys node:crypto
  // cannot export as JWK. The verifier must accept them (jwk: null), not fail on the export.
  const caKey = join(dir, 'ca.key');
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', caKey);
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/CN=jwk test CA',
    '-days',
    '2',
    '-out',
    'ca.crt',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  );
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const verifier = new Verifier();
  const caSet = compileCaSet(ca, 'ca');
  for (const [name, genpkey] of [
    ['pss-client', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ['dsa-client', ['-paramfile', 'dsa.params']],
    ['ec-client', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
  ] as const) {
    if (name === 'dsa-client')
      openssl('genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', 'dsa.params');
    openssl('genpkey', ...genpkey, '-out', `${name}.key`);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      caKey,
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.crt`,
    );
    const leaf = new X509Certificate(readFileSync(join(dir, `${name}.crt`)));
    const v = verifier.verify(caSet, 1, leaf);
    assert.equal(v.ok, true, `${name}: ${!v.ok && v.detail}`);
    if (!v.ok) continue;
    const id = clientIdentity(v.chain);
    assert.equal(id.subject, `CN=${name}`);
    if (name === 'ec-client') assert.deepEqual(id.jwk, leaf.publicKey.export({ format: 'jwk' }));
    else assert.equal(id.jwk, null, name);
  }

  // And through the guard over TLS 1.3: an RSA-PSS client certificate gets its 200.
  const pki = await createTestPki({ serverNames: ['pss.test'] });
  const store = createSslStore();
  store.set({ id: 'pss', cert: pki.server.chain, key: pki.server.key, snis: ['pss.test'], client: { ca } });
  const server = await startGuarded(store);
  try {
    const client = {
      cert: readFileSync(join(dir, 'pss-client.crt'), 'utf8'),
      key: readFileSync(join(dir, 'pss-client.key'), 'utf8'),
    };
    const r = await request1({ port: server.port, servername: 'pss.test', path: '/', client });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ subject: string }>().subject, 'CN=pss-client');
  } finally {
    await server.close();
  }
});

// Hand-built certificates around one SubjectPublicKeyInfo each: the reader only parses, so no
// signature is needed. Whatever node:crypto makes of the key (a JWK, or an error: null) is what the
// identity must show.
const len = (n: number) => (n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]);
const tlvOf = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag, ...len(body.length)]), body]);
const seq = (...xs: Buffer[]) => tlvOf(0x30, Buffer.concat(xs));
const int = (hex: string) => tlvOf(0x02, Buffer.from(hex, 'hex'));
const bits = (b: Buffer) => tlvOf(0x03, Buffer.concat([Buffer.from([0]), b]));
const NULL = tlvOf(0x05, Buffer.alloc(0));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const arc of rest) {
    const bytes = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) bytes.unshift((v & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlvOf(0x06, Buffer.from(out));
}
function certAround(spki: Buffer): Buffer {
  const name = seq(tlvOf(0x31, seq(oid('2.5.4.3'), tlvOf(0x0c, Buffer.from('jwk')))));
  const time = tlvOf(0x17, Buffer.from('260101000000Z'));
  const alg = seq(oid('1.2.840.10045.4.3.2'));
  return seq(
    seq(tlvOf(0xa0, int('02')), int('01'), alg, name, seq(time, time), name, spki),
    alg,
    bits(Buffer.alloc(8)),
  );
}
const EC = (curve: string, point: Buffer) => seq(seq(oid('1.2.840.10045.2.1'), oid(curve)), bits(point));
const P256 = '1.2.840.10045.3.1.7';

test('hand-built keys: the reader gives node:crypto’s answer, malformed keys give null', async () => {
  const { createPublicKey, generateKeyPairSync } = await import('node:crypto');
  // A valid P-256 key whose x coordinate starts with a zero byte (1 in 256 keys).
  let zeroX: Buffer | undefined;
  for (let i = 0; i < 20_000 && !zeroX; i++) {
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    if (spki[spki.length - 64] === 0) zeroX = spki;
  }
  assert.ok(zeroX, 'no key with a leading zero in x');
  const point = zeroX.subarray(zeroX.length - 65);
  const offCurve = Buffer.from(point);
  offCurve[64]! ^= 1;
  const p256 = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex');
  const rsaN = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }).n!;
  const nHex = Buffer.from(rsaN, 'base64url').toString('hex');
  const rsa = (n: string, e: string) => seq(seq(oid('1.2.840.113549.1.1.1'), NULL), bits(seq(int(n), int(e))));
  const okp = (curve: string, key: Buffer, params: Buffer[] = []) => seq(seq(oid(curve), ...params), bits(key));

  const cases: [string, Buffer, boolean][] = [
    // [label, SubjectPublicKeyInfo, read by the DER reader (node:crypto not asked)]
    ['P-256, x with a leading zero byte', zeroX, true],
    ['P-256 point off the curve', EC(P256, offCurve), false],
    ['P-256 x = p', EC(P256, Buffer.concat([Buffer.from([4]), p256, point.subarray(33)])), false],
    ['P-256 all-zero point', EC(P256, Buffer.concat([Buffer.from([4]), Buffer.alloc(64)])), false],
    ['P-256 point one byte short', EC(P256, point.subarray(0, 64)), false],
    ['P-384 curve, P-256-sized point', EC('1.3.132.0.34', point), false],
    ['RSA, n with a leading 00 (minimal DER)', rsa(`00${nHex}`, '010001'), true],
    ['RSA, n with extra leading zeros (OpenSSL reads them too)', rsa(`0000${nHex}`, '010001'), true],
    ['RSA, n = 0', rsa('00', '010001'), false],
    ['RSA, e = 0', rsa(`00${nHex}`, '00'), false],
    ['RSA, negative n', rsa(`80${nHex}`, '010001'), false],
    ['Ed25519, 32 bytes', okp('1.3.101.112', Buffer.alloc(32, 7)), true],
    ['Ed25519, 33 bytes', okp('1.3.101.112', Buffer.alloc(33, 7)), false],
    ['Ed25519, 1 byte', okp('1.3.101.112', Buffer.alloc(1, 7)), false],
    ['Ed25519 with NULL parameters', okp('1.3.101.112', Buffer.alloc(32, 7), [NULL]), false],
    ['Ed448, 32 bytes', okp('1.3.101.113', Buffer.alloc(32, 7)), false],
  ];
  for (const [label, spki, fast] of cases) {
    let expected: unknown = null;
    try {
      expected = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
    } catch {
      // node:crypto cannot read or export this key: null
    }
    let asked = false;
    const got = certificateJwk(certAround(spki), () => {
      asked = true;
      return createPublicKey({ key: spki, format: 'der', type: 'spki' });
    });
    assert.equal(JSON.stringify(got), JSON.stringify(expected), label);
    if (fast) assert.equal(asked, false, `${label}: read from the DER`);
    else if (got !== null) assert.equal(asked, true, `${label}: left to node:crypto`);
  }
});

test('a client CA whose public key cannot be decoded is refused when configured (PEM_INVALID), not at the first client', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const { ErrorCodes } = await import('../../src/errors.js');
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const point = Buffer.from(spki.subarray(spki.length - 65));
  point[64]! ^= 1; // off the curve
  const der = certAround(EC(P256, point));
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
  assert.throws(
    () => compileCaSet(pem, 'client.ca'),
    (e: Error & { code?: string; field?: string }) => e.code === ErrorCodes.PEM_INVALID && e.field === 'client.ca[0]',
  );
});
