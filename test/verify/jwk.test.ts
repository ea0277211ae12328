// The client identity's JWK: the DER reader against node:crypto's export (same members, same order)
// on every key type a client certificate can carry, and null where JWK has no form for the key.
// Certificates and keys are made by openssl, so the encodings are OpenSSL's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateJwk } from '../../src/verify/jwk.js';
import { compileCaSet } from '../../src/verify/ca-set.js';
import { Verifier } from '../../src/verify/verifier.js';
import { createTestPki } from '../../src/testing/index.js';
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
  ['p256-compressed', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], (key) => {
      openssl('pkey', '-in', key, '-ec_conv_form', 'compressed', '-out', `${key}.c`);
      renameSync(`${key}.c`, key);
    }],
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
    if (name === 'p256-compressed') assert.equal(c.raw.includes(Buffer.from([0x03, 0x42, 0x00, 0x04])), false, 'the point is compressed');
    const expected = nodeJwk(c);
    let asked = false;
    const got = certificateJwk(c.raw, () => ((asked = true), c.publicKey));
    assert.equal(JSON.stringify(got), JSON.stringify(expected), name);
    if (['p256', 'p384', 'p521', 'secp256k1', 'rsa1024', 'rsa2048-e3', 'rsa3072', 'rsa2047', 'ed25519', 'ed448'].includes(name)) {
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
  openssl('req', '-x509', '-new', '-key', caKey, '-subj', '/CN=jwk test CA', '-days', '2', '-out', 'ca.crt', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  const verifier = new Verifier();
  const caSet = compileCaSet(ca, 'ca');
  for (const [name, genpkey] of [
    ['pss-client', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ['dsa-client', ['-paramfile', 'dsa.params']],
    ['ec-client', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
  ] as const) {
    if (name === 'dsa-client') openssl('genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:2048', '-out', 'dsa.params');
    openssl('genpkey', ...genpkey, '-out', `${name}.key`);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`);
    const leaf = new X509Certificate(readFileSync(join(dir, `${name}.crt`)));
    const v = verifier.verify(caSet, 1, leaf);
    assert.equal(v.ok, true, `${name}: ${!v.ok && v.detail}`);
    if (!v.ok) continue;
    assert.equal(v.identity.subject, `CN=${name}`);
    if (name === 'ec-client') assert.deepEqual(v.identity.jwk, leaf.publicKey.export({ format: 'jwk' }));
    else assert.equal(v.identity.jwk, null, name);
  }

  // And through the guard over TLS 1.3: an RSA-PSS client certificate gets its 200.
  const pki = await createTestPki({ serverNames: ['pss.test'] });
  const store = createSslStore();
  store.set({ id: 'pss', cert: pki.server.chain, key: pki.server.key, snis: ['pss.test'], client: { ca } });
  const server = await startGuarded(store);
  try {
    const client = { cert: readFileSync(join(dir, 'pss-client.crt'), 'utf8'), key: readFileSync(join(dir, 'pss-client.key'), 'utf8') };
    const r = await request1({ port: server.port, servername: 'pss.test', path: '/', client });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ subject: string }>().subject, 'CN=pss-client');
  } finally {
    await server.close();
  }
});
