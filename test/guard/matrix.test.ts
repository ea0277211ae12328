import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createSslStore, getClientIdentity, mtlsGuard, type SslStore } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';
import {
  listen,
  type Reply,
  type RequestOptions,
  request1,
  request2,
  startGuarded,
  type TestServer,
} from '../helpers.js';

let pki: TestPki;
let tenantB: TestPki;
let store: SslStore;
let srv: TestServer;
const certs = {} as Record<string, TestCert> & { valid: TestCert };

before(async () => {
  pki = await createTestPki({ serverNames: ['a.test', 'open.test', 'deep.test', 'zero.test', 'tls13.test'] });
  tenantB = await createTestPki({ serverNames: ['b.test'], name: 'tenant b' });
  for (const shape of [
    'valid',
    'rsa',
    'viaIntermediate',
    'expired',
    'notYetValid',
    'otherCa',
    'tooDeep',
    'nonCaIssuer',
    'serverAuthOnly',
    'selfSigned',
    'unknownCriticalExtension',
  ] as const) {
    certs[shape] = await pki.client(shape);
  }
  certs.tenantB = await tenantB.client('valid');
  // Two intermediates without pathLen limits, for client.depth itself.
  const i1 = await pki.root.createCa({ subject: 'O=mtls-gate, CN=deep one' });
  const i2 = await i1.createCa({ subject: 'O=mtls-gate, CN=deep two' });
  certs.twoIntermediates = await i2.issue({ subject: 'O=mtls-gate, CN=deep client' });

  store = createSslStore();
  const server = { cert: pki.server.chain, key: pki.server.key };
  store.set({ id: 'a', ...server, snis: ['a.test'], client: { ca: pki.root.cert, skipMtlsUriRegex: ['^/public/'] } });
  store.set({ id: 'open', ...server, snis: ['open.test'] });
  store.set({ id: 'deep', ...server, snis: ['deep.test'], client: { ca: pki.root.cert, depth: 2 } });
  store.set({ id: 'zero', ...server, snis: ['zero.test'], client: { ca: pki.root.cert, depth: 0 } });
  store.set({ id: 'tls13', ...server, snis: ['tls13.test'], client: { ca: pki.root.cert }, sslProtocols: ['TLSv1.3'] });
  store.set({
    id: 'b',
    cert: tenantB.server.chain,
    key: tenantB.server.key,
    snis: ['b.test'],
    client: { ca: tenantB.root.cert },
  });
  srv = await startGuarded(store);
});

after(() => srv.close());

const protocols: [string, (o: RequestOptions) => Promise<Reply>][] = [
  ['HTTP/1.1', request1],
  ['HTTP/2', request2],
];

function lastReason(): string | undefined {
  return srv.rejects.at(-1)?.reason;
}

for (const [proto, send] of protocols) {
  describe(`guard matrix over ${proto}`, () => {
    const expectOk = async (o: Omit<RequestOptions, 'port'>, sslId = 'a') => {
      const r = await send({ port: srv.port, ...o });
      assert.equal(r.status, 200, r.body);
      const body = JSON.parse(r.body);
      assert.equal(body.sslId, sslId);
      return body;
    };
    const expectReject = async (o: Omit<RequestOptions, 'port'>, reason: string) => {
      const before = srv.rejects.length;
      const r = await send({ port: srv.port, ...o });
      assert.equal(r.status, 400);
      assert.match(r.body, /<title>400 Bad Request<\/title>/);
      assert.equal(srv.rejects.length, before + 1);
      assert.equal(lastReason(), reason);
      return r;
    };

    test('valid client certificate passes and exposes the identity', async () => {
      const body = await expectOk({ servername: 'a.test', client: certs.valid });
      assert.match(body.subject, /^CN=client-valid-\d+,O=mtls-gate$/);
    });
    test('RSA client certificate passes', async () => {
      await expectOk({ servername: 'a.test', client: certs.rsa });
    });
    test('via an intermediate the client sends', async () => {
      await expectOk({ servername: 'a.test', client: certs.viaIntermediate });
    });
    test('no certificate: missing', async () => {
      await expectReject({ servername: 'a.test' }, 'missing');
    });
    test('another CA: untrusted', async () => {
      await expectReject({ servername: 'a.test', client: certs.otherCa }, 'untrusted');
    });
    test('self-signed: untrusted', async () => {
      await expectReject({ servername: 'a.test', client: certs.selfSigned }, 'untrusted');
    });
    test('expired', async () => {
      await expectReject({ servername: 'a.test', client: certs.expired }, 'expired');
    });
    test('not yet valid', async () => {
      await expectReject({ servername: 'a.test', client: certs.notYetValid }, 'not_yet_valid');
    });
    test('beyond pathLenConstraint: chain_too_long', async () => {
      await expectReject({ servername: 'a.test', client: certs.tooDeep }, 'chain_too_long');
    });
    test('two intermediates, depth 1: chain_too_long', async () => {
      await expectReject({ servername: 'a.test', client: certs.twoIntermediates }, 'chain_too_long');
    });
    test('two intermediates, depth 2: passes', async () => {
      await expectOk({ servername: 'deep.test', client: certs.twoIntermediates }, 'deep');
    });
    test('depth 0 takes only leaves issued by client.ca itself', async () => {
      await expectOk({ servername: 'zero.test', client: certs.valid }, 'zero');
      await expectReject({ servername: 'zero.test', client: certs.viaIntermediate }, 'chain_too_long');
    });
    test('a leaf used as issuer: not_a_ca', async () => {
      await expectReject({ servername: 'a.test', client: certs.nonCaIssuer }, 'not_a_ca');
    });
    test('extendedKeyUsage without clientAuth: bad_purpose', async () => {
      await expectReject({ servername: 'a.test', client: certs.serverAuthOnly }, 'bad_purpose');
    });
    test('unknown critical extension: bad_extension', async () => {
      await expectReject({ servername: 'a.test', client: certs.unknownCriticalExtension }, 'bad_extension');
    });
    test("another tenant's certificate is refused here and accepted by its own tenant", async () => {
      await expectReject({ servername: 'a.test', client: certs.tenantB }, 'untrusted');
      await expectOk({ servername: 'b.test', client: certs.tenantB }, 'b');
      await expectReject({ servername: 'b.test', client: certs.valid }, 'untrusted');
    });
    test('SNI of an open object + Host of an mTLS object: sni_host_mismatch', async () => {
      await expectReject({ servername: 'open.test', host: 'a.test', client: certs.valid }, 'sni_host_mismatch');
      await expectReject({ servername: 'open.test', host: 'A.TEST:8443', client: certs.valid }, 'sni_host_mismatch');
    });
    test('SNI of one mTLS tenant + Host of another: sni_host_mismatch', async () => {
      await expectReject({ servername: 'b.test', host: 'a.test', client: certs.tenantB }, 'sni_host_mismatch');
    });
    test('Host matching no SSL object is allowed; open object needs no certificate', async () => {
      await expectOk({ servername: 'a.test', host: 'elsewhere.test', client: certs.valid });
      const r = await send({ port: srv.port, servername: 'open.test' });
      assert.equal(r.status, 200);
    });
    test('skip-list hit passes without a certificate, and with a bad one', async () => {
      const r = await send({ port: srv.port, servername: 'a.test', path: '/public/info?x=1' });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).subject, null);
      assert.equal(
        (await send({ port: srv.port, servername: 'a.test', path: '/public/info', client: certs.otherCa })).status,
        200,
      );
    });
    test('skip-list miss and path tricks need the certificate', async () => {
      for (const path of [
        '/private',
        '/x/public/y',
        '/public/../v1/json',
        '/public/%2e%2e/v1/json',
        '/public%2f..%2fv1',
        '/%70ublic/../v1',
      ]) {
        await expectReject({ servername: 'a.test', path }, 'missing');
      }
      await expectReject({ servername: 'a.test', path: '/private', client: certs.otherCa }, 'untrusted');
    });
    test('sslProtocols: TLS 1.2 connection to a TLS 1.3-only object is refused', async () => {
      if (proto === 'HTTP/2') {
        await expectOk({ servername: 'tls13.test', client: certs.valid }, 'tls13');
        return;
      }
      await expectOk({ servername: 'tls13.test', client: certs.valid, maxVersion: 'TLSv1.3' }, 'tls13');
      await expectReject(
        { servername: 'tls13.test', client: certs.valid, maxVersion: 'TLSv1.2' },
        'protocol_not_allowed',
      );
    });
  });
}

describe('rejection response', () => {
  test('HTTP/1.1: 400, default page of 154 bytes, Connection: close', async () => {
    const r = await request1({ port: srv.port, servername: 'a.test' });
    assert.equal(r.status, 400);
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.body.length, 154);
    assert.match(r.body, /<hr><center>mtls-gate<\/center>/);
  });
  test('HTTP/2: 400 and the same page', async () => {
    const r = await request2({ port: srv.port, servername: 'a.test' });
    assert.equal(r.status, 400);
    assert.equal(r.headers['content-length'], '154');
  });
  test('clients preferring JSON get {"error_msg": ...}', async () => {
    const r = await request1({ port: srv.port, servername: 'a.test', headers: { accept: 'application/json' } });
    assert.equal(r.status, 400);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(r.body), { error_msg: '400 Bad Request' });
  });
  test('apisix preset is byte-exact, reason only when exposed, throwing onReject is contained', async () => {
    const other = await startGuarded(store, {
      page: 'apisix',
      exposeReason: true,
      onReject: () => {
        throw new Error('logger down');
      },
    });
    try {
      const r = await request1({ port: other.port, servername: 'a.test' });
      assert.equal(r.status, 400);
      const apisix =
        '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n';
      assert.equal(Buffer.byteLength(apisix), 154);
      assert.ok(r.body.startsWith(apisix));
      assert.match(r.body.slice(154), /reason: missing/);
      const j = await request1({
        port: other.port,
        servername: 'a.test',
        client: certs.expired,
        headers: { accept: 'application/json' },
      });
      assert.deepEqual(JSON.parse(j.body), { error_msg: '400 Bad Request', reason: 'expired' });
    } finally {
      await other.close();
    }
  });
  test('the reason is not in the body by default', async () => {
    const r = await request1({ port: srv.port, servername: 'a.test', client: certs.expired });
    assert.equal(r.status, 400);
    assert.doesNotMatch(r.body, /expired/);
  });
});

describe('caching and connection state', () => {
  test('a chain is verified once; new connections with it hit the cache', async () => {
    const c = await pki.client('valid');
    const s0 = store.verifierStats();
    for (let i = 0; i < 3; i++)
      assert.equal((await request1({ port: srv.port, servername: 'a.test', client: c })).status, 200);
    const s1 = store.verifierStats();
    assert.equal(s1.verifications - s0.verifications, 1);
    assert.ok(s1.cacheHits - s0.cacheHits >= 2);
  });
  test('a CA change applies to requests on an open HTTP/2 connection', async () => {
    const local = createSslStore();
    local.set({
      id: 'x',
      cert: pki.server.chain,
      key: pki.server.key,
      snis: ['a.test'],
      client: { ca: pki.root.cert },
    });
    const s = await startGuarded(local);
    const http2 = await import('node:http2');
    const session = http2.connect(`https://127.0.0.1:${s.port}`, {
      servername: 'a.test',
      rejectUnauthorized: false,
      cert: certs.valid.chain,
      key: certs.valid.key,
    });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const st = session.request({ ':path': '/', ':authority': 'a.test' });
        st.on('response', (h) => resolve(Number(h[':status'])));
        st.on('error', reject);
        st.resume();
        st.end();
      });
    try {
      assert.equal(await get(), 200);
      assert.equal(await get(), 200);
      local.set({
        id: 'x',
        cert: pki.server.chain,
        key: pki.server.key,
        snis: ['a.test'],
        client: { ca: pki.otherRoot.cert },
      });
      assert.equal(await get(), 400);
      assert.equal(s.rejects.at(-1)?.reason, 'untrusted');
    } finally {
      session.close();
      await s.close();
    }
  });
});

describe('session resumption', () => {
  test('tickets are off by default: no resumption', async () => {
    const first = await request1({ port: srv.port, servername: 'a.test', client: certs.valid, maxVersion: 'TLSv1.3' });
    assert.equal(first.status, 200);
    const again = await request1({
      port: srv.port,
      servername: 'a.test',
      session: first.session,
      client: certs.valid,
      maxVersion: 'TLSv1.3',
    });
    assert.equal(again.reused, false);
  });

  describe('with sessionTickets: true', () => {
    let t: TestServer;
    before(async () => {
      t = await startGuarded(store, {}, { sessionTickets: true });
    });
    after(() => t.close());

    const resume = async (first: Omit<RequestOptions, 'port'>, second: Omit<RequestOptions, 'port'>) => {
      const a = await request1({ port: t.port, maxVersion: 'TLSv1.3', ...first });
      // TLS 1.3 tickets arrive after the handshake; the helper keeps the last one seen.
      assert.ok(a.session, 'a session ticket was issued');
      const b = await request1({ port: t.port, maxVersion: 'TLSv1.3', session: a.session, ...second });
      return { a, b };
    };

    test('same SNI with a certificate resumes and passes', async () => {
      const { a, b } = await resume({ servername: 'a.test', client: certs.viaIntermediate }, { servername: 'a.test' });
      assert.equal(a.status, 200);
      assert.equal(b.reused, true);
      assert.equal(b.status, 200, b.body);
    });
    test('resumed TLS 1.3 session without a certificate is missing, not authorized', async () => {
      const { a, b } = await resume({ servername: 'a.test' }, { servername: 'a.test' });
      assert.equal(a.status, 400);
      assert.equal(b.reused, true);
      assert.equal(b.status, 400);
      assert.equal(t.rejects.at(-1)?.reason, 'missing');
    });
    test("session made under one tenant's SNI and resumed under another's is refused", async () => {
      const { a, b } = await resume({ servername: 'a.test', client: certs.valid }, { servername: 'b.test' });
      assert.equal(a.status, 200);
      assert.equal(b.reused, true);
      assert.equal(b.status, 400);
      assert.equal(t.rejects.at(-1)?.reason, 'unverified_session');
    });
    test('session resumed under another SNI of the same CA set is refused too', async () => {
      const { a, b } = await resume({ servername: 'a.test', client: certs.valid }, { servername: 'deep.test' });
      assert.equal(a.status, 200);
      assert.equal(b.reused, true);
      assert.equal(b.status, 400);
      assert.equal(t.rejects.at(-1)?.reason, 'unverified_session');
    });
    test('session from an open SNI resumed under an mTLS SNI is refused', async () => {
      const { b } = await resume({ servername: 'open.test' }, { servername: 'a.test' });
      assert.equal(b.reused, true);
      assert.equal(b.status, 400);
    });
    test('a session whose certificate OpenSSL refused does not pass on resumption', async () => {
      const { a, b } = await resume({ servername: 'a.test', client: certs.expired }, { servername: 'a.test' });
      assert.equal(a.status, 400);
      assert.equal(b.reused, true);
      assert.equal(b.status, 400);
      assert.equal(t.rejects.at(-1)?.reason, 'unverified_session');
    });
    test('resumed TLS 1.2 session (Node reports no SNI): bound by Host to the object that verified it', async () => {
      const a = await request1({ port: t.port, servername: 'a.test', client: certs.valid, maxVersion: 'TLSv1.2' });
      assert.equal(a.status, 200);
      const b = await request1({ port: t.port, servername: 'a.test', session: a.session, maxVersion: 'TLSv1.2' });
      assert.equal(b.reused, true);
      assert.equal(b.status, 200, b.body);
      assert.equal(JSON.parse(b.body).sslId, 'a');
      const c = await request1({
        port: t.port,
        servername: 'a.test',
        host: 'b.test',
        session: a.session,
        maxVersion: 'TLSv1.2',
      });
      assert.equal(c.reused, true);
      assert.equal(c.status, 400);
      assert.equal(t.rejects.at(-1)?.reason, 'unverified_session');
      const d = await request1({
        port: t.port,
        servername: 'a.test',
        host: 'nowhere.test',
        session: a.session,
        maxVersion: 'TLSv1.2',
      });
      assert.equal(d.reused, true);
      assert.equal(d.status, 400);
      assert.equal(t.rejects.at(-1)?.reason, 'no_sni');
    });
    test('a configuration change rotates ticket keys of attached servers: old sessions do a full handshake', async () => {
      const a = await request1({ port: t.port, servername: 'a.test', client: certs.valid, maxVersion: 'TLSv1.3' });
      store.set({ id: 'open', cert: pki.server.chain, key: pki.server.key, snis: ['open.test'] });
      const b = await request1({
        port: t.port,
        servername: 'a.test',
        session: a.session,
        client: certs.valid,
        maxVersion: 'TLSv1.3',
      });
      assert.equal(b.reused, false);
      assert.equal(b.status, 200);
    });
  });
});

describe('plain HTTP', () => {
  const plainServer = async (options: { allowPlainHttp?: boolean }) => {
    const rejects: string[] = [];
    const guard = mtlsGuard({ store, ...options, onReject: (i) => rejects.push(i.reason) });
    const server = http.createServer((req, res) => guard(req, res, () => res.end(String(getClientIdentity(req)))));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const get = (host: string, path = '/admin') =>
      new Promise<number>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          })
          .on('error', reject);
      });
    return { get, rejects, close: () => new Promise<void>((r) => server.close(() => r())) };
  };

  test('by default a guard without TLS refuses every request (plain_http), and onReject hears of it', async () => {
    const s = await plainServer({});
    try {
      for (const host of ['a.test', 'open.test', 'unknown.test', 'x.y.a.test'])
        assert.equal(await s.get(host), 400, host);
      assert.deepEqual(s.rejects, ['plain_http', 'plain_http', 'plain_http', 'plain_http']);
    } finally {
      await s.close();
    }
  });

  test('with allowPlainHttp: hosts of mTLS objects are refused (missing); other hosts pass without identity', async () => {
    const s = await plainServer({ allowPlainHttp: true });
    try {
      assert.equal(await s.get('a.test'), 400);
      assert.equal(await s.get('open.test'), 200);
      assert.equal(await s.get('unknown.test'), 200);
      assert.deepEqual(s.rejects, ['missing']);
    } finally {
      await s.close();
    }
  });
});

describe('guard options', () => {
  test('bad options throw coded errors naming the field', () => {
    assert.throws(() => mtlsGuard({ store, pgae: 'apisix' } as never), {
      code: 'ERR_MTLS_UNKNOWN_FIELD',
      field: 'pgae',
    });
    assert.throws(() => mtlsGuard({ store: {} as SslStore }), { code: 'ERR_MTLS_INVALID_OPTION', field: 'store' });
    assert.throws(() => mtlsGuard({ store, page: 'nginx' as never }), {
      code: 'ERR_MTLS_INVALID_OPTION',
      field: 'page',
    });
    assert.throws(() => mtlsGuard({ store, format: 'xml' as never }), {
      code: 'ERR_MTLS_INVALID_OPTION',
      field: 'format',
    });
    assert.throws(() => mtlsGuard({ store, onReject: 'log' as never }), {
      code: 'ERR_MTLS_INVALID_OPTION',
      field: 'onReject',
    });
  });
  test('the middleware is a named function', () => {
    assert.equal(mtlsGuard({ store }).name, 'mtlsGuardMiddleware');
  });
});

describe('two guards with different stores on one server', () => {
  test("a connection's verdict under one store is never reused under the other, even at equal store generations", async () => {
    const server = { cert: pki.server.chain, key: pki.server.key };
    const storeA = createSslStore();
    storeA.set({ id: 'a', ...server, snis: ['a.test'], client: { ca: pki.root.cert } });
    // Same name, same number of changes (so the same generation), another tenant's CA.
    const storeB = createSslStore();
    storeB.set({ id: 'a', ...server, snis: ['a.test'], client: { ca: tenantB.root.cert } });
    const guardA = mtlsGuard({ store: storeA, exposeReason: true, format: 'json' });
    const guardB = mtlsGuard({ store: storeB, exposeReason: true, format: 'json' });
    const https = await import('node:https');
    const s = await listen(
      https.createServer(storeA.tlsOptions(), (req, res) =>
        guardA(req, res, () => (req.url === '/b' ? guardB(req, res, () => res.end('both')) : res.end('a'))),
      ),
    );
    try {
      const a = await request1({ port: s.port, servername: 'a.test', path: '/a', client: certs.valid });
      assert.equal(a.status, 200, a.body);
      const b = await request1({ port: s.port, servername: 'a.test', path: '/b', client: certs.valid });
      assert.equal(b.status, 400, 'store B trusts tenant b only');
      assert.match(b.body, /untrusted/);
    } finally {
      await s.close();
    }
  });
});
