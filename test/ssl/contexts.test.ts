// TLS contexts built on demand and kept in a bounded cache (contextCacheSize): a context built
// lazily serves the right certificate and client CA; eviction under handshakes to many SNIs fails
// none; a changed object never serves its old context; concurrent first handshakes build once.

import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { before, test } from 'node:test';
import tls from 'node:tls';
import { createSslStore, mtlsGuard, type SslStore } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pkis: TestPki[];
let servers: TestCert[];
let clients: TestCert[];
const N = 6;

before(async () => {
  pkis = [
    await createTestPki({ name: 'ctx a', serverNames: ['x.test'] }),
    await createTestPki({ name: 'ctx b', serverNames: ['x.test'] }),
  ];
  servers = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      pkis[0]!.root.issue({
        subject: `CN=t${i}.test`,
        san: { dns: [`t${i}.test`] },
        extKeyUsage: ['1.3.6.1.5.5.7.3.1'],
      }),
    ),
  );
  clients = await Promise.all(pkis.map((p) => p.client('valid')));
});

async function serve(store: SslStore) {
  const guard = mtlsGuard({ store });
  const server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => res.end('ok'))),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
const object = (i: number, cert = servers[i]!) => ({
  id: `t${i}`,
  cert: cert.chain,
  key: cert.key,
  snis: [`t${i}.test`],
  client: { ca: pkis[i % 2]!.root.cert },
});
/** The CN of the certificate the server presents for `sni`. */
const presented = (port: number, sni: string) =>
  new Promise<string>((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: sni, rejectUnauthorized: false }, () => {
      const cn = /CN=([^\n]+)/.exec(s.getPeerX509Certificate()?.subject ?? '')?.[1] ?? '';
      s.end();
      resolve(cn);
    });
    s.on('error', reject);
  });

test('a small cache under handshakes to many SNIs: every handshake gets its own certificate and client CA, none fails', async () => {
  const store = createSslStore({ contextCacheSize: 2 });
  for (let i = 0; i < N; i++) store.set(object(i));
  // Certificates and keys of the common kinds are checked without a context: none is built before a handshake asks.
  assert.deepEqual(store.contextStats(), { ...store.contextStats(), cached: 0, built: 0 });
  const s = await serve(store);
  try {
    const jobs = Array.from({ length: 60 }, (_, k) => (k * 7) % N);
    const results = await Promise.all(
      jobs.map(async (i) => {
        const cn = await presented(s.port, `t${i}.test`);
        const own = await testRequest({ port: s.port, servername: `t${i}.test`, client: clients[i % 2]! });
        const other = await testRequest({ port: s.port, servername: `t${i}.test`, client: clients[(i + 1) % 2]! });
        return [i, cn, own.status, other.status] as const;
      }),
    );
    for (const [i, cn, own, other] of results) assert.deepEqual([cn, own, other], [`t${i}.test`, 200, 400], `t${i}`);
    const stats = store.contextStats();
    assert.ok(stats.cached <= 2);
    assert.ok(stats.evicted > 0 && stats.built > 0, JSON.stringify(stats));
  } finally {
    await s.close();
  }
});

test('a changed object never serves its old context', async () => {
  const store = createSslStore({ contextCacheSize: 4 });
  store.set(object(0));
  const s = await serve(store);
  try {
    assert.equal(await presented(s.port, 't0.test'), 't0.test');
    const renamed = await pkis[0]!.root.issue({
      subject: 'CN=t0 renewed',
      san: { dns: ['t0.test'] },
      extKeyUsage: ['1.3.6.1.5.5.7.3.1'],
    });
    store.set(object(0, renamed));
    assert.equal(await presented(s.port, 't0.test'), 't0 renewed');
    store.delete('t0');
    assert.equal(store.contextStats().cached, 0, 'a deleted object keeps no context');
  } finally {
    await s.close();
  }
});

test('concurrent first handshakes for an object without a kept context build it once', async () => {
  const store = createSslStore({ contextCacheSize: 1 });
  for (let i = 0; i < 3; i++) store.set(object(i));
  const s = await serve(store);
  try {
    const before = store.contextStats().built;
    // t0's checking context filled the cache; t1's and t2's were dropped when they were set.
    const cns = await Promise.all(Array.from({ length: 10 }, () => presented(s.port, 't2.test')));
    assert.deepEqual(new Set(cns), new Set(['t2.test']));
    assert.equal(store.contextStats().built - before, 1);
  } finally {
    await s.close();
  }
});
