// Findings of the attacker review of per-route policy, each as the sequence the reviewer's probe ran:
// a policy on the plain listener, a policy list matched the way Express routes, the route judged is
// the route served across a router update, a subject outside Latin-1 on a WebSocket with XFCC, odd
// rejectResponse returns, a NUL inside a SAN, identity and method-override headers, upgrade tokens.

import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import express from 'express';
import WebSocket, { WebSocketServer } from 'ws';
import { mtlsGuard as expressGuard } from '../../src/adapters/express.js';
import { createGateway, createRouter, createSslStore, type Gateway, mtlsGuard } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
let alice: TestCert;
let polish: TestCert;
let upA: http.Server;
let upB: http.Server;
const urlOf = (s: http.Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
const listen = async (s: http.Server | https.Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
};

before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  alice = await pki.client('valid');
  polish = await pki.root.issue({ subject: 'CN=Łukasz Żółć' });
  upA = http.createServer((req, res) => res.end(JSON.stringify({ up: 'A', url: req.url, headers: req.headers })));
  upB = http.createServer((req, res) => res.end(JSON.stringify({ up: 'B', url: req.url })));
  new WebSocketServer({ server: upA }).on('connection', (ws, req) =>
    ws.send(String(req.headers['x-forwarded-client-cert'])),
  );
  await listen(upA);
  await listen(upB);
});
after(() => {
  upA.close();
  upB.close();
});

test('a route that asks for a certificate is refused on the plain listener (hostless routes and hosts without an SSL object)', async () => {
  const gw: Gateway = await createGateway({
    listen: [{ port: 0 }, { port: 0, tls: false }],
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'any',
        upstream: urlOf(upA),
        routes: [
          { name: 'admin', path: '/admin*', mtls: { allow: { subject: ['CN=ops'] } } },
          { name: 'open', path: '/open', mtls: { mode: 'off' } },
        ],
      },
    ],
  });
  try {
    const port = gw.addresses[1]!.port;
    const get = (path: string) =>
      new Promise<number>((resolve, reject) =>
        http
          .get(
            { host: '127.0.0.1', port, path, headers: { host: 'anything.test' } },
            (res) => (res.resume(), resolve(res.statusCode!)),
          )
          .on('error', reject),
      );
    assert.equal(await get('/admin/secret'), 400);
    assert.equal(await get('/open'), 200);
  } finally {
    await gw.close();
  }
});

test('a policy list matches as Express routes: case, trailing slash, encoded dot segments', async () => {
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['app.test'],
    client: { ca: pki.root.cert },
  });
  const app = express();
  app.use(
    expressGuard({
      store,
      policies: [
        { path: '/admin', methods: ['POST'], mtls: { allow: { subject: ['CN=ops,O=Example'] } } },
        { path: '/ops', pathType: 'prefix', mtls: { allow: { subject: ['CN=ops,O=Example'] } } },
      ],
    }),
  );
  app.post('/admin', (_req, res) => void res.end('ADMIN'));
  app.use('/ops', (_req, res) => void res.end('OPS'));
  app.use((_req, res) => void res.end('other'));
  const server = store.attach(https.createServer(store.tlsOptions(), app));
  const port = await listen(server);
  try {
    for (const path of ['/admin', '/admin/', '/Admin'])
      assert.equal(
        (await testRequest({ port, servername: 'app.test', method: 'POST', path, client: alice })).status,
        403,
        path,
      );
    for (const path of ['/ops/x', '/OPS/x', '/ops/%2e%2e/x', '/ops/..%2fx', '/ops/x%2fy'])
      assert.equal((await testRequest({ port, servername: 'app.test', path, client: alice })).status, 403, path);
    assert.equal(
      (await testRequest({ port, servername: 'app.test', path: '/elsewhere', client: alice })).body,
      'other',
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('the route judged is the route served, even when the router changes in between', async () => {
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['app.test'],
    client: { ca: pki.root.cert },
  });
  const router = createRouter({
    services: [
      { name: 'a', upstream: urlOf(upA), routes: [{ name: 'admin', path: '/admin*', mtls: { mode: 'optional' } }] },
    ],
  });
  const guard = mtlsGuard({ store, policies: router });
  const server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) =>
      guard(req, res, () =>
        setImmediate(() => {
          // Tightened while the request was in an async step: a new, stricter route for the path.
          router.update([
            {
              name: 'b',
              upstream: urlOf(upB),
              routes: [{ name: 'admin-x', path: '/admin/x', mtls: { allow: { subject: ['CN=ops'] } } }],
            },
          ]);
          router(req, res);
        }),
      ),
    ),
  );
  const port = await listen(server);
  try {
    const r = await testRequest({ port, servername: 'app.test', path: '/admin/x' });
    assert.equal(r.json<{ up: string }>().up, 'A', 'served by the route whose policy was judged');
    assert.equal(
      (await testRequest({ port, servername: 'app.test', path: '/admin/x' })).status,
      400,
      'the next request is judged by the new route (no certificate)',
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await router.close();
  }
});

test('a subject outside Latin-1 is escaped in XFCC (requests and WebSocket); upgrade tokens other than websocket are refused', async () => {
  const gw = await createGateway({
    listen: [{ port: 0 }],
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'a',
        enableWebsocket: true,
        upstream: urlOf(upA),
        forwardClientCert: { xfcc: 'sanitize-set', details: ['subject'] },
        routes: [{ name: 'all', path: '/*' }],
      },
    ],
  });
  try {
    const port = gw.addresses[0]!.port;
    const r = await testRequest({ port, servername: 'app.test', path: '/x', client: polish });
    assert.equal(r.status, 200);
    const xfcc = r.json<{ headers: Record<string, string> }>().headers['x-forwarded-client-cert']!;
    assert.equal(xfcc, `Hash=${polish.fingerprint256};Subject="CN=\\C5\\81ukasz \\C5\\BB\\C3\\B3\\C5\\82\\C4\\87"`);
    const first = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, {
        servername: 'app.test',
        headers: { host: 'app.test' },
        rejectUnauthorized: false,
        cert: polish.cert,
        key: polish.key,
      } as WebSocket.ClientOptions);
      ws.once('message', (m) => (ws.close(), resolve(String(m))));
      ws.once('error', reject);
    });
    assert.equal(first, xfcc);
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        {
          port,
          host: '127.0.0.1',
          servername: 'app.test',
          rejectUnauthorized: false,
          cert: alice.cert,
          key: alice.key,
          ALPNProtocols: ['http/1.1'],
        },
        () =>
          s.write(
            'GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          ),
      );
      let got = '';
      s.on('data', (c) => (got += String(c)));
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
  } finally {
    await gw.close();
  }
});

test('rejectResponse returning a body of another type, or headers that throw: the standard page, no crash', async () => {
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['app.test'],
    client: { ca: pki.root.cert },
  });
  const answers = [
    { body: { not: 'bytes' } },
    { body: 403 },
    {
      get headers(): Record<string, string> {
        throw new Error('getter');
      },
    },
  ] as never[];
  let i = 0;
  const guard = mtlsGuard({ store, rejectResponse: () => answers[i++ % answers.length] });
  const server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => res.end('ok'))),
  );
  const port = await listen(server);
  const onWarning = () => {};
  process.on('warning', onWarning);
  try {
    for (let n = 0; n < 3; n++) {
      const r = await testRequest({ port, servername: 'app.test' });
      assert.equal(r.status, 400);
      assert.match(r.body, /400 Bad Request/);
    }
  } finally {
    process.off('warning', onWarning);
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a NUL inside a SAN matches no matcher; identity and method-override headers never reach the upstream', async () => {
  const nul = await pki.root.issue({
    subject: 'CN=nul',
    san: { dns: ['admin.corp.example\0.attacker.test'], uri: ['spiffe://prod.example/admin\0/x'] },
  });
  const gw = await createGateway({
    listen: [{ port: 0 }],
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'a',
        upstream: urlOf(upA),
        routes: [
          { name: 'dns', path: '/dns', mtls: { allow: { san: [{ type: 'dns', prefix: 'admin.corp.example' }] } } },
          {
            name: 'spiffe',
            path: '/spiffe',
            mtls: { allow: { san: [{ type: 'uri', prefix: 'spiffe://prod.example/' }] } },
          },
          { name: 'echo', path: '/echo' },
        ],
      },
    ],
  });
  try {
    const port = gw.addresses[0]!.port;
    assert.equal((await testRequest({ port, servername: 'app.test', path: '/dns', client: nul })).status, 403);
    assert.equal((await testRequest({ port, servername: 'app.test', path: '/spiffe', client: nul })).status, 403);
    const spoof = {
      'x-remote-user': 'admin',
      'x-remote-group': 'system:masters',
      'x-remote-extra-scopes': 'x',
      'x-user': 'admin',
      'x-authenticated-user': 'admin',
      'x-http-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-method-override': 'DELETE',
    };
    for (const protocol of ['http1', 'h2'] as const) {
      const h = (
        await testRequest({ port, protocol, servername: 'app.test', path: '/echo', client: alice, headers: spoof })
      ).json<{ headers: Record<string, string> }>().headers;
      for (const name of Object.keys(spoof)) assert.equal(h[name], undefined, `${protocol} ${name}`);
    }
  } finally {
    await gw.close();
  }
});
