// The gateway's access log: one line per request with the verdict and the client's fingerprint,
// JSON and the common format, values a client chose escaped; off unless the configuration asks.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createGateway, type GatewayConfig } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
let alice: TestCert;
let upstream: http.Server;
let base: GatewayConfig;

before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  alice = await pki.client('valid');
  upstream = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  base = {
    listen: [{ port: 0 }],
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'app',
        upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        routes: [{ name: 'all', path: '/*' }],
      },
    ],
  };
});
after(() => upstream.close());

const settle = () => new Promise((r) => setTimeout(r, 100));

test('JSON lines: verdict, fingerprint, route, status; a refusal with its reason; off by default', async () => {
  const lines: string[] = [];
  const gw = await createGateway(base, { accessLog: (l) => lines.push(l) });
  try {
    const port = gw.addresses[0]!.port;
    await testRequest({ port, servername: 'app.test', path: '/a?x=1', client: alice });
    await settle();
    assert.deepEqual(lines, [], 'off without accessLog in the configuration');
    gw.apply({ ...base, accessLog: { format: 'json' } });
    await testRequest({ port, servername: 'app.test', path: '/a?x=1', client: alice });
    await testRequest({ port, servername: 'app.test', path: '/b' });
    await testRequest({ port, protocol: 'h2', servername: 'app.test', path: '/c', client: alice });
    await settle();
    const [ok, refused, h2] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 3);
    assert.deepEqual(
      [ok!.method, ok!.target, ok!.status, ok!.verdict, ok!.fingerprint256, ok!.route, ok!.sslId, ok!.sni, ok!.bytes],
      ['GET', '/a?x=1', 200, 'ok', alice.fingerprint256, 'app/all', 'app', 'app.test', 5],
    );
    assert.deepEqual([refused!.status, refused!.verdict, refused!.fingerprint256], [400, 'missing', null]);
    assert.deepEqual(
      [h2!.protocol, h2!.remote, h2!.sni],
      ['HTTP/2.0', '127.0.0.1', 'app.test'],
      'read before the stream leaves its session',
    );
    assert.ok(typeof ok!.ms === 'number');
  } finally {
    await gw.close();
  }
});

test('the common format, with what a client chose escaped', async () => {
  const lines: string[] = [];
  const gw = await createGateway({ ...base, accessLog: { format: 'common' } }, { accessLog: (l) => lines.push(l) });
  try {
    const port = gw.addresses[0]!.port;
    await testRequest({ port, servername: 'app.test', path: '/q?a="b"', client: alice });
    await settle();
    assert.equal(lines.length, 1);
    assert.match(
      lines[0]!,
      new RegExp(
        `^127\\.0\\.0\\.1 - - \\[\\d\\d/[A-Z][a-z]{2}/\\d{4}:\\d\\d:\\d\\d:\\d\\d \\+0000\\] "GET /q\\?a=\\\\x22b\\\\x22 HTTP/1\\.1" 200 5 "ok" "${alice.fingerprint256}" [\\d.]+$`,
      ),
    );
  } finally {
    await gw.close();
  }
});
