// The adapter findings of the second security review (docs/reliability.md, "Security findings"),
// on Express 4 and 5, Koa 2 and 3, and a plain node handler that routes on the raw req.url:
//  10. the skip-list decided on the normalised path while the framework routed the raw one;
//  12. a guard that runs after the response started must not crash the process;
//  14. X-Forwarded-Host under `trust proxy` / `app.proxy` must not cross tenants;
//   6. Express `app.listen()` without TLS is refused by default.

import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { mtlsGuard as expressGuard } from '../../src/adapters/express.js';
import { mtlsGuard as koaGuard } from '../../src/adapters/koa.js';
import { mtlsGuard as coreGuard, createSslStore, type GuardOptions, type SslStore } from '../../src/index.js';
import {
  type CallbackApp,
  createTestPki,
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

before(async () => {
  ({ store, certA, certB } = await twoTenants());
});

/** What a protected handler answers: the tests look for it in bodies that must not have it. */
const PROTECTED = 'PROTECTED';

interface Framework {
  name: string;
  protocols: ('http1' | 'h2')[];
  /**
   * App with the guard first, then protected routes: /admin/..., /users/:id/:action, a mounted router, and a hostname
   * echo.
   */
  build(options: GuardOptions): TestHandler | CallbackApp;
}

function expressApp(express: typeof express5): Framework['build'] {
  return (options) => {
    const app = express();
    app.set('trust proxy', true);
    app.use(expressGuard(options));
    app.use('/admin', (_req, res) => void res.send(`${PROTECTED} admin`));
    app.get(
      '/users/:id/:action',
      (req, res) => void res.send(`${PROTECTED} users ${req.params.id} ${req.params.action}`),
    );
    const mounted = express.Router();
    mounted.get('/panel', (_req, res) => void res.send(`${PROTECTED} mounted panel`));
    app.use('/ops', mounted);
    app.get('/host', (req, res) => void res.send(`host ${req.hostname}`));
    app.get('/public/x', (_req, res) => void res.send('public'));
    return app;
  };
}

function koaApp(Koa: typeof Koa3): Framework['build'] {
  return (options) => {
    const app = new Koa();
    app.proxy = true;
    app.use(koaGuard(options));
    app.use((ctx) => {
      const users = /^\/users\/([^/]+)\/([^/]+)$/.exec(ctx.path);
      if (ctx.path.startsWith('/admin')) ctx.body = `${PROTECTED} admin`;
      else if (users) ctx.body = `${PROTECTED} users ${decodeURIComponent(users[1]!)} ${users[2]}`;
      else if (ctx.path === '/host') ctx.body = `host ${ctx.hostname}`;
      else if (ctx.path === '/public/x') ctx.body = 'public';
      else ctx.status = 404;
    });
    return app;
  };
}

/** A handler routing on the raw req.url, like the README's `req.url === '/whoami'`. */
function nodeApp(options: GuardOptions): TestHandler {
  const guard = coreGuard(options);
  return (req: IncomingMessage, res: ServerResponse) =>
    guard(req, res, () => {
      const url = req.url ?? '/';
      if (url.startsWith('/admin') || url.startsWith('/users/')) res.end(`${PROTECTED} ${url}`);
      else if (url === '/public/x') res.end('public');
      else {
        res.statusCode = 404;
        res.end();
      }
    });
}

const frameworks: Framework[] = [
  { name: 'express 4', protocols: ['http1'], build: expressApp(express4) },
  { name: 'express 5', protocols: ['http1'], build: expressApp(express5) },
  { name: 'koa 2', protocols: ['http1', 'h2'], build: koaApp(Koa2) },
  { name: 'koa 3', protocols: ['http1', 'h2'], build: koaApp(Koa3) },
  { name: 'node (raw req.url)', protocols: ['http1', 'h2'], build: nodeApp },
];

// Each normalises to a skipped /public/... path, and each is routed by the raw target to a protected handler.
const disguised = [
  '/admin/../public/x',
  '/admin/%2e%2e/public/x',
  '/admin/%2E%2E/public/x',
  '/admin/x/../../public/',
  '/users/../public/',
  '/users/%2e%2e/public/',
  '/%70ublic/x',
  '/admin/.//../public/x',
  '/ops/panel/../../public/x',
  '/ops/panel/%2e%2e/%2e%2e/public/x',
];

for (const f of frameworks) {
  describe(`${f.name}`, () => {
    let server: TestServer;
    const rejects: string[] = [];
    before(async () => {
      server = await startTestServer(f.build({ store, onReject: (i) => rejects.push(i.reason) }), { store });
    });
    after(() => server.close());

    for (const protocol of f.protocols) {
      test(`${protocol}, finding 10: ${disguised.length} targets that normalise into the skip-list need the certificate`, async () => {
        for (const path of disguised) {
          const n = rejects.length;
          const r = await testRequest({ port: server.port, protocol, servername: 'a.test', path });
          assert.equal(r.body.includes(PROTECTED), false, `${path} reached a protected handler: ${r.body}`);
          assert.equal(r.status, 400, `${path}: ${r.status} ${r.body}`);
          assert.equal(rejects.length, n + 1);
          assert.equal(rejects.at(-1), 'missing');
        }
        // The canonical skipped path still passes; with the certificate the disguised ones are the app's business.
        assert.equal(
          (await testRequest({ port: server.port, protocol, servername: 'a.test', path: '/public/x' })).body,
          'public',
        );
        assert.equal(
          (await testRequest({ port: server.port, protocol, servername: 'a.test', path: '/admin/x', client: certA }))
            .status,
          200,
        );
      });

      if (f.name.startsWith('node')) continue;
      test(`${protocol}, finding 14: X-Forwarded-Host naming another mTLS tenant is refused (trust proxy / app.proxy on)`, async () => {
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
        // More forwarded names than a proxy chain adds: refused without looking each one up.
        const many = await testRequest({
          port: server.port,
          protocol,
          servername: 'a.test',
          path: '/host',
          client: certA,
          headers: { 'x-forwarded-host': Array.from({ length: 17 }, () => 'a.test').join(', ') },
        });
        assert.equal(many.status, 400);
        const fwd = await testRequest({
          port: server.port,
          protocol,
          servername: 'a.test',
          path: '/host',
          client: certA,
          headers: { forwarded: 'for=1.2.3.4;host=b.test' },
        });
        assert.equal(fwd.status, 400);
        const own = await testRequest({
          port: server.port,
          protocol,
          servername: 'a.test',
          path: '/host',
          client: certA,
          headers: { 'x-forwarded-host': 'x.a.test' },
        });
        assert.equal(own.status, 200);
        assert.equal(own.body, 'host x.a.test');
        const other = await testRequest({
          port: server.port,
          protocol,
          servername: 'b.test',
          path: '/host',
          client: certB,
        });
        assert.equal(other.body, 'host b.test');
      });
    }
  });
}

describe('finding 12: a guard that runs after the response started', () => {
  const get = (port: number, protocol: 'http1' | 'h2' = 'http1') =>
    testRequest({ port, protocol, servername: 'a.test', path: '/secret', timeoutMs: 5000 }).then(
      (r) => `${r.status} ${r.body}`,
      () => 'connection closed',
    );

  for (const [name, Koa] of [
    ['koa 2', Koa2],
    ['koa 3', Koa3],
  ] as const) {
    test(`${name} (h1 and h2): an earlier middleware that does not await next(): no crash, the handler after the guard never runs, onReject hears of it`, async () => {
      const rejects: string[] = [];
      let reached = 0;
      const app = new Koa();
      app.use((ctx, next) => {
        void next();
        ctx.body = 'early';
      });
      app.use(async (_ctx, next) => {
        await new Promise((r) => setTimeout(r, 20));
        await next();
      });
      app.use(koaGuard({ store, onReject: (i) => rejects.push(i.reason) }));
      app.use((ctx) => {
        reached++;
        ctx.body = 'secret';
      });
      const server = await startTestServer(app, { store });
      try {
        for (const protocol of ['http1', 'h2', 'http1', 'h2'] as const)
          assert.notEqual(await get(server.port, protocol), '200 secret');
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(reached, 0);
        assert.equal(rejects.length, 4, 'onReject hears of every late refusal');
        // HTTP/1.1: the certificate is judged. HTTP/2: Koa has ended the stream, whose session (and
        // TLS socket) the request no longer reaches, so the guard sees no TLS: refused all the same.
        assert.deepEqual([rejects[0], rejects[2]], ['missing', 'missing']);
        for (const r of [rejects[1], rejects[3]]) assert.ok(r === 'missing' || r === 'plain_http', r);
      } finally {
        await server.close();
      }
    });
  }

  for (const [name, express] of [
    ['express 4', express4],
    ['express 5', express5],
  ] as const) {
    test(`${name}: a middleware that answered and called next(): no throw into the error handler, the handler never runs`, async () => {
      const rejects: string[] = [];
      const errors: unknown[] = [];
      let reached = 0;
      const app = express();
      app.use((_req, res, next) => {
        res.end('early');
        next();
      });
      app.use(expressGuard({ store, onReject: (i) => rejects.push(i.reason) }));
      app.use((_req, res) => {
        reached++;
        res.end('secret');
      });
      app.use((err: unknown, _req: unknown, _res: unknown, next: (e?: unknown) => void) => {
        errors.push(err);
        next();
      });
      const server = await startTestServer(app, { store });
      try {
        for (let i = 0; i < 3; i++) assert.notEqual(await get(server.port), '200 secret');
        assert.equal(reached, 0);
        assert.deepEqual(errors, []);
        assert.deepEqual(rejects, ['missing', 'missing', 'missing']);
      } finally {
        await server.close();
      }
    });
  }
});

describe('finding 6: Express app.listen() without TLS', () => {
  for (const [name, express] of [
    ['express 4', express4],
    ['express 5', express5],
  ] as const) {
    test(`${name}: every request is refused (plain_http) unless allowPlainHttp`, async () => {
      for (const allowPlainHttp of [false, true]) {
        const rejects: string[] = [];
        const app = express();
        app.use(expressGuard({ store, allowPlainHttp, onReject: (i) => rejects.push(i.reason) }));
        app.get('/admin', (req, res) => void res.send(`admin ${String(req.mtls)}`));
        const server = app.listen(0, '127.0.0.1');
        await new Promise((r) => server.once('listening', r));
        const port = (server.address() as AddressInfo).port;
        const status = (host: string) =>
          new Promise<number>((resolve, reject) =>
            http
              .get({ host: '127.0.0.1', port, path: '/admin', headers: { host }, agent: false }, (res) => {
                res.resume();
                resolve(res.statusCode!);
              })
              .on('error', reject),
          );
        try {
          assert.equal(await status('open.test'), allowPlainHttp ? 200 : 400);
          assert.equal(await status('a.test'), 400);
          assert.deepEqual(rejects, allowPlainHttp ? ['missing'] : ['plain_http', 'plain_http']);
        } finally {
          await new Promise<void>((r) => server.close(() => r()));
        }
      }
    });
  }
});

describe('findings 11 and 13 through the adapters', () => {
  const pair = async () => {
    const pki = await createTestPki({ serverNames: ['r.test'], name: 'redos' });
    return { cert: pki.server.chain, key: pki.server.key, ca: pki.root.cert };
  };
  for (const [name, make] of [
    [
      'express 4',
      () => {
        const app = express4();
        return (o: GuardOptions) => (app.use(expressGuard(o)), app.use((_q, r) => void r.end('skipped')), app);
      },
    ],
    [
      'express 5',
      () => {
        const app = express5();
        return (o: GuardOptions) => (app.use(expressGuard(o)), app.use((_q, r) => void r.end('skipped')), app);
      },
    ],
    [
      'koa 2',
      () => {
        const app = new Koa2();
        return (o: GuardOptions) => (app.use(koaGuard(o)), app.use((ctx) => void (ctx.body = 'skipped')), app);
      },
    ],
    [
      'koa 3',
      () => {
        const app = new Koa3();
        return (o: GuardOptions) => (app.use(koaGuard(o)), app.use((ctx) => void (ctx.body = 'skipped')), app);
      },
    ],
  ] as const) {
    test(`${name}: the reviewers' ReDoS patterns answer hostile paths at once; a polluted Object.prototype does not reach the guard's options`, async () => {
      const m = await pair();
      const s = createSslStore();
      s.set({
        id: 'r',
        cert: m.cert,
        key: m.key,
        snis: ['r.test'],
        client: { ca: m.ca, skipMtlsUriRegex: ['(a+)+$', '^/assets/([a-z0-9]+-?)*\\.css$'] },
      });
      const proto = Object.prototype as Record<string, unknown>;
      proto.allowPlainHttp = true;
      proto.exposeReason = true;
      let app: TestHandler | CallbackApp;
      try {
        app = (make() as (o: GuardOptions) => TestHandler | CallbackApp)({ store: s });
      } finally {
        delete proto.allowPlainHttp;
        delete proto.exposeReason;
      }
      const server = await startTestServer(app, { store: s });
      try {
        for (const path of [`/${'a'.repeat(28)}!`, `/assets/${'a1-'.repeat(12)}!`, `/assets/${'a1-'.repeat(600)}!`]) {
          const r = await testRequest({ port: server.port, servername: 'r.test', path });
          assert.equal(r.status, 400, path.slice(0, 30));
          assert.equal(r.body.includes('reason'), false, 'exposeReason was not inherited');
        }
        assert.equal(
          (await testRequest({ port: server.port, servername: 'r.test', path: '/assets/app-1.css' })).body,
          'skipped',
        );
      } finally {
        await server.close();
      }
    });
  }
});
