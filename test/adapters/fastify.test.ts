// mtls-gate/fastify beyond the shared matrix (test/adapters/matrix.test.ts runs the guard's cases on
// Fastify's HTTPS and HTTP/2 servers): encapsulation, the route-level hook, Fastify's serverFactory,
// what the plugin accepts, a refusal Fastify never writes over, and the adapter findings of
// attacks.test.ts (10: disguised skip-list paths; 12: a guard after the response started;
// 14: X-Forwarded-Host under trustProxy).

import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fastifyMtlsGate, { mtlsGuard, fastifyMtlsGate as named } from '../../src/adapters/fastify.js';
import type { SslStore } from '../../src/index.js';
import { type TestCert, testRequest } from '../../src/testing/index.js';
import { twoTenants } from './tenants.js';

let store: SslStore;
let certA: TestCert;
let certB: TestCert;
const subjectOf = (c: TestCert) => c.subject.split('\n').reverse().join(',');

before(async () => {
  ({ store, certA, certB } = await twoTenants());
});

/** Fastify's log lines at warn and above ("Reply was already sent", errors), for tests to assert on. */
function logSink(): { lines: string[]; logger: FastifyServerOptions['logger'] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, logger: { level: 'warn', stream } };
}

/** Fastify's own HTTPS server from the store's options, attached, on a free port. */
async function listen(app: FastifyInstance<https.Server>): Promise<number> {
  store.attach(app.server);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

const get = (
  port: number,
  path: string,
  client?: TestCert,
  extra: { headers?: Record<string, string>; servername?: string } = {},
) =>
  testRequest({
    port,
    servername: extra.servername ?? 'a.test',
    path,
    ...(client ? { client } : {}),
    ...(extra.headers ? { headers: extra.headers } : {}),
  });

test('the default export is the plugin, also exported by name; it carries the fastify-plugin metadata', () => {
  assert.equal(fastifyMtlsGate, named);
  const meta = fastifyMtlsGate as unknown as Record<symbol, unknown>;
  assert.equal(
    meta[Symbol.for('skip-override')],
    true,
    'not encapsulated: it applies to the context it is registered in',
  );
  assert.deepEqual(meta[Symbol.for('plugin-meta')], { name: 'mtls-gate', fastify: '5.x' });
});

describe('encapsulation: the plugin registered inside an encapsulated plugin', () => {
  let app: FastifyInstance<https.Server>;
  let port: number;
  const rejects: string[] = [];
  before(async () => {
    app = Fastify({ https: store.tlsOptions() });
    await app.register(
      async (secure) => {
        await secure.register(fastifyMtlsGate, { store, onReject: (i) => rejects.push(i.reason) });
        secure.get('/whoami', async (request) => ({ subject: request.mtls?.subject ?? null }));
        // A plugin inside the guarded one inherits its hook.
        await secure.register(
          async (inner) => void inner.get('/inner', async (request) => ({ subject: request.mtls?.subject ?? null })),
        );
      },
      { prefix: '/secure' },
    );
    // A sibling context: not guarded, and `request.mtls` is not even decorated there.
    app.get('/open', async (request) => ({ mtls: request.mtls === undefined ? 'undefined' : request.mtls }));
    port = await listen(app);
  });
  after(() => app.close());

  test('guards the routes of its context and of the contexts inside it', async () => {
    for (const path of ['/secure/whoami', '/secure/inner']) {
      const refused = await get(port, path);
      assert.equal(refused.status, 400, refused.body);
      assert.match(refused.body, /<title>400 Bad Request<\/title>/);
      assert.equal(rejects.at(-1), 'missing');
      const ok = await get(port, path, certA);
      assert.equal(ok.status, 200, ok.body);
      assert.deepEqual(ok.json(), { subject: subjectOf(certA) });
      const other = await get(port, path, certB);
      assert.equal(other.status, 400);
      assert.equal(rejects.at(-1), 'untrusted');
    }
  });

  test('does not guard the routes of the parent or of sibling contexts', async () => {
    const n = rejects.length;
    const r = await get(port, '/open');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { mtls: 'undefined' });
    assert.equal(rejects.length, n);
  });
});

describe('at the root', () => {
  let app: FastifyInstance<https.Server>;
  let port: number;
  let reached = 0;
  const rejects: string[] = [];
  const sink = logSink();
  before(async () => {
    app = Fastify({ https: store.tlsOptions(), logger: sink.logger, trustProxy: true });
    await app.register(fastifyMtlsGate, { store, onReject: (i) => rejects.push(i.reason) });
    app.get('/public/x', async (request) => ({ public: true, mtls: request.mtls }));
    app.get('/admin/*', async () => (reached++, 'PROTECTED admin'));
    app.get('/users/:id/:action', async () => (reached++, 'PROTECTED users'));
    app.get('/host', async (request) => `host ${request.hostname}`);
    app.post('/upload', async (request) => ({ bytes: String(request.body).length }));
    port = await listen(app);
  });
  after(() => app.close());

  test('the 404 handler is guarded too: an unknown path without a certificate is refused, not answered 404', async () => {
    assert.equal((await get(port, '/nowhere')).status, 400);
    assert.equal((await get(port, '/nowhere', certA)).status, 404);
  });

  test('a skip-listed path passes without a certificate, with request.mtls null', async () => {
    const r = await get(port, '/public/x');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { public: true, mtls: null });
  });

  test('the refusal runs before body parsing: a refused POST gets the 400, never the route', async () => {
    const r = await testRequest({
      port,
      servername: 'a.test',
      method: 'POST',
      path: '/upload',
      headers: { 'content-type': 'text/plain' },
      body: 'x'.repeat(1000),
    });
    assert.equal(r.status, 400);
    const ok = await testRequest({
      port,
      servername: 'a.test',
      method: 'POST',
      path: '/upload',
      headers: { 'content-type': 'text/plain' },
      body: 'x'.repeat(1000),
      client: certA,
    });
    assert.deepEqual(ok.json(), { bytes: 1000 });
  });

  test('finding 10: targets that normalise into the skip-list need the certificate', async () => {
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
      const r = await get(port, path);
      assert.equal(r.status, 400, `${path}: ${r.status} ${r.body}`);
      assert.equal(r.body.includes('PROTECTED'), false);
      assert.deepEqual(rejects.slice(n), ['missing'], path);
    }
    assert.equal(reached, 0);
  });

  test('finding 14: with trustProxy, X-Forwarded-Host naming another mTLS tenant is refused', async () => {
    for (const xfh of ['b.test', 'x.y.b.test', 'a.test, b.test', 'B.TEST:443']) {
      const r = await get(port, '/host', certA, { headers: { 'x-forwarded-host': xfh } });
      assert.equal(r.status, 400, `${xfh}: ${r.body}`);
      assert.equal(rejects.at(-1), 'sni_host_mismatch');
    }
    assert.equal(
      (await get(port, '/host', certA, { headers: { 'x-forwarded-host': 'x.a.test' } })).body,
      'host x.a.test',
    );
    assert.equal((await get(port, '/host', certB, { servername: 'b.test' })).body, 'host b.test');
  });

  test('Fastify writes nothing after a refusal: no "Reply already sent", no error logged', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(port, '/admin/x')).status, 400);
    assert.deepEqual(sink.lines, []);
  });
});

test('the hook on one route (`onRequest: mtlsGuard(...)`) guards that route only', async () => {
  const app = Fastify({ https: store.tlsOptions() });
  app.decorateRequest('mtls', null);
  app.get('/admin', { onRequest: mtlsGuard({ store }) }, async (request) => ({
    subject: request.mtls?.subject ?? null,
  }));
  app.get('/info', async (request) => ({ subject: request.mtls?.subject ?? null }));
  const port = await listen(app);
  try {
    assert.equal((await get(port, '/admin')).status, 400);
    assert.deepEqual((await get(port, '/admin', certA)).json(), { subject: subjectOf(certA) });
    assert.deepEqual((await get(port, '/info')).json(), { subject: null });
  } finally {
    await app.close();
  }
});

test('serverFactory: a server made with store.attach(https.createServer(store.tlsOptions(), handler))', async () => {
  const app = Fastify({ serverFactory: (handler) => store.attach(https.createServer(store.tlsOptions(), handler)) });
  await app.register(fastifyMtlsGate, { store });
  app.get('/whoami', async (request) => ({ subject: request.mtls?.subject ?? null }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  try {
    assert.equal((await get(port, '/whoami')).status, 400);
    assert.deepEqual((await get(port, '/whoami', certA)).json(), { subject: subjectOf(certA) });
  } finally {
    await app.close();
  }
});

test('finding 12: a guard that runs after an earlier hook started the response ends the connection; the route never runs', async () => {
  const sink = logSink();
  const rejects: string[] = [];
  let reached = 0;
  const app = Fastify({ https: store.tlsOptions(), logger: sink.logger });
  // Started, not ended: Fastify does not count the reply as sent, so only the hijack stops it.
  app.addHook('onRequest', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/plain' });
    reply.raw.write('early ');
  });
  await app.register(fastifyMtlsGate, { store, onReject: (i) => rejects.push(i.reason) });
  app.get('/secret', async () => (reached++, 'secret'));
  const port = await listen(app);
  try {
    for (let i = 0; i < 3; i++) {
      const got = await testRequest({ port, servername: 'a.test', path: '/secret', timeoutMs: 5000 }).then(
        (r) => `${r.status} ${r.body}`,
        () => 'connection closed',
      );
      assert.doesNotMatch(got, /secret/);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(reached, 0);
    assert.deepEqual(rejects, ['missing', 'missing', 'missing']);
    assert.deepEqual(sink.lines, []);
  } finally {
    await app.close();
  }
});

describe("options are the core guard's, checked when the plugin loads", () => {
  for (const [name, options, code] of [
    ['a typo', { exposeReasons: true }, 'ERR_MTLS_UNKNOWN_FIELD'],
    // A prefix does nothing to a plugin that is not encapsulated: refused rather than misread as "guard this prefix".
    ['a prefix', { prefix: '/admin' }, 'ERR_MTLS_UNKNOWN_FIELD'],
    ['no store', { store: undefined }, 'ERR_MTLS_INVALID_OPTION'],
  ] as const) {
    test(`${name}: ready() rejects with ${code}`, async () => {
      const app = Fastify();
      try {
        await assert.rejects(
          async () => {
            await app.register(fastifyMtlsGate, { store, ...options } as never);
            await app.ready();
          },
          { code },
        );
      } finally {
        await app.close();
      }
    });
  }

  test('mtlsGuard() checks them at once', () => {
    assert.throws(() => mtlsGuard({ store, exposeReasons: true } as never), { code: 'ERR_MTLS_UNKNOWN_FIELD' });
  });
});

test('the plugin registered at the root and again in a child context (or beside the route hook) loads: one request.mtls decorator', async () => {
  const app = Fastify({ https: store.tlsOptions() });
  await app.register(fastifyMtlsGate, { store });
  await app.register(async (child) => {
    await child.register(fastifyMtlsGate, { store });
    child.get('/inner', { onRequest: mtlsGuard({ store }) }, async (req) => req.mtls?.subject ?? null);
  });
  try {
    const port = await listen(app as unknown as FastifyInstance<https.Server>);
    const r = await get(port, '/inner', certA);
    assert.equal(r.status, 200);
    assert.equal(r.body, subjectOf(certA));
  } finally {
    await app.close();
  }
});
