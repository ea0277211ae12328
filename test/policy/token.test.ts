// RFC 8705 certificate-bound tokens with JWTs signed in the test (jose): a token bound to the
// connection's certificate passes, one bound to another certificate or unbound under `required`
// gets 401 invalid_token with the RFC 6750 challenge; optional admits unbound tokens.

import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { type CryptoKey, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import {
  certificateBoundToken,
  checkCertificateBinding,
  createSslStore,
  getClientIdentity,
  type HttpRequest,
  mtlsGuard,
} from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
let alice: TestCert;
let bob: TestCert;
let keys: { publicKey: CryptoKey; privateKey: CryptoKey };
let server: https.Server;
let port: number;

const x5t = (c: TestCert) => Buffer.from(c.fingerprint256, 'hex').toString('base64url');
const token = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('5m').sign(keys.privateKey);

before(async () => {
  pki = await createTestPki({ serverNames: ['api.test'] });
  alice = await pki.client('valid');
  bob = await pki.client('valid');
  keys = await generateKeyPair('ES256');
  const store = createSslStore();
  store.set({
    id: 'api',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['api.test'],
    client: { ca: pki.root.cert },
  });
  const guard = mtlsGuard({ store });
  const verified = async (req: HttpRequest) => {
    const auth = req.headers.authorization;
    if (!auth?.startsWith('Bearer ')) return undefined;
    return (await jwtVerify(auth.slice(7), keys.publicKey)).payload;
  };
  const strict = certificateBoundToken({ claims: verified, identity: getClientIdentity, realm: 'api' });
  const optional = certificateBoundToken({ claims: verified, identity: getClientIdentity, required: false });
  server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) =>
      guard(req, res, () => (req.url === '/optional' ? optional : strict)(req, res, () => res.end('ok'))),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const ask = (client: TestCert, jwt: string | undefined, path = '/') =>
  testRequest({ port, servername: 'api.test', client, path, headers: jwt ? { authorization: `Bearer ${jwt}` } : {} });

test("a token bound to the connection certificate passes; another certificate's token gets 401 invalid_token", async () => {
  assert.equal((await ask(alice, await token({ sub: 'alice', cnf: { 'x5t#S256': x5t(alice) } }))).status, 200);
  const r = await ask(alice, await token({ sub: 'bob', cnf: { 'x5t#S256': x5t(bob) } }));
  assert.equal(r.status, 401);
  assert.equal(
    r.headers['www-authenticate'],
    'Bearer realm="api", error="invalid_token", error_description="the token is bound to another certificate"',
  );
});

test('no cnf: refused under required, admitted under optional; no token: 401 without an error code', async () => {
  const unbound = await token({ sub: 'alice' });
  assert.equal((await ask(alice, unbound)).status, 401);
  assert.equal((await ask(alice, unbound, '/optional')).status, 200);
  // Optional still checks a token that carries a thumbprint.
  assert.equal((await ask(alice, await token({ cnf: { 'x5t#S256': x5t(bob) } }), '/optional')).status, 401);
  const none = await ask(alice, undefined);
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer realm="api"');
  // A forged token (bad signature) is the application's verifier's call: it throws, 401.
  assert.equal(
    (await ask(alice, `${(await token({ cnf: { 'x5t#S256': x5t(alice) } })).slice(0, -4)}AAAA`)).status,
    401,
  );
});

test('checkCertificateBinding: shapes that must not pass', () => {
  assert.equal(checkCertificateBinding({ cnf: { 'x5t#S256': 'x' } }, null).ok, false);
  assert.equal(checkCertificateBinding({ cnf: { 'x5t#S256': 42 } }, null, { required: false }).ok, false);
  assert.equal(
    checkCertificateBinding(JSON.parse('{"__proto__": {"cnf": {"x5t#S256": "x"}}}'), null, { required: false }).ok,
    true,
    'an inherited cnf is no cnf',
  );
  assert.deepEqual(checkCertificateBinding(null, null, { required: false }), { ok: true, bound: false });
});
