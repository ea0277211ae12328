// WebSocket through the gateway to a real `ws` upstream: the upgrade is judged by the guard and the
// route's policy first (no certificate: 400, nothing reaches the upstream), proxied for services
// with enableWebsocket (identity headers included), refused for the others; `Upgrade: h2c` on the
// plain listener is served as an ordinary request.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { createGateway, type Gateway } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';

let pki: TestPki;
let client: TestCert;
let upstream: http.Server;
let wss: WebSocketServer;
let upgrades = 0;
let gateway: Gateway;

before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  client = await pki.client('valid');
  upstream = http.createServer((req, res) => res.end(`plain ${req.url} upgrade=${req.headers.upgrade ?? ''}`));
  upstream.on('upgrade', () => upgrades++);
  wss = new WebSocketServer({ server: upstream });
  wss.on('connection', (ws, req) => {
    ws.send(
      JSON.stringify({
        url: req.url,
        xfcc: req.headers['x-forwarded-client-cert'] ?? null,
        spoof: req.headers['x-ssl-client-s-dn'] ?? null,
      }),
    );
    ws.on('message', (m) => ws.send(`echo ${String(m)}`));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gateway = await createGateway({
    listen: [{ port: 0 }, { port: 0, tls: false }],
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'chat',
        hosts: ['app.test'],
        enableWebsocket: true,
        upstream: url,
        forwardClientCert: { xfcc: 'sanitize-set' },
        routes: [
          { name: 'ws', path: '/ws' },
          { name: 'lobby', path: '/lobby', mtls: { mode: 'off' } },
        ],
      },
      { name: 'rest', hosts: ['app.test'], upstream: url, routes: [{ name: 'api', path: '/api' }] },
      { name: 'open', upstream: url, routes: [{ name: 'all', path: '/open' }] },
    ],
  });
});
after(async () => {
  await gateway.close();
  wss.close();
  upstream.close();
});

function open(path: string, withCert: boolean): Promise<{ ws?: WebSocket; first?: string; status?: number }> {
  const port = gateway.addresses[0]!.port;
  return new Promise((resolve, reject) => {
    const options = {
      servername: 'app.test',
      headers: { host: 'app.test', 'x-ssl-client-s-dn': 'CN=admin' },
      rejectUnauthorized: false,
      ...(withCert ? { cert: client.cert, key: client.key } : {}),
    };
    const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, options as WebSocket.ClientOptions);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode });
    });
    ws.once('message', (m) => resolve({ ws, first: String(m) }));
    ws.once('error', reject);
  });
}

test('a client with a certificate gets its WebSocket, with its identity and without spoofed headers', async () => {
  const before = upgrades;
  const r = await open('/ws', true);
  assert.ok(r.ws, `status ${r.status}`);
  const first = JSON.parse(r.first!) as { url: string; xfcc: string; spoof: unknown };
  assert.equal(first.url, '/ws');
  assert.equal(first.xfcc, `Hash=${client.fingerprint256}`);
  assert.equal(first.spoof, null);
  const echo = new Promise<string>((resolve) => r.ws!.once('message', (m) => resolve(String(m))));
  r.ws!.send('hello');
  assert.equal(await echo, 'echo hello');
  r.ws!.close();
  assert.equal(upgrades, before + 1);
});

test('an unguarded upgrade never reaches the upstream: no certificate 400; a service without enableWebsocket 400', async () => {
  const before = upgrades;
  assert.equal((await open('/ws', false)).status, 400);
  assert.equal((await open('/api', true)).status, 400);
  assert.equal((await open('/nothing', true)).status, 404);
  assert.equal(upgrades, before, 'nothing reached the upstream');
  // A route whose policy is off takes an upgrade without a certificate.
  const lobby = await open('/lobby', false);
  assert.ok(lobby.ws);
  lobby.ws!.close();
  assert.equal(upgrades, before + 1);
});

test('Upgrade: h2c on the plain listener is served as an ordinary request', async () => {
  const port = gateway.addresses[1]!.port;
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get(
        {
          host: '127.0.0.1',
          port,
          path: '/open',
          headers: {
            host: 'other.test',
            connection: 'Upgrade, HTTP2-Settings',
            upgrade: 'h2c',
            'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA',
          },
        },
        (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(`${res.statusCode} ${b}`));
        },
      )
      .on('error', reject);
  });
  assert.equal(body, '200 plain /open upgrade=');
});

test('without an upgrade handler (the router in a server of your own), an upgrade request is refused, not proxied as a GET', async () => {
  const { createRouter, createSslStore, mtlsGuard } = await import('../../src/index.js');
  const https = await import('node:https');
  const tls = await import('node:tls');
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
      {
        name: 'chat',
        enableWebsocket: true,
        upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        routes: [{ name: 'ws', path: '/ws' }],
      },
    ],
  });
  const guard = mtlsGuard({ store });
  const server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => router(req, res))),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const before = upgrades;
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        {
          port: (server.address() as AddressInfo).port,
          host: '127.0.0.1',
          servername: 'app.test',
          rejectUnauthorized: false,
          cert: client.cert,
          key: client.key,
        },
        () => {
          s.write(
            'GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          );
        },
      );
      let got = '';
      s.on('data', (c) => (got += String(c)));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal(upgrades, before);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await router.close();
  }
});
