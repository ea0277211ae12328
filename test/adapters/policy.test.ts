// Per-path policies and per-reason statuses through the Express and Koa adapters: the adapters
// translate only, the verdicts are the core guard's.

import assert from 'node:assert/strict';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { before, test } from 'node:test';
import express from 'express';
import Koa from 'koa';
import { mtlsGuard as expressGuard } from '../../src/adapters/express.js';
import { mtlsGuard as koaGuard } from '../../src/adapters/koa.js';
import { createSslStore, type GuardOptions } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
let alice: TestCert;
let ops: TestCert;
before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  alice = await pki.client('valid');
  ops = await pki.root.issue({ subject: 'O=Example, CN=ops' });
});

const options = (store: ReturnType<typeof createSslStore>): GuardOptions => ({
  store,
  statusByReason: { missing: 401 },
  policies: [
    { path: '/public', pathType: 'prefix', mtls: { mode: 'off' } },
    { path: '/admin', mtls: { allow: { subject: ['CN=ops,O=Example'] } } },
  ],
});

for (const framework of ['express', 'koa'] as const) {
  test(`${framework}: off, required (401 by statusByReason), an allow-list (403)`, async () => {
    const store = createSslStore();
    store.set({
      id: 'app',
      cert: pki.server.chain,
      key: pki.server.key,
      snis: ['app.test'],
      client: { ca: pki.root.cert },
    });
    let handler: http.RequestListener;
    if (framework === 'express') {
      const app = express();
      app.use(expressGuard(options(store)));
      app.use((req, res) => void res.end(req.mtls?.subject ?? 'anonymous'));
      handler = app;
    } else {
      const app = new Koa();
      app.use(koaGuard(options(store)));
      app.use((ctx) => {
        ctx.body = (ctx.state as { mtls?: { subject: string } | null }).mtls?.subject ?? 'anonymous';
      });
      handler = app.callback();
    }
    const server = store.attach(https.createServer(store.tlsOptions(), handler));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const ask = (path: string, client?: TestCert) =>
      testRequest({ port, servername: 'app.test', path, ...(client ? { client } : {}) });
    try {
      assert.equal((await ask('/public/app.css')).body, 'anonymous');
      assert.equal((await ask('/orders')).status, 401);
      assert.equal((await ask('/orders', alice)).status, 200);
      assert.equal((await ask('/admin', alice)).status, 403);
      assert.equal((await ask('/admin', ops)).body, 'CN=ops,O=Example');
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
}
