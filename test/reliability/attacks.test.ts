// Regression tests for the findings of the two outside security reviews (docs/reliability.md,
// "Security findings"), on the reviewers' layout: tenants A (a.test, *.a.test, own CA, depth 1,
// skip-list ^/public/) and B (b.test, *.b.test, own CA), an object without mTLS (open.test), and a
// tenant C (*.c.a.test) nested inside A's domain; an https and an http2 server made with
// store.attach, guard then router, every tenant proxied to an upstream of its own; and a plain-HTTP
// listener. Findings 10 to 14 through Express and Koa: test/adapters/attacks.test.ts. Findings 2
// and 3 (hostile chains): test/reliability/hostile.test.ts.

import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { MAX_SKIP_PATH } from '../../src/guard/decide.js';
import {
  createRouter,
  createSslStore,
  ErrorCodes,
  getClientIdentity,
  MtlsGateConfigError,
  mtlsGuard,
  type RejectInfo,
  type RouteConfig,
  type Router,
  type SslStore,
} from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';
import { OID } from './lib/der.js';
import { KU, keyPool, mint } from './lib/mint.js';
import { type EchoSeen, h2Session, type Listening, listen, rawHttp1, startEcho } from './lib/net.js';

let pkiA: TestPki;
let pkiB: TestPki;
let pkiC: TestPki;
let store: SslStore;
let router: Router;
const up = {} as Record<'a' | 'b' | 'c' | 'open', Listening & { seen: EchoSeen[] }>;
const rejects: RejectInfo[] = [];
let httpsSrv: Listening;
let h2Srv: Listening;
let plainSrv: Listening;
let certA: TestCert;
let certC: TestCert;

const seen = () => ({ a: up.a.seen.length, b: up.b.seen.length, c: up.c.seen.length, open: up.open.seen.length });

before(async () => {
  pkiA = await createTestPki({ serverNames: ['a.test', '*.a.test'], name: 'tenant a' });
  pkiB = await createTestPki({ serverNames: ['b.test', '*.b.test'], name: 'tenant b' });
  pkiC = await createTestPki({ serverNames: ['*.c.a.test'], name: 'tenant c' });
  certA = await pkiA.client('valid');
  certC = await pkiC.client('valid');
  store = createSslStore();
  store.set({
    id: 'A',
    cert: pkiA.server.chain,
    key: pkiA.server.key,
    snis: ['a.test', '*.a.test'],
    client: { ca: pkiA.root.cert, depth: 1, skipMtlsUriRegex: ['^/public/'] },
  });
  store.set({
    id: 'B',
    cert: pkiB.server.chain,
    key: pkiB.server.key,
    snis: ['b.test', '*.b.test'],
    client: { ca: pkiB.root.cert },
  });
  store.set({
    id: 'C',
    cert: pkiC.server.chain,
    key: pkiC.server.key,
    snis: ['*.c.a.test'],
    client: { ca: pkiC.root.cert },
  });
  store.set({ id: 'open', cert: pkiA.server.chain, key: pkiA.server.key, snis: ['open.test'] });
  for (const k of ['a', 'b', 'c', 'open'] as const) up[k] = await startEcho();
  const service = (
    name: string,
    hosts: string[],
    port: number,
    routes: RouteConfig[] = [{ name: 'all', path: '/', pathType: 'prefix' }],
  ) => ({ name, hosts, upstream: `http://127.0.0.1:${port}`, routes });
  router = createRouter({
    services: [
      service('a', ['a.test', '*.a.test'], up.a.port),
      service('b', ['b.test', '*.b.test'], up.b.port),
      // C's service serves one path only: every other path of C's hosts must not fall through to A's routes.
      service('c', ['*.c.a.test'], up.c.port, [{ name: 'only', path: '/c-only', pathType: 'exact' }]),
      service('open', ['open.test'], up.open.port),
    ],
    stripRequestHeaders: ['x-tenant-*', 'x-internal-token'],
  });
  const guard = mtlsGuard({ store, onReject: (i) => rejects.push(i) });
  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => guard(req, res, () => router(req, res));
  const opts = store.tlsOptions({ sessionTickets: true });
  httpsSrv = await listen(store.attach(https.createServer(opts, handler)));
  h2Srv = await listen(store.attach(http2.createSecureServer(opts, handler)));
  const plainGuard = mtlsGuard({ store, allowPlainHttp: true, onReject: (i) => rejects.push(i) });
  plainSrv = await listen(http.createServer((req, res) => plainGuard(req, res, () => router(req, res))));
});

after(async () => {
  await httpsSrv?.close();
  await h2Srv?.close();
  await plainSrv?.close();
  await router?.close();
  for (const u of Object.values(up)) await u?.close();
});

describe('finding 1: wildcard depth — one owner per host for the guard and the router', () => {
  const servers = () =>
    [
      ['https', httpsSrv.port, ['http1']],
      ['http2', h2Srv.port, ['http1', 'h2']],
    ] as const;

  for (const host of ['x.y.a.test', 'X.Y.A.TEST.:443', 'deep.x.y.a.test']) {
    test(`SNI open.test, no certificate, Host ${host}: refused, A's upstream never reached (https, http2; h1 and h2)`, async () => {
      for (const [, port, protocols] of servers()) {
        for (const protocol of protocols) {
          const n = seen();
          const r = await testRequest({ port, protocol, servername: 'open.test', host, path: '/admin' });
          assert.equal(r.status, 400, `${protocol} ${host}: ${r.body}`);
          assert.equal(rejects.at(-1)?.reason, 'sni_host_mismatch');
          assert.deepEqual(seen(), n);
        }
      }
    });
  }

  test('HTTP/2 :authority x.y.a.test, with and without a host header: refused', async () => {
    const s = h2Session(h2Srv.port, { servername: 'open.test' });
    try {
      const n = seen();
      assert.equal((await s.request({ ':path': '/admin', ':authority': 'x.y.a.test' })).status, 400);
      assert.equal(
        (await s.request({ ':path': '/admin', ':authority': 'x.y.a.test', host: 'x.y.a.test' })).status,
        400,
      );
      assert.deepEqual(seen(), n);
    } finally {
      await s.close();
    }
  });

  test('absolute-form target https://x.y.a.test/admin over SNI open.test: refused', async () => {
    for (const port of [httpsSrv.port, h2Srv.port]) {
      const n = seen();
      const replies = await rawHttp1(port, {
        servername: 'open.test',
        requests: 'GET https://x.y.a.test/admin HTTP/1.1\r\nHost: x.y.a.test\r\nConnection: close\r\n\r\n',
      });
      assert.equal(replies[0]?.status, 400);
      assert.deepEqual(seen(), n);
    }
  });

  test("A's certificate with Host x.y.b.test: refused, B's upstream never reached", async () => {
    for (const [, port, protocols] of servers()) {
      for (const protocol of protocols) {
        const n = seen();
        const r = await testRequest({
          port,
          protocol,
          servername: 'a.test',
          host: 'x.y.b.test',
          path: '/admin',
          client: certA,
        });
        assert.equal(r.status, 400, r.body);
        assert.equal(rejects.at(-1)?.reason, 'sni_host_mismatch');
        assert.deepEqual(seen(), n);
      }
    }
  });

  test('a TLS 1.3 session made with A, resumed under SNI open.test with Host x.y.b.test: refused', async () => {
    const a = await testRequest({
      port: httpsSrv.port,
      servername: 'a.test',
      path: '/x',
      client: certA,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
    assert.equal(a.status, 200);
    assert.ok(a.session, 'a ticket was issued');
    const n = seen();
    const b = await testRequest({
      port: httpsSrv.port,
      servername: 'open.test',
      host: 'x.y.b.test',
      path: '/admin',
      session: a.session,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
    assert.equal(b.status, 400);
    assert.deepEqual(seen(), n);
  });

  test('the plain-HTTP listener (allowPlainHttp): Host x.y.a.test and X.Y.A.TEST.:80 refused, open.test served', async () => {
    const get = (host: string) =>
      new Promise<number>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: plainSrv.port, path: '/admin', headers: { host }, agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          })
          .on('error', reject);
      });
    const n = seen();
    assert.equal(await get('x.y.a.test'), 400);
    assert.equal(await get('X.Y.A.TEST.:80'), 400);
    assert.deepEqual(seen(), n);
    assert.equal(await get('open.test'), 200);
    assert.equal(up.open.seen.length, n.open + 1);
  });

  test("controls: A's client reaches x.y.a.test (the route's any-depth wildcard), the open object serves without certificate", async () => {
    const n = seen();
    assert.equal(
      (
        await testRequest({
          port: h2Srv.port,
          protocol: 'h2',
          servername: 'a.test',
          host: 'x.y.a.test',
          path: '/x',
          client: certA,
        })
      ).status,
      200,
    );
    assert.equal(up.a.seen.length, n.a + 1);
    assert.equal(
      (await testRequest({ port: h2Srv.port, protocol: 'h2', servername: 'open.test', path: '/x' })).status,
      200,
    );
    assert.equal(up.open.seen.length, n.open + 1);
  });

  test("a host owned by C (*.c.a.test) is never served by A's *.a.test route, even where C has no route for the path", async () => {
    const n = seen();
    const miss = await testRequest({
      port: h2Srv.port,
      protocol: 'h2',
      servername: 'q.c.a.test',
      path: '/admin',
      client: certC,
    });
    assert.equal(miss.status, 404, miss.body);
    assert.deepEqual(seen(), n);
    const hit = await testRequest({
      port: h2Srv.port,
      protocol: 'h2',
      servername: 'q.c.a.test',
      path: '/c-only',
      client: certC,
    });
    assert.equal(hit.status, 200);
    assert.equal(up.c.seen.length, n.c + 1);
    // And A's certificate cannot open C's hosts: C owns them.
    const cross = await testRequest({
      port: h2Srv.port,
      protocol: 'h2',
      servername: 'a.test',
      host: 'deep.q.c.a.test',
      path: '/c-only',
      client: certA,
    });
    assert.equal(cross.status, 400);
    assert.equal(rejects.at(-1)?.reason, 'sni_host_mismatch');
  });

  test('store.match keeps the SNI rule (one label); the owner of a host follows the route rule', () => {
    assert.equal(store.match('x.a.test')?.id, 'A');
    assert.equal(store.match('x.y.a.test'), undefined, 'a wildcard certificate is valid for one label: no handshake');
  });
});

describe('finding 4: skip-list paths an upstream reads differently', () => {
  const paths = [
    '/public/..;/admin',
    '/public/..;jsessionid=x/admin',
    '/public/.;/admin',
    '/public/%2e%2e;/admin',
    '/public/%252e%252e/admin',
    '/public/%252E%252E/admin',
    '/public/%EF%BC%8E%EF%BC%8E/admin',
    '/public/%E2%80%A4%E2%80%A4/admin',
    '/public/x%EF%BC%8Fadmin',
  ];
  for (const protocol of ['http1', 'h2'] as const) {
    test(`${protocol}: no certificate, ${paths.length} disguised dot segments after a skipped prefix: refused, nothing reaches the upstream`, async () => {
      for (const path of paths) {
        const n = seen();
        const r = await testRequest({ port: h2Srv.port, protocol, servername: 'a.test', path });
        assert.equal(r.status, 400, `${path}: ${r.status}`);
        assert.deepEqual(seen(), n, path);
      }
    });
  }
  test('with the certificate such targets are still refused by the router (no path to judge), never forwarded raw', async () => {
    const n = seen();
    const r = await testRequest({
      port: h2Srv.port,
      protocol: 'h2',
      servername: 'a.test',
      path: '/public/..;/admin',
      client: certA,
    });
    assert.equal(r.status, 400);
    assert.deepEqual(seen(), n);
  });
  test('ordinary skipped paths still pass, with ; parameters that are not dot segments', async () => {
    const n = seen();
    const r = await testRequest({
      port: h2Srv.port,
      protocol: 'h2',
      servername: 'a.test',
      path: '/public/app.css;v=2',
    });
    assert.equal(r.status, 200);
    assert.equal(up.a.seen.at(-1)?.url, '/public/app.css;v=2');
    assert.equal(up.a.seen.length, n.a + 1);
  });
});

describe('finding 5: identity headers never reach the upstream', () => {
  const forged = [
    'X-Client-Cert-Subject',
    'X-Client-Cert-Present',
    'X-Client-Cert-Chain-Verified',
    'X-Client-Cert-Hash',
    'X-Client-Cert-Spiffe',
    'X-Client-Cert-Uri-Sans',
    'X-Client-Cert-Dnsname-Sans',
    'X-SSL-Client-DN',
    'X-SSL-Client-CN',
    'X-SSL-Client-SHA1',
    'X-SSL-Issuer',
    'X-SSL-Subject',
    'X-Client-Subject',
    'Cf-Client-Cert-Der-Base64',
    'X-Forwarded-Ssl',
    'X_Forwarded_For',
    'X_SSL_Client_DN',
    'X-Tenant-Id',
    'x_tenant_role',
    'X-Internal-Token',
    // Found by the second look at the fixes: more identity names, auth-proxy users, path overrides.
    'X-TLS-Client-Cert',
    'X-Mtls-Subject',
    'X-SPIFFE-ID',
    'Ssl-Verify',
    'X-Client-Verified',
    'Remote-User',
    'X-Forwarded-User',
    'X-Auth-Request-Email',
    'X-WEBAUTH-USER',
    'X-Original-URL',
    'X-Rewrite-URL',
    'X-Original-URI',
    'X-Forwarded-Uri',
    'X-Forwarded-Prefix',
  ];
  for (const [what, path, client] of [
    ['a verified client', '/private', true],
    ['a skip-list path without certificate', '/public/x', false],
  ] as const) {
    test(`${forged.length} forged headers with ${what}: none reaches the upstream, X-Forwarded-For is the gateway's`, async () => {
      const n = up.a.seen.length;
      const headers: Record<string, string> = {};
      for (const h of forged) headers[h] = `FORGED-${h}`;
      const r = await testRequest({
        port: httpsSrv.port,
        servername: 'a.test',
        path,
        headers,
        ...(client ? { client: certA } : {}),
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(up.a.seen.length, n + 1);
      const got = up.a.seen.at(-1)!.rawHeaders;
      assert.equal(
        got.some((v) => v.includes('FORGED')),
        false,
        got.join('|'),
      );
      const xff = got.filter(
        (_, i) => i % 2 === 0 && got[i]!.toLowerCase().replace(/_/g, '-') === 'x-forwarded-for',
      ).length;
      assert.equal(xff, 1);
      assert.equal(got[got.findIndex((v) => v.toLowerCase() === 'x-forwarded-for') + 1], '127.0.0.1');
    });
  }
  test('stripRequestHeaders is validated', () => {
    for (const bad of [['bad header'], 'x-a', Array.from({ length: 65 }, (_, i) => `x-${i}`), [''], ['x-*-y']]) {
      assert.throws(
        () => createRouter({ services: [], stripRequestHeaders: bad as string[] }),
        (e: unknown) =>
          e instanceof MtlsGateConfigError &&
          e.code === ErrorCodes.INVALID_OPTION &&
          /^stripRequestHeaders/.test(e.field ?? ''),
        JSON.stringify(bad).slice(0, 40),
      );
    }
  });
});

describe('finding 7: a throwing onProxyError is contained', () => {
  test('the client gets its 502, the process carries on, the hook is reported once as a warning', async () => {
    const dead = await listen(http.createServer());
    const deadPort = dead.port;
    await dead.close();
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === 'MTLS_GATE_HOOK') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    const r = createRouter({
      services: [
        {
          name: 'dead',
          upstream: `http://127.0.0.1:${deadPort}`,
          routes: [{ name: 'all', path: '/', pathType: 'prefix' }],
        },
      ],
      onProxyError: () => {
        throw new Error('logger down');
      },
    });
    const srv = await listen(http.createServer((req, res) => r(req, res)));
    try {
      for (let i = 0; i < 3; i++) {
        const status = await new Promise<number>((resolve, reject) =>
          http
            .get({ host: '127.0.0.1', port: srv.port, path: '/x', agent: false }, (res) => {
              res.resume();
              resolve(res.statusCode!);
            })
            .on('error', reject),
        );
        assert.equal(status, 502);
      }
      await new Promise((res) => setImmediate(res));
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /onProxyError/);
    } finally {
      process.off('warning', onWarning);
      await srv.close();
      await r.close();
    }
  });
});

describe('finding 7: hooks that throw what cannot be printed are contained too', () => {
  test('onReject throwing a prototype-less object, or rejecting with an Error whose message getter throws: 400 all the same', async () => {
    const weird = Object.create(null) as object;
    const nasty = new Error('x');
    Object.defineProperty(nasty, 'message', {
      get() {
        throw new Error('no message');
      },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const hook of [
        () => {
          throw weird;
        },
        async () => {
          throw nasty;
        },
        () => Promise.reject(weird),
      ]) {
        const guard = mtlsGuard({ store, onReject: hook });
        const srv = await listen(
          store.attach(https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => res.end('ok')))),
        );
        try {
          assert.equal((await testRequest({ port: srv.port, servername: 'a.test', path: '/private' })).status, 400);
        } finally {
          await srv.close();
        }
      }
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('finding 8: TLS 1.2 client-initiated renegotiation is refused', () => {
  for (const [name, port] of [
    ['https', () => httpsSrv.port],
    ['http2 (HTTP/1.1 fallback)', () => h2Srv.port],
  ] as const) {
    test(`${name}: a renegotiation attempt ends the connection; it never completes`, async () => {
      const s = tls.connect({
        port: port(),
        host: '127.0.0.1',
        servername: 'a.test',
        maxVersion: 'TLSv1.2',
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: false,
        cert: certA.chain,
        key: certA.key,
      });
      s.on('error', () => {});
      await new Promise((r) => s.once('secureConnect', r));
      s.write('GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
      const first = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString('latin1'))));
      assert.match(first, /^HTTP\/1\.1 200/);
      const closed = new Promise<string>((r) => s.once('close', () => r('closed')));
      const outcome = await Promise.race([
        new Promise<string>((r) =>
          s.renegotiate({ rejectUnauthorized: false }, (err) => r(err ? 'error' : 'renegotiated')),
        ),
        closed,
        new Promise<string>((r) => setTimeout(() => r('timeout'), 5000)),
      ]);
      assert.notEqual(outcome, 'renegotiated');
      assert.equal(
        await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('open'), 5000))]),
        'closed',
      );
      s.destroy();
    });
  }
});

describe('finding 9: control characters in SANs are escaped like the subject DN', () => {
  test('a NUL inside a DNS SAN and a control character in a URI SAN reach identity.san escaped', async () => {
    const keys = keyPool(2, 0);
    const now = Date.now();
    const caName = [[OID.cn, 'nul test CA']] as const;
    const ca = mint({
      subject: caName,
      issuer: caName,
      notBefore: now - 3_600_000,
      notAfter: now + 3_600_000,
      key: keys.ec[0]!,
      signer: keys.ec[0]!,
      basicConstraints: { ca: true, critical: true },
      keyUsage: { mask: KU.keyCertSign | KU.cRLSign },
    });
    const leaf = mint({
      subject: [[OID.cn, 'nul\u0000client']],
      issuer: caName,
      notBefore: now - 3_600_000,
      notAfter: now + 3_600_000,
      key: keys.ec[1]!,
      signer: keys.ec[0]!,
      san: { dns: ['evil.test\u0000.good.test'], uri: ['spiffe://x\u0001y/a\\b'] },
    });
    const s = createSslStore();
    s.set({ id: 'nul', cert: pkiA.server.chain, key: pkiA.server.key, snis: ['a.test'], client: { ca: ca.pem } });
    const guard = mtlsGuard({ store: s });
    const srv = await listen(
      s.attach(
        https.createServer(s.tlsOptions(), (req, res) =>
          guard(req, res, () => {
            const id = getClientIdentity(req)!;
            res.end(JSON.stringify({ san: id.san, subject: id.subject }));
          }),
        ),
      ),
    );
    try {
      const r = await testRequest({
        port: srv.port,
        servername: 'a.test',
        client: { cert: leaf.pem, key: keys.ec[1]!.keyPem },
      });
      assert.equal(r.status, 200, r.body);
      const body = r.json<{ san: { dns: string[]; uri: string[] }; subject: string }>();
      assert.deepEqual(body.san.dns, ['evil.test\\00.good.test']);
      assert.deepEqual(body.san.uri, ['spiffe://x\\01y/a\\\\b']);
      assert.equal(body.subject, 'CN=nul\\00client', 'the subject DN escapes the same way');
    } finally {
      await srv.close();
    }
  });
});

describe('finding 11: skip-list patterns run in linear time', () => {
  test("the reviewers' patterns are accepted and answer hostile paths at once; over-long patterns are refused", async () => {
    const s = createSslStore();
    s.set({
      id: 'r',
      cert: pkiA.server.chain,
      key: pkiA.server.key,
      snis: ['a.test'],
      client: { ca: pkiA.root.cert, skipMtlsUriRegex: ['(a+)+$', '^/assets/([a-z0-9]+-?)*\\.css$'] },
    });
    const guard = mtlsGuard({ store: s });
    const srv = await listen(
      s.attach(https.createServer(s.tlsOptions(), (req, res) => guard(req, res, () => res.end('skipped')))),
    );
    try {
      const hostile = [
        `/${'a'.repeat(28)}!`,
        `/assets/${'a1-'.repeat(12)}!`,
        `/assets/${'a1-'.repeat(600)}!`,
        `/${'a'.repeat(2040)}!`,
        `/${'a'.repeat(8000)}!`,
      ];
      for (const path of hostile) {
        const r = await testRequest({ port: srv.port, servername: 'a.test', path });
        // `(a+)+$` matches any path ending in "a"; these end in "!": no skip, so a certificate is needed.
        assert.equal(r.status, 400, path.slice(0, 40));
      }
      assert.equal(
        (await testRequest({ port: srv.port, servername: 'a.test', path: '/assets/app-1.css' })).status,
        200,
      );
      assert.equal(
        (await testRequest({ port: srv.port, servername: 'a.test', path: `/${'a'.repeat(2000)}` })).status,
        200,
      );
      // Over MAX_SKIP_PATH (2,048) no skip-list is consulted: the certificate is needed.
      assert.equal(
        (await testRequest({ port: srv.port, servername: 'a.test', path: `/${'a'.repeat(MAX_SKIP_PATH)}` })).status,
        400,
      );
    } finally {
      await srv.close();
    }
    for (const bad of ['a'.repeat(257), '(a)\\1', '(?=a)b']) {
      assert.throws(
        () =>
          s.set({
            id: 'bad',
            cert: pkiA.server.chain,
            key: pkiA.server.key,
            snis: ['bad.test'],
            client: { ca: pkiA.root.cert, skipMtlsUriRegex: [bad] },
          }),
        (e: unknown) =>
          e instanceof MtlsGateConfigError &&
          e.code === ErrorCodes.REGEX_INVALID &&
          e.field === 'client.skipMtlsUriRegex[0]',
        bad.slice(0, 20),
      );
    }
  });
});

describe('finding 13: inherited, accessor and Proxy input is never read as configuration', () => {
  const pair = () => ({ cert: pkiA.server.chain, key: pkiA.server.key });
  test('a polluted Object.prototype supplies nothing to store.set, createRouter, mtlsGuard and attach', () => {
    const proto = Object.prototype as Record<string, unknown>;
    const polluted: Record<string, unknown> = {
      skipMtlsUriRegex: [''],
      depth: 8,
      status: 0,
      tls: { verify: false },
      protocols: ['http'],
      allowPlainHttp: true,
      sessionTickets: true,
      passHost: 'rewrite',
      upstreamHost: 'evil',
    };
    for (const [k, v] of Object.entries(polluted)) proto[k] = v;
    try {
      const s = createSslStore();
      const view = s.set({ id: 'p', ...pair(), snis: ['p.test'], client: { ca: pkiA.root.cert } });
      assert.deepEqual(view.client?.skipMtlsUriRegex, []);
      assert.equal(view.client?.depth, 1);
      assert.equal(view.status, 1);
      const r = createRouter({
        services: [
          {
            name: 's',
            upstream: { nodes: [{ host: '127.0.0.1', port: 1 }], scheme: 'https' },
            routes: [{ name: 'r', path: '/' }],
          },
        ],
      });
      assert.equal(r.match('GET', 'p.test', '/', 'http')?.route, 'r', 'protocols not inherited (both served)');
      void r.close();
      assert.equal(s.tlsOptions().secureOptions & 0x4000, 0x4000, 'sessionTickets not inherited (tickets stay off)');
    } finally {
      for (const k of Object.keys(polluted)) delete proto[k];
    }
  });

  test('accessors and Proxies are read once: the value validated is the value compiled', () => {
    let reads = 0;
    const service = {
      name: 's',
      upstream: 'http://127.0.0.1:1',
      routes: [{ name: 'r', path: '/' }],
      get protocols(): ('http' | 'https')[] {
        reads++;
        return reads === 1 ? ['https'] : ['http'];
      },
    };
    const r = createRouter({ services: [service] });
    assert.equal(reads, 1);
    assert.equal(r.match('GET', 'x.test', '/', 'https')?.route, 'r');
    assert.equal(r.match('GET', 'x.test', '/', 'http'), undefined, 'an https-only service, as validated');
    void r.close();

    let gets = 0;
    const client = new Proxy({ ca: pkiA.root.cert, skipMtlsUriRegex: ['^/health$'] } as Record<string, unknown>, {
      get(t, k) {
        if (k === 'skipMtlsUriRegex') gets++;
        return k === 'skipMtlsUriRegex' && gets > 1 ? [''] : t[k as string];
      },
    });
    const s = createSslStore();
    const view = s.set({ id: 'px', ...pair(), snis: ['px.test'], client: client as never });
    assert.deepEqual(view.client?.skipMtlsUriRegex, ['^/health$']);
    assert.equal(gets, 1);
  });

  test('a __proto__ key (as JSON.parse makes it) is an unknown field; in labels it is refused', () => {
    const s = createSslStore();
    const input = JSON.parse(`{"id":"j","snis":["j.test"],"__proto__":{"client":{"ca":"x"}}}`) as Record<
      string,
      unknown
    >;
    assert.throws(
      () => s.set({ ...pair(), ...input } as never),
      (e: unknown) =>
        e instanceof MtlsGateConfigError && e.code === ErrorCodes.UNKNOWN_FIELD && e.field === '__proto__',
    );
    const labels = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    assert.throws(
      () => s.set({ id: 'l', ...pair(), snis: ['l.test'], labels }),
      (e: unknown) => e instanceof MtlsGateConfigError && e.code === ErrorCodes.INVALID_OPTION,
    );
    assert.equal(s.size, 0);
  });
});

describe('finding 15: caps and ASCII-only names', () => {
  const pair = () => ({ cert: pkiA.server.chain, key: pkiA.server.key });
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      const err = e as MtlsGateConfigError;
      return { code: err.code, field: err.field, length: err.message.length };
    }
    return undefined;
  };
  test('a 10 MB label key gives a short error; more than 64 labels are refused', () => {
    const s = createSslStore();
    const big = code(() => s.set({ id: 'l', ...pair(), snis: ['l.test'], labels: { ['k'.repeat(10_000_000)]: 'v' } }));
    assert.equal(big?.code, ErrorCodes.INVALID_OPTION);
    assert.ok(big!.length < 300, `message of ${big!.length} characters`);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    assert.equal(code(() => s.set({ id: 'l', ...pair(), snis: ['l.test'], labels: many }))?.field, 'labels');
  });
  test('router caps: hosts, nodes, methods, upstreamHost', () => {
    const svc = (extra: Record<string, unknown>) =>
      createRouter({
        services: [{ name: 's', upstream: 'http://127.0.0.1:1', routes: [{ name: 'r', path: '/' }], ...extra }],
      });
    assert.equal(
      code(() => svc({ hosts: Array.from({ length: 65 }, (_, i) => `h${i}.test`) }))?.field,
      'services[0].hosts',
    );
    assert.equal(
      code(() => svc({ upstream: { nodes: Array.from({ length: 257 }, () => ({ host: '127.0.0.1', port: 1 })) } }))
        ?.field,
      'services[0].upstream.nodes',
    );
    assert.equal(
      code(() =>
        svc({ upstream: { nodes: [{ host: '127.0.0.1', port: 1 }], passHost: 'rewrite', upstreamHost: 'a b' } }),
      )?.field,
      'services[0].upstream.upstreamHost',
    );
    assert.equal(
      code(() => svc({ upstream: { nodes: [{ host: '127.0.0.1', port: 1 }], upstreamHost: 'x'.repeat(300) } }))?.field,
      'services[0].upstream.upstreamHost',
    );
  });
  test('the Kelvin sign (U+212A) is not lower-cased into "k": refused as an SNI and as a route host', () => {
    const s = createSslStore();
    s.set({ id: 'ka', ...pair(), snis: ['ka.test'] });
    assert.equal(code(() => s.set({ id: 'kelvin', ...pair(), snis: ['\u212Aa.test'] }))?.code, ErrorCodes.SNI_INVALID);
    assert.equal(s.match('ka.test')?.id, 'ka');
    assert.equal(s.match('\u212Aa.test'), undefined);
    assert.equal(
      code(() =>
        createRouter({
          services: [
            { name: 's', hosts: ['\u212Aa.test'], upstream: 'http://127.0.0.1:1', routes: [{ name: 'r', path: '/' }] },
          ],
        }),
      )?.field,
      'services[0].hosts[0]',
    );
  });
});

describe('a second look at the fixes (an attacker review of this change)', () => {
  test('over-long host names are refused before any lookup: Host, :authority and X-Forwarded-Host (bad_host / sni_host_mismatch)', async () => {
    const long = `${'a.'.repeat(8100)}zz`;
    const at253 = `${`${'a'.repeat(60)}.`.repeat(4) + 'a'.repeat(8)}.a.test`; // 259 characters
    for (const protocol of ['http1', 'h2'] as const) {
      const n = seen();
      const r = await testRequest({ port: h2Srv.port, protocol, servername: 'open.test', host: at253, path: '/x' });
      assert.equal(r.status, 400);
      assert.equal(rejects.at(-1)?.reason, 'bad_host');
      const x = await testRequest({
        port: h2Srv.port,
        protocol,
        servername: 'open.test',
        path: '/x',
        headers: { 'x-forwarded-host': long },
      });
      assert.equal(x.status, 400);
      assert.equal(rejects.at(-1)?.reason, 'sni_host_mismatch');
      assert.deepEqual(seen(), n);
    }
  });

  test('a target starting with // or /\\ is refused (bad_host): new URL(req.url, base) would read another host', async () => {
    for (const target of ['//a.test/admin', '//a.test:443/admin', '/\\a.test/admin']) {
      for (const port of [httpsSrv.port, h2Srv.port]) {
        const n = seen();
        const replies = await rawHttp1(port, {
          servername: 'open.test',
          requests: `GET ${target} HTTP/1.1\r\nHost: open.test\r\nConnection: close\r\n\r\n`,
        });
        assert.equal(replies[0]?.status, 400, target);
        assert.deepEqual(seen(), n);
      }
    }
    const s = h2Session(h2Srv.port, { servername: 'open.test' });
    try {
      assert.equal((await s.request({ ':path': '//a.test/admin', ':authority': 'open.test' })).status, 400);
    } finally {
      await s.close();
    }
  });

  test('a disabled (status 0) mTLS object keeps its hosts refused; a deleted one releases them', async () => {
    const viewC = store.get('C')!;
    const viewA = store.get('A')!;
    const c = {
      id: 'C',
      cert: pkiC.server.chain,
      key: pkiC.server.key,
      snis: [...viewC.snis],
      client: { ca: pkiC.root.cert },
    };
    const a = {
      id: 'A',
      cert: pkiA.server.chain,
      key: pkiA.server.key,
      snis: [...viewA.snis],
      client: { ca: pkiA.root.cert, depth: 1, skipMtlsUriRegex: ['^/public/'] },
    };
    try {
      store.set({ ...c, status: 0 });
      let n = seen();
      const r1 = await testRequest({
        port: h2Srv.port,
        protocol: 'h2',
        servername: 'a.test',
        host: 'q.c.a.test',
        path: '/c-only',
        client: certA,
      });
      assert.equal(r1.status, 400);
      assert.equal(rejects.at(-1)?.reason, 'sni_host_mismatch');
      store.set({ ...a, status: 0 });
      const r2 = await testRequest({
        port: h2Srv.port,
        protocol: 'h2',
        servername: 'open.test',
        host: 'a.test',
        path: '/admin',
      });
      assert.equal(r2.status, 400);
      assert.equal(rejects.at(-1)?.reason, 'sni_host_mismatch');
      assert.deepEqual(seen(), n);
      // An active object with the same names claims them before the disabled one.
      store.set({ ...a, id: 'A2' });
      n = seen();
      assert.equal(
        (await testRequest({ port: h2Srv.port, protocol: 'h2', servername: 'a.test', path: '/x', client: certA }))
          .status,
        200,
      );
      assert.equal(up.a.seen.length, n.a + 1);
    } finally {
      store.delete('A2');
      store.set(a);
      store.set(c);
    }
    assert.equal(
      (await testRequest({ port: h2Srv.port, protocol: 'h2', servername: 'a.test', path: '/x', client: certA })).status,
      200,
    );
  });

  test("a refused chain with many certificates is named from OpenSSL's code, without building the chain", async () => {
    const keys = keyPool(3, 0);
    const now = Date.now();
    const caName = [[OID.cn, 'bulk test CA']] as const;
    const ca = mint({
      subject: caName,
      issuer: caName,
      notBefore: now - 3_600_000,
      notAfter: now + 3_600_000,
      key: keys.ec[0]!,
      signer: keys.ec[0]!,
      basicConstraints: { ca: true, critical: true },
      keyUsage: { mask: KU.keyCertSign | KU.cRLSign },
    });
    const notCa = mint({
      subject: [[OID.cn, 'not a CA']],
      issuer: caName,
      notBefore: now - 3_600_000,
      notAfter: now + 3_600_000,
      key: keys.ec[1]!,
      signer: keys.ec[0]!,
      basicConstraints: { ca: false },
    });
    const leaf = mint({
      subject: [[OID.cn, 'under a leaf']],
      issuer: [[OID.cn, 'not a CA']],
      notBefore: now - 3_600_000,
      notAfter: now + 3_600_000,
      key: keys.ec[2]!,
      signer: keys.ec[1]!,
      extKeyUsage: [OID.clientAuth],
    });
    const roots = Array.from({ length: 60 }, (_, i) => {
      const nm = [[OID.cn, `unrelated root ${i} ${'x'.repeat(200)}`]] as const;
      return mint({
        subject: nm,
        issuer: nm,
        notBefore: now - 3_600_000,
        notAfter: now + 3_600_000,
        key: keys.ec[0]!,
        signer: keys.ec[0]!,
        basicConstraints: { ca: true },
      }).pem;
    });
    const s = createSslStore();
    s.set({ id: 'bulk', cert: pkiA.server.chain, key: pkiA.server.key, snis: ['a.test'], client: { ca: ca.pem } });
    const seenReasons: string[] = [];
    const guard = mtlsGuard({ store: s, onReject: (i) => seenReasons.push(i.reason) });
    const srv = await listen(
      s.attach(https.createServer(s.tlsOptions(), (req, res) => guard(req, res, () => res.end('ok')))),
    );
    try {
      const small = await testRequest({
        port: srv.port,
        servername: 'a.test',
        client: { cert: leaf.pem, chain: leaf.pem + notCa.pem, key: keys.ec[2]!.keyPem },
      });
      assert.equal(small.status, 400);
      const original = tls.TLSSocket.prototype.getPeerX509Certificate;
      let built = 0;
      tls.TLSSocket.prototype.getPeerX509Certificate = function (this: tls.TLSSocket) {
        built++;
        return original.call(this);
      };
      let big: Awaited<ReturnType<typeof testRequest>>;
      try {
        big = await testRequest({
          port: srv.port,
          servername: 'a.test',
          client: { cert: leaf.pem, chain: leaf.pem + notCa.pem + roots.join(''), key: keys.ec[2]!.keyPem },
        });
      } finally {
        tls.TLSSocket.prototype.getPeerX509Certificate = original;
      }
      assert.equal(big.status, 400);
      assert.equal(built, 0, 'the server never asked Node for the chain');
      // A small chain is read and named precisely; a large one (46 KB) gets the name of OpenSSL's own
      // code (its last error here is INVALID_PURPOSE: bad_purpose), and Node never builds its 62 objects.
      assert.deepEqual(seenReasons, ['not_a_ca', 'bad_purpose']);
      assert.equal(s.verifierStats().verifications, 0);
    } finally {
      await srv.close();
    }
  });

  test('stripRequestHeaders is copied before it is checked: a Proxy cannot swap names, a hole is a coded error', async () => {
    let reads = 0;
    const names = new Proxy(['x-internal-token'], {
      get(t, k) {
        if (k === '0') return ++reads === 1 ? 'x-internal-token' : 'x-nothing';
        return Reflect.get(t, k);
      },
    });
    const r = createRouter({
      services: [
        {
          name: 's',
          upstream: `http://127.0.0.1:${up.a.port}`,
          routes: [{ name: 'all', path: '/', pathType: 'prefix' }],
        },
      ],
      stripRequestHeaders: names,
    });
    const srv = await listen(http.createServer((req, res) => r(req, res)));
    try {
      const n = up.a.seen.length;
      await new Promise<void>((resolve, reject) =>
        http
          .get(
            { host: '127.0.0.1', port: srv.port, path: '/x', headers: { 'x-internal-token': 'FORGED' }, agent: false },
            (res) => {
              res.resume();
              res.on('end', resolve);
            },
          )
          .on('error', reject),
      );
      assert.equal(up.a.seen.length, n + 1);
      assert.equal(up.a.seen.at(-1)!.rawHeaders.includes('FORGED'), false);
    } finally {
      await srv.close();
      await r.close();
    }
    assert.throws(
      () => createRouter({ services: [], stripRequestHeaders: [undefined, 'x-a'] as string[] }),
      (e: unknown) => e instanceof MtlsGateConfigError && e.field === 'stripRequestHeaders[0]',
    );
  });

  test('the skip-list patterns of one object have a joint budget of matcher states', () => {
    const s = createSslStore();
    const patterns = Array.from({ length: 64 }, (_, i) => `(?:a*){126}X${i}`);
    assert.throws(
      () =>
        s.set({
          id: 'p',
          cert: pkiA.server.chain,
          key: pkiA.server.key,
          snis: ['p.test'],
          client: { ca: pkiA.root.cert, skipMtlsUriRegex: patterns },
        }),
      (e: unknown) =>
        e instanceof MtlsGateConfigError &&
        e.code === ErrorCodes.REGEX_INVALID &&
        e.field === 'client.skipMtlsUriRegex',
    );
    s.set({
      id: 'p',
      cert: pkiA.server.chain,
      key: pkiA.server.key,
      snis: ['p.test'],
      client: { ca: pkiA.root.cert, skipMtlsUriRegex: patterns.slice(0, 3) },
    });
  });
});
