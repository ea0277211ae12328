// Identity to the upstream: an echo upstream shows the exact X-Forwarded-Client-Cert of each mode
// and field set, and Client-Cert / Client-Cert-Chain (RFC 9440) parsed back with a structured-field
// parser; spoofed inbound values never arrive; a 3-level RSA chain stays under Node's 16 KiB limit.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { parseItem, parseList } from 'structured-headers';
import { createRouter, createSslStore, mtlsGuard, type ServiceConfig } from '../../src/index.js';
import { createTestPki, type TestCa, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
let echo: http.Server;
let upstream: string;
let server: TestCert;
let leaf: TestCert;
let viaInt: TestCert;
let gw: { port: number; close(): Promise<void> };

before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  echo = http.createServer((req, res) => res.end(JSON.stringify(req.headers)));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  upstream = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  server = await pki.root.issue({
    subject: 'CN=app.test',
    san: { dns: ['app.test'], uri: ['spiffe://gw.example/gate'] },
    extKeyUsage: ['1.3.6.1.5.5.7.3.1'],
  });
  leaf = await pki.root.issue({
    subject: 'O=Example, CN=svc',
    san: { uri: ['spiffe://prod.example/ns/web'], dns: ['svc.example', 'alt.example'] },
  });
  viaInt = await pki.intermediate.issue({ subject: 'CN=device' });
  const mode = (
    name: string,
    forwardClientCert: ServiceConfig['forwardClientCert'],
    routes: ServiceConfig['routes'] = [{ name: 'all', path: '/', pathType: 'prefix' }],
  ): ServiceConfig => ({ name, pathPrefix: `/${name}`, upstream, forwardClientCert, routes });
  const services = [
    mode('sanitize', {}),
    mode('set', { xfcc: 'sanitize-set', details: ['subject', 'uri', 'dns'] }),
    mode('setcert', { xfcc: 'sanitize-set', details: ['cert', 'chain'] }),
    mode('fwd', { xfcc: 'forward-only' }, [{ name: 'all', path: '/', pathType: 'prefix', mtls: { mode: 'optional' } }]),
    mode('append', { xfcc: 'append-forward', details: ['uri'] }),
    mode('always', { xfcc: 'always-forward-only' }, [
      { name: 'all', path: '/', pathType: 'prefix', mtls: { mode: 'optional' } },
    ]),
    mode('rfc', { rfc9440: true }),
    mode('full', { xfcc: 'sanitize-set', details: ['subject', 'uri', 'dns', 'cert', 'chain'], rfc9440: true }),
  ];
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: server.chain,
    key: server.key,
    snis: ['app.test'],
    client: { ca: pki.root.cert, depth: 2 },
  });
  const router = createRouter({ services });
  const guard = mtlsGuard({ store, policies: router });
  const srv = store.attach(
    http2.createSecureServer({ ...store.tlsOptions(), allowHTTP1: true }, (req, res) =>
      guard(req, res, () => router(req, res)),
    ),
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  gw = {
    port: (srv.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((r) => srv.close(() => r()));
      await router.close();
    },
  };
});
after(async () => {
  await gw?.close();
  echo?.close();
});

const SPOOF = {
  'x-forwarded-client-cert': 'By=spiffe://evil;Hash=00',
  'client-cert': ':AAAA:',
  'client-cert-chain': ':AAAA:',
  'x-ssl-client-s-dn': 'CN=admin',
};
async function seen(
  path: string,
  client: TestCert | undefined,
  protocol: 'http1' | 'h2' = 'http1',
  headers: Record<string, string> = SPOOF,
) {
  const r = await testRequest({
    port: gw.port,
    protocol,
    servername: 'app.test',
    path,
    headers,
    ...(client ? { client } : {}),
  });
  assert.equal(r.status, 200, r.body);
  return r.json<Record<string, string | undefined>>();
}
const fp = (c: TestCert) => c.fingerprint256;
const der = (pem: string) => new X509Certificate(pem).raw;

test('sanitize (the default) strips every inbound identity header and adds none', async () => {
  for (const protocol of ['http1', 'h2'] as const) {
    const h = await seen('/sanitize/x', leaf, protocol);
    for (const name of Object.keys(SPOOF)) assert.equal(h[name], undefined, `${protocol} ${name}`);
  }
});

test('sanitize-set: By, Hash, Subject, URI, DNS exactly as Envoy writes them; Cert and Chain URL-encoded PEM', async () => {
  const h = await seen('/set/x', leaf);
  assert.equal(
    h['x-forwarded-client-cert'],
    `By=spiffe://gw.example/gate;Hash=${fp(leaf)};Subject="CN=svc,O=Example";URI=spiffe://prod.example/ns/web;DNS=svc.example;DNS=alt.example`,
  );
  const noSan = await seen('/set/x', viaInt);
  assert.equal(
    noSan['x-forwarded-client-cert'],
    `By=spiffe://gw.example/gate;Hash=${fp(viaInt)};Subject="CN=device";URI=`,
    'Subject and URI are present even when empty',
  );
  const c = await seen('/setcert/x', viaInt);
  assert.equal(
    c['x-forwarded-client-cert'],
    `By=spiffe://gw.example/gate;Hash=${fp(viaInt)};Cert="${encodeURIComponent(viaInt.cert)}";Chain="${encodeURIComponent(viaInt.cert + pki.intermediate.cert)}"`,
  );
  assert.equal(c['x-forwarded-client-cert']!.includes('%0A'), true);
});

test('forward-only keeps an inbound XFCC on mTLS connections only; append-forward appends; always-forward-only keeps it always', async () => {
  assert.equal((await seen('/fwd/x', leaf))['x-forwarded-client-cert'], SPOOF['x-forwarded-client-cert']);
  assert.equal((await seen('/fwd/x', undefined))['x-forwarded-client-cert'], undefined);
  assert.equal(
    (await seen('/append/x', leaf))['x-forwarded-client-cert'],
    `${SPOOF['x-forwarded-client-cert']},By=spiffe://gw.example/gate;Hash=${fp(leaf)};URI=spiffe://prod.example/ns/web`,
  );
  assert.equal(
    (await seen('/append/x', leaf, 'http1', {}))['x-forwarded-client-cert'],
    `By=spiffe://gw.example/gate;Hash=${fp(leaf)};URI=spiffe://prod.example/ns/web`,
  );
  assert.equal((await seen('/always/x', undefined))['x-forwarded-client-cert'], SPOOF['x-forwarded-client-cert']);
  // RFC 9440 headers are never taken from the client, whatever the XFCC mode.
  assert.equal((await seen('/always/x', leaf))['client-cert'], undefined);
});

test('RFC 9440: Client-Cert is the leaf, Client-Cert-Chain the intermediates (left out without any), parsed as structured fields', async () => {
  for (const protocol of ['http1', 'h2'] as const) {
    const direct = await seen('/rfc/x', leaf, protocol);
    const [item] = parseItem(direct['client-cert']!);
    assert.deepEqual(Buffer.from(item as ArrayBuffer), der(leaf.cert));
    assert.equal(direct['client-cert-chain'], undefined);
    const chained = await seen('/rfc/x', viaInt, protocol);
    const list = parseList(chained['client-cert-chain']!);
    assert.equal(list.length, 1);
    assert.deepEqual(Buffer.from(list[0]![0] as ArrayBuffer), der(pki.intermediate.cert));
  }
});

test('a 3-level RSA chain with every field and RFC 9440 stays under 16 KiB of request headers', async () => {
  const root: TestCa = pki.root;
  const rsaInt = await root.createCa({ subject: 'CN=RSA Intermediate', keyType: 'rsa' });
  const rsaLeaf = await rsaInt.issue({
    subject: 'CN=rsa-device',
    keyType: 'rsa',
    san: { uri: ['spiffe://prod.example/rsa'] },
  });
  const h = await seen('/full/x', rsaLeaf);
  const size = Object.entries(h).reduce((n, [k, v]) => n + k.length + String(v).length + 4, 0);
  assert.ok(size < 16 * 1024, `${size} bytes`);
  assert.ok(h['x-forwarded-client-cert']!.includes('Chain="'));
  assert.ok(h['client-cert-chain']);
});
