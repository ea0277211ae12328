// mtls-gate/hono beyond the shared matrix (test/adapters/matrix.test.ts runs the guard's cases on
// Hono through @hono/node-server, HTTP/1.1 and HTTP/2): the refusal as Hono sees it, the server made
// with createAdaptorServer, Hono without Node bindings, and the adapter findings of attacks.test.ts
// (10: disguised skip-list paths; 14: X-Forwarded-Host naming another tenant).

import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createAdaptorServer, getRequestListener, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { type MtlsVariables, mtlsGuard } from '../../src/adapters/hono.js';
import type { SslStore } from '../../src/index.js';
import {
  startTestServer,
  type TestCert,
  type TestHandler,
  type TestServer,
  testRequest,
} from '../../src/testing/index.js';
import { twoTenants } from './tenants.js';

let store: SslStore;
let certA: TestCert;
let certB: TestCert;
const subjectOf = (c: TestCert) => c.subject.split('\n').reverse().join(',');
type E = { Bindings: HttpBindings; Variables: MtlsVariables };

before(async () => {
  ({ store, certA, certB } = await twoTenants());
});

describe('through @hono/node-server on HTTP/2 with HTTP/1.1 fallback', () => {
  let server: TestServer;
  let reached = 0;
  const rejects: string[] = [];
  /** What middleware before the guard sees of each response once the chain is done (a logger's view). */
  const seen: number[] = [];
  const errors: unknown[] = [];
  before(async () => {
    const app = new Hono<E>();
    app.onError((err, c) => {
      errors.push(err);
      return c.text('error', 500);
    });
    app.use(async (c, next) => {
      await next();
      seen.push(c.res.status);
      // Middleware that decorates every response after next(): must not leak into later requests.
      c.header('x-outer', String(seen.length));
    });
    app.use(mtlsGuard({ store, onReject: (i) => rejects.push(i.reason) }));
    app.get('/public/x', (c) => c.json({ public: true, mtls: c.var.mtls }));
    app.all('/admin/*', (c) => (reached++, c.text('PROTECTED admin')));
    app.get('/users/:id/:action', (c) => (reached++, c.text('PROTECTED users')));
    app.get('/host', (c) => c.text(`host ${c.req.header('x-forwarded-host') ?? c.req.header('host') ?? ''}`));
    app.get('/whoami', (c) => c.json({ subject: c.var.mtls?.subject ?? null }));
    server = await startTestServer(getRequestListener(app.fetch) as unknown as TestHandler, { store, protocol: 'h2' });
  });
  after(() => server.close());

  for (const protocol of ['http1', 'h2'] as const) {
    test(`${protocol}: a refusal is the core's 400, written once; Hono's middleware sees status 400; the handler never runs`, async () => {
      const before = seen.length;
      const r = await testRequest({ port: server.port, protocol, servername: 'a.test', path: '/admin/x' });
      assert.equal(r.status, 400, r.body);
      assert.match(r.body, /<title>400 Bad Request<\/title>/);
      assert.equal(r.headers['x-hono-already-sent'], undefined, 'the marker never reaches the client');
      assert.equal(r.headers['x-outer'], undefined, 'nothing Hono does after the refusal is written');
      assert.equal(rejects.at(-1), 'missing');
      assert.deepEqual(seen.slice(before), [400]);
      assert.equal(reached, 0);
      assert.deepEqual(errors, []);
      // The shared constant is not the response middleware changed.
      assert.equal(RESPONSE_ALREADY_SENT.headers.get('x-outer'), null);
    });

    test(`${protocol}: valid certificate: c.var.mtls; skip-listed path: null`, async () => {
      const ok = await testRequest({
        port: server.port,
        protocol,
        servername: 'a.test',
        path: '/whoami',
        client: certA,
      });
      assert.deepEqual(ok.json(), { subject: subjectOf(certA) });
      assert.ok(ok.headers['x-outer'], "admitted responses are Hono's own");
      const open = await testRequest({ port: server.port, protocol, servername: 'a.test', path: '/public/x' });
      assert.deepEqual(open.json(), { public: true, mtls: null });
      const other = await testRequest({
        port: server.port,
        protocol,
        servername: 'a.test',
        path: '/whoami',
        client: certB,
      });
      assert.equal(other.status, 400);
      assert.equal(rejects.at(-1), 'untrusted');
    });

    test(`${protocol}, finding 10: targets that normalise into the skip-list need the certificate (Hono routes on the WHATWG URL)`, async () => {
      const disguised = [
        '/admin/../public/x',
        '/admin/%2e%2e/public/x',
        '/admin/x/../../public/',
        '/users/../public/',
        '/users/%2e%2e/public/',
        '/%70ublic/x',
        '/admin/.//../public/x',
      ];
      for (const path of disguised) {
        const n = rejects.length;
        const r = await testRequest({ port: server.port, protocol, servername: 'a.test', path });
        assert.equal(r.status, 400, `${path}: ${r.status} ${r.body}`);
        assert.equal(r.body.includes('PROTECTED'), false);
        assert.deepEqual(rejects.slice(n), ['missing'], path);
      }
      assert.equal(reached, 0);
    });

    test(`${protocol}, finding 14: X-Forwarded-Host naming another mTLS tenant is refused`, async () => {
      for (const xfh of ['b.test', 'x.y.b.test', 'a.test, b.test', 'B.TEST:443']) {
        const r = await testRequest({
          port: server.port,
          protocol,
          servername: 'a.test',
          path: '/host',
          client: certA,
          headers: { 'x-forwarded-host': xfh },
        });
        assert.equal(r.status, 400, `${xfh}: ${r.body}`);
        assert.equal(rejects.at(-1), 'sni_host_mismatch');
      }
      const own = await testRequest({
        port: server.port,
        protocol,
        servername: 'a.test',
        path: '/host',
        client: certA,
        headers: { 'x-forwarded-host': 'x.a.test' },
      });
      assert.equal(own.body, 'host x.a.test');
    });
  }
});

test('createAdaptorServer with https.createServer and store.tlsOptions(), attached', async () => {
  const app = new Hono<E>();
  app.use(mtlsGuard({ store }));
  app.get('/whoami', (c) => c.json({ subject: c.var.mtls?.subject ?? null }));
  const server = store.attach(
    createAdaptorServer({
      fetch: app.fetch,
      createServer: https.createServer,
      serverOptions: store.tlsOptions(),
    }) as https.Server,
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    assert.equal((await testRequest({ port, servername: 'a.test', path: '/whoami' })).status, 400);
    assert.deepEqual((await testRequest({ port, servername: 'a.test', path: '/whoami', client: certA })).json(), {
      subject: subjectOf(certA),
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('without the bindings of @hono/node-server (app.request(), another runtime): fails closed with ERR_MTLS_INVALID_OPTION', async () => {
  const errors: unknown[] = [];
  let reached = 0;
  const app = new Hono<E>();
  app.onError((err, c) => {
    errors.push(err);
    return c.text('error', 500);
  });
  app.use(mtlsGuard({ store }));
  app.get('/', (c) => (reached++, c.text('secret')));
  const r = await app.request('/');
  assert.equal(r.status, 500);
  assert.equal(reached, 0);
  assert.equal((errors[0] as { code?: string }).code, 'ERR_MTLS_INVALID_OPTION');
});

test('options are checked when mtlsGuard() is called', () => {
  assert.throws(() => mtlsGuard({ store, exposeReasons: true } as never), { code: 'ERR_MTLS_UNKNOWN_FIELD' });
  assert.throws(() => mtlsGuard({} as never), { code: 'ERR_MTLS_INVALID_OPTION' });
});
