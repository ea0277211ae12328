// createGateway in the library: one configuration object, applied whole or not at all.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  createGateway,
  ErrorCodes,
  type Gateway,
  type GatewayConfig,
  type GatewayEvent,
  MtlsGateConfigError,
} from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

describe('createGateway', () => {
  let pki: TestPki;
  let client: TestCert;
  let upstream: http.Server;
  let upstreamUrl: string;
  let gateway: Gateway;
  const events: GatewayEvent[] = [];
  const config = (over: Partial<GatewayConfig> = {}): GatewayConfig => ({
    listen: [{ port: 0 }, { port: 0, tls: false }],
    ssls: [
      { id: 'a', cert: pki.server.chain, key: pki.server.key, snis: ['a.test'], client: { ca: pki.root.cert } },
      { id: 'open', cert: pki.server.chain, key: pki.server.key, snis: ['open.test'] },
    ],
    services: [
      {
        name: 'a',
        hosts: ['a.test'],
        protocols: ['https'],
        upstream: upstreamUrl,
        routes: [{ name: 'all', path: '/*' }],
      },
      { name: 'open', hosts: ['open.test'], upstream: upstreamUrl, routes: [{ name: 'all', path: '/*' }] },
    ],
    ...over,
  });
  before(async () => {
    pki = await createTestPki({ serverNames: ['a.test', 'open.test', 'c.test'] });
    client = await pki.client('valid');
    upstream = http.createServer((req, res) => res.end(`upstream ${req.url}`));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gateway = await createGateway(config(), { onEvent: (e) => events.push(e) });
  });
  after(async () => {
    await gateway.close();
    upstream.close();
  });

  test('serves TLS (guard, router) and plain HTTP (redirect of https-only services, the others served)', async () => {
    const tls = gateway.addresses[0]!;
    const plain = gateway.addresses[1]!;
    assert.equal(tls.tls, true);
    assert.equal(plain.tls, false);
    assert.equal((await testRequest({ port: tls.port, servername: 'a.test', path: '/x', client })).body, 'upstream /x');
    assert.equal((await testRequest({ port: tls.port, servername: 'a.test', path: '/x' })).status, 400);
    const get = (host: string) =>
      new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get({ port: plain.port, host: '127.0.0.1', path: '/y', headers: { host } }, resolve).on('error', reject),
      );
    const open = await get('open.test');
    assert.equal(open.statusCode, 200);
    open.resume();
    // An https-only service of an mTLS host: redirected to the TLS listener, never proxied.
    const a = await get('a.test');
    a.resume();
    assert.equal(a.statusCode, 301);
    assert.equal(a.headers.location, `https://a.test:${tls.port}/y`);
    // Made http-capable, the mTLS host over plain HTTP is refused: no certificate, no upstream.
    gateway.apply(
      config({ services: [{ ...config().services![0]!, protocols: ['http', 'https'] }, config().services![1]!] }),
    );
    const refused = await get('a.test');
    refused.resume();
    assert.equal(refused.statusCode, 400);
    assert.ok(events.some((e) => e.type === 'reject' && e.reason === 'missing'));
    gateway.apply(config());
    assert.equal(gateway.revision, 3);
  });

  test('apply is whole or nothing: a bad service leaves the SSL objects of the same config unapplied', () => {
    const before = gateway.store.list().map((v) => v.id);
    const bad = config({
      ssls: [{ id: 'c', cert: pki.server.chain, key: pki.server.key, snis: ['c.test'] }],
      services: [{ name: 'c', upstream: upstreamUrl, routes: [{ name: 'r', path: 'no-slash' }] }],
    });
    assert.throws(
      () => gateway.apply(bad),
      (e: unknown) =>
        e instanceof MtlsGateConfigError &&
        e.field === 'services[0].routes[0].path' &&
        e.code === ErrorCodes.INVALID_OPTION,
    );
    assert.deepEqual(
      gateway.store.list().map((v) => v.id),
      before,
    );
    assert.equal(gateway.revision, 3);
    assert.equal(gateway.status().lastError?.issues[0]?.field, 'services[0].routes[0].path');
    // A bad SSL object: named under ssls, nothing applied either.
    assert.throws(
      () =>
        gateway.apply(
          config({ ssls: [{ id: 'a', cert: pki.server.chain, key: pki.root.key ?? 'x', snis: ['a.test'] }] }),
        ),
      (e: unknown) => e instanceof MtlsGateConfigError && e.field?.startsWith('ssls[0]') === true,
    );
    assert.deepEqual(
      gateway.store.list().map((v) => v.id),
      before,
    );
  });

  test('apply: the same configuration changes nothing; a changed one is one revision; settings that need a restart are named', async () => {
    assert.equal(gateway.apply(config()).changed, false);
    const next = config({ ssls: [config().ssls![0]!], services: [config().services![0]!], status: { port: 0 } });
    const r = gateway.apply(next);
    assert.equal(r.changed, true);
    assert.equal(r.revision, 4);
    assert.deepEqual(r.restartNeeded, ['status']);
    assert.deepEqual(
      gateway.store.list().map((v) => v.id),
      ['a'],
    );
    await assert.rejects(testRequest({ port: gateway.addresses[0]!.port, servername: 'open.test', timeoutMs: 2000 }));
    assert.equal(gateway.status().services, 1);
  });

  test('reload without a source is an error', async () => {
    await assert.rejects(gateway.reload(), /no configuration source/);
  });
});
