// The router mounted in Express and Koa: matched requests are proxied, unmatched ones reach the
// framework's next middleware, and a mount point does not change what the routes see.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express5 from 'express';
import express4 from 'express4';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import * as forExpress from '../../src/adapters/express.js';
import * as forKoa from '../../src/adapters/koa.js';
import { createRouter, createSslStore, MtlsGateConfigError, type Router, type SslStore } from '../../src/index.js';
import {
  type CallbackApp,
  createTestPki,
  startTestServer,
  type TestCert,
  type TestHandler,
  testRequest,
} from '../../src/testing/index.js';

let upstream: http.Server;
let router: Router;
let store: SslStore;
let client: TestCert;

before(async () => {
  upstream = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          url: req.url,
          method: req.method,
          received: size,
          subject: req.headers['x-client-subject'] ?? null,
        }),
      );
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  router = createRouter({
    services: [
      {
        name: 'api',
        pathPrefix: '/gw',
        upstream: `http://127.0.0.1:${port}`,
        routes: [
          { name: 'json', path: '/json', methods: ['GET'] },
          { name: 'upload', path: '/upload', methods: ['POST'] },
        ],
      },
    ],
  });
  const pki = await createTestPki({ serverNames: ['gw.test'] });
  client = await pki.client('valid');
  store = createSslStore();
  store.set({
    id: 'gw',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['gw.test'],
    client: { ca: pki.root.cert },
  });
});

after(async () => {
  await router.close();
  await new Promise<void>((r) => upstream.close(() => r()));
});

interface Flavour {
  name: string;
  protocols: ('http1' | 'h2')[];
  /** Guard, then the router mounted at `/gw` where the framework can mount, then a 404 of the app's own. */
  build(): TestHandler | CallbackApp;
  /** Order of events around the proxied request, for frameworks with onion middleware. */
  events?: string[];
}

function expressFlavour(name: string, express: typeof express5): Flavour {
  return {
    name,
    protocols: ['http1'],
    build() {
      const app = express();
      app.use(forExpress.mtlsGuard({ store }));
      app.use('/gw', forExpress.mtlsRouter(router));
      app.use((req, res) => {
        res.status(404).type('text/plain').send(`app 404 ${req.originalUrl}`);
      });
      return app;
    },
  };
}

function koaFlavour(name: string, Koa: typeof Koa3): Flavour {
  const events: string[] = [];
  return {
    name,
    protocols: ['http1', 'h2'],
    events,
    build() {
      const app = new Koa();
      app.use(async (ctx, next) => {
        await next();
        // Runs after the router's middleware resolved: the proxied response must be over.
        if (ctx.path.startsWith('/gw/')) events.push(`after next: finished=${ctx.res.writableFinished}`);
      });
      app.use(forKoa.mtlsGuard({ store }));
      app.use(forKoa.mtlsRouter(router));
      app.use((ctx) => {
        ctx.status = 404;
        ctx.type = 'text/plain';
        ctx.body = `app 404 ${ctx.originalUrl}`;
      });
      return app;
    },
  };
}

const flavours = [
  expressFlavour('express 4', express4),
  expressFlavour('express 5', express5),
  koaFlavour('koa 2', Koa2),
  koaFlavour('koa 3', Koa3),
];

for (const f of flavours) {
  describe(`router on ${f.name}`, () => {
    let server: Awaited<ReturnType<typeof startTestServer>>;
    before(async () => {
      server = await startTestServer(f.build(), { store });
    });
    after(() => server.close());
    for (const protocol of f.protocols) {
      const send = (path: string, extra: Partial<Parameters<typeof testRequest>[0]> = {}) =>
        testRequest({ port: server.port, protocol, servername: 'gw.test', path, client, ...extra });

      test(`${protocol}: a matched route is proxied with the prefix stripped`, async () => {
        const r = await send('/gw/json?x=1');
        assert.equal(r.status, 200, r.body);
        assert.deepEqual(r.json(), { url: '/json?x=1', method: 'GET', received: 0, subject: null });
        if (f.events) assert.equal(f.events.at(-1), 'after next: finished=true');
      });
      test(`${protocol}: the request body streams through`, async () => {
        const body = Buffer.alloc(300_000, 7);
        const r = await send('/gw/upload', { method: 'POST', body });
        assert.equal(r.status, 200, r.body);
        assert.equal(r.json<{ received: number }>().received, body.length);
      });
      test(`${protocol}: an unmatched request goes to the next middleware`, async () => {
        const r = await send('/gw/nothing');
        assert.equal(r.status, 404);
        assert.equal(r.body, 'app 404 /gw/nothing');
        const method = await send('/gw/json', { method: 'DELETE' });
        assert.equal(method.status, 404, 'a method mismatch falls through too');
      });
      test(`${protocol}: the guard still runs first`, async () => {
        const r = await testRequest({ port: server.port, protocol, servername: 'gw.test', path: '/gw/json' });
        assert.equal(r.status, 400);
      });
    }
  });
}

test('mounting something that is not a router fails with the field named', () => {
  for (const adapter of [forExpress, forKoa]) {
    assert.throws(
      () => adapter.mtlsRouter({} as Router),
      (e: unknown) => e instanceof MtlsGateConfigError && e.field === 'router',
    );
  }
});
