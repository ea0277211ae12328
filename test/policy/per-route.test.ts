// Per-route mTLS policy through the guard and the router, over HTTP/1.1 and HTTP/2: the three-route
// layout of apisix#10647 on one SNI (/public off, /private required, /superprivate another CA),
// SAN allow-lists matched on the DER (wildcard DNS, IPv6, a UPN otherName, SPIFFE with one URI SAN),
// certificate and public-key pins, optional, and a guard with its own policy list (Express-style).

import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createRouter,
  createSslStore,
  getClientIdentity,
  MtlsGateConfigError,
  mtlsGuard,
  type RejectInfo,
  type ServiceConfig,
} from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';
import { type OpensslCa, opensslCa } from '../verify/openssl-ca.js';

let pki: TestPki;
let ossl: OpensslCa;
let echo: http.Server;
let upstream: string;
const certs: Record<string, TestCert | { cert: string; key: string }> = {};

before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  echo = http.createServer((req, res) => res.end(JSON.stringify({ path: req.url, headers: req.headers })));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  upstream = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  certs.ca1 = await pki.client('valid');
  certs.ca2 = await pki.otherRoot.issue({ subject: 'CN=partner' });
  certs.spiffe = await pki.root.issue({ subject: 'CN=svc', san: { uri: ['spiffe://prod.example/ns/web'] } });
  certs.spiffeTwo = await pki.root.issue({
    subject: 'CN=svc2',
    san: { uri: ['spiffe://prod.example/ns/web', 'spiffe://other.example/x'] },
  });
  certs.wildcard = await pki.root.issue({ subject: 'CN=dev', san: { dns: ['*.devices.example'] } });
  certs.ipv6 = await pki.root.issue({ subject: 'CN=ip', san: { ip: ['2001:db8:0:0:0:0:0:1'] } });
  certs.ops = await pki.root.issue({ subject: 'O=Example, CN=ops' });
  // A UPN otherName, made by openssl (the in-process minting has no otherName).
  ossl = opensslCa(mkdtempSync(join(tmpdir(), 'mtls-gate-policy-')));
  ossl.ca(
    'upnca',
    [
      '[upn]',
      'basicConstraints = CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = clientAuth',
      'subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@corp.example',
    ].join('\n'),
  );
  ossl.issue('upnca', 'alice', 'upn');
  certs.upn = { cert: ossl.read('alice.pem'), key: ossl.read('alice.key') };
});
after(() => {
  echo?.close();
  if (ossl) rmSync(ossl.dir, { recursive: true, force: true });
});

const fp = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
const spki = (pem: string) =>
  createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

function services(): ServiceConfig[] {
  return [
    {
      name: 'app',
      hosts: ['app.test'],
      upstream,
      routes: [
        { name: 'public', path: '/public', mtls: { mode: 'off' } },
        { name: 'private', path: '/private' },
        { name: 'superprivate', path: '/superprivate', mtls: { ca: pki.otherRoot.cert } },
        { name: 'optional', path: '/optional', mtls: { mode: 'optional' } },
        {
          name: 'spiffe',
          path: '/spiffe',
          mtls: { allow: { san: [{ type: 'uri', prefix: 'spiffe://prod.example/' }] } },
        },
        {
          name: 'devices',
          path: '/devices',
          mtls: { allow: { san: [{ type: 'dns', exact: 'api.devices.example' }] } },
        },
        { name: 'ipv6', path: '/ipv6', mtls: { allow: { san: [{ type: 'ip', exact: '2001:DB8::1' }] } } },
        {
          name: 'upn',
          path: '/upn',
          mtls: { allow: { san: [{ type: 'otherName', oid: '1.3.6.1.4.1.311.20.2.3', exact: 'alice@corp.example' }] } },
        },
        {
          name: 'pins',
          path: '/pins',
          mtls: { allow: { fingerprint256: [fp(certs.ca1!.cert)], spki256: [spki(certs.ops!.cert)] }, status: 401 },
        },
        { name: 'subject', path: '/subject', mtls: { allow: { subject: ['CN=ops,O=Example'] } } },
      ],
    },
  ];
}

async function gate() {
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['app.test'],
    client: { ca: [pki.root.cert, pki.otherRoot.cert, ossl.read('upnca/cert.pem')], depth: 1 },
  });
  const router = createRouter({ services: services() });
  const rejects: RejectInfo[] = [];
  const guard = mtlsGuard({ store, policies: router, onReject: (i) => rejects.push(i) });
  const server = store.attach(
    http2.createSecureServer({ ...store.tlsOptions(), allowHTTP1: true }, (req, res) =>
      guard(req, res, () => router(req, res)),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    rejects,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await router.close();
    },
  };
}

for (const protocol of ['http1', 'h2'] as const) {
  describe(`per-route policy over ${protocol}`, () => {
    let g: Awaited<ReturnType<typeof gate>>;
    before(async () => (g = await gate()));
    after(() => g.close());
    const ask = (path: string, who?: string) =>
      testRequest({ port: g.port, protocol, servername: 'app.test', path, ...(who ? { client: certs[who]! } : {}) });

    test('the three routes of apisix#10647 on one SNI', async () => {
      assert.equal((await ask('/public')).status, 200);
      assert.equal((await ask('/public', 'ca1')).status, 200);
      assert.equal((await ask('/private', 'ca1')).status, 200);
      assert.equal((await ask('/private')).status, 400);
      assert.equal(g.rejects.at(-1)?.reason, 'missing');
      assert.equal((await ask('/superprivate', 'ca2')).status, 200);
      assert.equal(
        (await ask('/superprivate', 'ca1')).status,
        400,
        'a client of a CA the route does not list: 400, as untrusted',
      );
      assert.equal(g.rejects.at(-1)?.reason, 'untrusted');
      assert.equal((await ask('/superprivate')).status, 400);
    });

    test('off forwards no identity; optional: without a certificate passes, a bad one is refused', async () => {
      const pub = (await ask('/public', 'ca1')).json<{ headers: Record<string, string> }>();
      assert.equal(pub.headers['x-forwarded-client-cert'], undefined);
      assert.equal((await ask('/optional')).status, 200);
      assert.equal((await ask('/optional', 'ca1')).status, 200);
      const other = await createTestPki({ name: 'stranger' });
      const r = await testRequest({
        port: g.port,
        protocol,
        servername: 'app.test',
        path: '/optional',
        client: await other.client('valid'),
      });
      assert.equal(r.status, 400);
      assert.equal(g.rejects.at(-1)?.reason, 'untrusted');
    });

    test('SAN allow-lists on the DER values: SPIFFE (one URI SAN), a wildcard DNS SAN, IPv6, a UPN otherName', async () => {
      assert.equal((await ask('/spiffe', 'spiffe')).status, 200);
      assert.equal((await ask('/spiffe', 'spiffeTwo')).status, 403, 'two URI SANs are not a SPIFFE ID');
      assert.equal(g.rejects.at(-1)?.reason, 'not_allowed');
      assert.equal((await ask('/spiffe', 'ca1')).status, 403);
      assert.equal((await ask('/devices', 'wildcard')).status, 200, 'an exact DNS matcher matches a wildcard SAN');
      assert.equal((await ask('/devices', 'ca1')).status, 403);
      assert.equal((await ask('/ipv6', 'ipv6')).status, 200);
      assert.equal((await ask('/ipv6', 'ca1')).status, 403);
      assert.equal((await ask('/upn', 'upn')).status, 200);
      assert.equal((await ask('/upn', 'ca1')).status, 403);
    });

    test('certificate and public-key pins (status 401 as configured), subject', async () => {
      assert.equal((await ask('/pins', 'ca1')).status, 200, 'fingerprint pin');
      assert.equal((await ask('/pins', 'ops')).status, 200, 'SPKI pin');
      assert.equal((await ask('/pins', 'spiffe')).status, 401);
      assert.equal((await ask('/subject', 'ops')).status, 200);
      assert.equal((await ask('/subject', 'ca1')).status, 403);
    });

    test('a relaxation holds only for targets in normal form: /x/../public is judged as required', async () => {
      const r = await testRequest({ port: g.port, protocol, servername: 'app.test', path: '/x/../public' });
      assert.equal(r.status, 400);
    });
  });
}

test('a guard without the router takes the same policies as a list', async () => {
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['app.test'],
    client: { ca: pki.root.cert },
  });
  const guard = mtlsGuard({
    store,
    policies: [
      { path: '/public', pathType: 'prefix', mtls: { mode: 'off' } },
      { path: '/admin', mtls: { allow: { subject: ['CN=ops,O=Example'] } } },
    ],
  });
  const server = store.attach(
    (await import('node:https')).createServer(store.tlsOptions(), (req, res) =>
      guard(req, res, () => res.end(String(getClientIdentity(req)?.subject ?? 'anonymous'))),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    const ask = (path: string, who?: string) =>
      testRequest({ port, servername: 'app.test', path, ...(who ? { client: certs[who]! } : {}) });
    assert.equal((await ask('/public/a.css')).body, 'anonymous');
    assert.equal((await ask('/other')).status, 400);
    assert.equal((await ask('/admin', 'ops')).status, 200);
    assert.equal((await ask('/admin', 'ca1')).status, 403);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('bad policies are refused with the field named', () => {
  const bad: [unknown, RegExp][] = [
    [{ mode: 'sometimes' }, /routes\[0\]\.mtls\.mode/],
    [{ allow: {} }, /routes\[0\]\.mtls\.allow/],
    [{ allow: { san: [{ type: 'otherName', exact: 'x' }] } }, /routes\[0\]\.mtls\.allow\.san\[0\]\.oid/],
    [{ allow: { san: [{ type: 'dns', exact: 'a', prefix: 'b' }] } }, /routes\[0\]\.mtls\.allow\.san\[0\]/],
    [{ allow: { san: [{ type: 'uri', regex: '(a+)+(' }] } }, /routes\[0\]\.mtls\.allow\.san\[0\]\.regex/],
    [{ allow: { san: [{ type: 'ip', exact: 'not-an-ip' }] } }, /routes\[0\]\.mtls\.allow\.san\[0\]\.exact/],
    [{ mode: 'off', allow: { subject: ['CN=x'] } }, /routes\[0\]\.mtls\.mode/],
    [{ status: 404 }, /routes\[0\]\.mtls\.status/],
    [{ ca: 'not pem' }, /routes\[0\]\.mtls\.ca/],
  ];
  for (const [mtls, field] of bad) {
    assert.throws(
      () =>
        createRouter({
          services: [
            { name: 's', upstream: 'http://127.0.0.1:1', routes: [{ name: 'r', path: '/', mtls: mtls as never }] },
          ],
        }),
      (e: unknown) =>
        e instanceof MtlsGateConfigError && (field.test(e.field ?? '') || e.issues.some((i) => field.test(i.field))),
      JSON.stringify(mtls),
    );
  }
});
