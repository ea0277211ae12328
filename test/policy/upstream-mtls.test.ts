// Upstream mTLS: the gateway presents its own client certificate (upstream.tls.cert / key) to an
// upstream that requires one, verifying the upstream by tls.ca and tls.servername; without it the
// upstream refuses the handshake and the client gets 502.

import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { createRouter, createSslStore, MtlsGateConfigError, mtlsGuard, type ServiceConfig } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let front: TestPki;
let back: TestPki;
let gatewayCert: TestCert;
let backend: https.Server;
let gw: https.Server;
let port: number;
let router: ReturnType<typeof createRouter>;

before(async () => {
  front = await createTestPki({ serverNames: ['app.test'], name: 'front' });
  back = await createTestPki({ serverNames: ['backend.test'], name: 'back' });
  gatewayCert = await back.root.issue({ subject: 'CN=mtls-gate gateway' });
  // An upstream that requires a client certificate of its own CA.
  backend = https.createServer(
    { cert: back.server.chain, key: back.server.key, ca: back.root.cert, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      res.end((req.socket as TLSSocket).getPeerX509Certificate()?.subject ?? 'none');
    },
  );
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const node = { host: '127.0.0.1', port: (backend.address() as AddressInfo).port };
  const services: ServiceConfig[] = [
    {
      name: 'with',
      pathPrefix: '/with',
      upstream: {
        nodes: [node],
        scheme: 'https',
        tls: { ca: back.root.cert, servername: 'backend.test', cert: gatewayCert.cert, key: gatewayCert.key },
      },
      routes: [{ name: 'r', path: '/', pathType: 'prefix' }],
    },
    {
      name: 'without',
      pathPrefix: '/without',
      upstream: { nodes: [node], scheme: 'https', tls: { ca: back.root.cert, servername: 'backend.test' } },
      routes: [{ name: 'r', path: '/', pathType: 'prefix' }],
    },
    {
      name: 'wrongname',
      pathPrefix: '/wrongname',
      upstream: {
        nodes: [node],
        scheme: 'https',
        tls: { ca: back.root.cert, servername: 'other.test', cert: gatewayCert.cert, key: gatewayCert.key },
      },
      routes: [{ name: 'r', path: '/', pathType: 'prefix' }],
    },
  ];
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: front.server.chain,
    key: front.server.key,
    snis: ['app.test'],
    client: { ca: front.root.cert },
  });
  router = createRouter({ services, onProxyError: (i) => process.env.DEBUG_PROXY && console.error(i) });
  const guard = mtlsGuard({ store });
  gw = store.attach(https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => router(req, res))));
  await new Promise<void>((r) => gw.listen(0, '127.0.0.1', () => r()));
  port = (gw.address() as AddressInfo).port;
});
after(async () => {
  await new Promise<void>((r) => gw.close(() => r()));
  await router.close();
  await new Promise<void>((r) => backend.close(() => r()));
});

test('the gateway presents its certificate to an mTLS upstream; without one the upstream refuses (502)', async () => {
  const client = await front.client('valid');
  const ok = await testRequest({ port, servername: 'app.test', path: '/with/x', client });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /CN=mtls-gate gateway/);
  assert.equal((await testRequest({ port, servername: 'app.test', path: '/without/x', client })).status, 502);
  assert.equal(
    (await testRequest({ port, servername: 'app.test', path: '/wrongname/x', client })).status,
    502,
    'the upstream is verified under tls.servername',
  );
});

test('upstream tls settings are checked with the field named', async () => {
  const other = await back.root.issue({ subject: 'CN=other' });
  const bad: [unknown, RegExp][] = [
    [
      { nodes: [{ host: '127.0.0.1', port: 1 }], scheme: 'https', tls: { cert: gatewayCert.cert } },
      /services\[0\]\.upstream\.tls/,
    ],
    [
      { nodes: [{ host: '127.0.0.1', port: 1 }], scheme: 'https', tls: { cert: gatewayCert.cert, key: other.key } },
      /services\[0\]\.upstream\.tls\.key/,
    ],
    [
      {
        nodes: [{ host: '127.0.0.1', port: 1 }],
        scheme: 'http',
        tls: { cert: gatewayCert.cert, key: gatewayCert.key },
      },
      /services\[0\]\.upstream\.tls/,
    ],
  ];
  for (const [upstream, field] of bad) {
    assert.throws(
      () =>
        createRouter({ services: [{ name: 's', upstream: upstream as never, routes: [{ name: 'r', path: '/' }] }] }),
      (e: unknown) =>
        e instanceof MtlsGateConfigError && (field.test(e.field ?? '') || e.issues.some((i) => field.test(i.field))),
    );
  }
});
