// A connection judged again after a change of its SSL object keeps the chain its client sent.
// Node 20 links the intermediates to the leaf only in the first getPeerX509Certificate() of a
// connection; the guard reads it once per connection.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createSslStore, mtlsGuard, type SslObject } from '../../src/index.js';
import { createTestPki } from '../../src/testing/index.js';

for (const h2 of [false, true]) {
  test(`${h2 ? 'HTTP/2' : 'HTTP/1.1 keep-alive'}: a client behind an intermediate stays admitted on its open connection across changes of its object`, async () => {
    const pki = await createTestPki({ serverNames: ['r.test'] });
    const client = await pki.client('viaIntermediate');
    const store = createSslStore();
    const object = (desc: string): SslObject => ({
      id: 'r',
      cert: pki.server.chain,
      key: pki.server.key,
      snis: ['r.test'],
      client: { ca: pki.root.cert, depth: 1 },
      desc,
    });
    store.set(object('v1'));
    const reasons: string[] = [];
    const guard = mtlsGuard({ store, onReject: (i) => reasons.push(`${i.reason}: ${i.detail}`) });
    const handler = (req: Parameters<typeof guard>[0], res: Parameters<typeof guard>[1]) =>
      guard(req, res, () => res.end('ok'));
    const server = store.attach(
      h2 ? http2.createSecureServer(store.tlsOptions(), handler) : https.createServer(store.tlsOptions(), handler),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const tlsClient = { cert: client.chain, key: client.key, rejectUnauthorized: false, servername: 'r.test' };
    let get: () => Promise<number>;
    let done: () => void;
    if (h2) {
      const session = http2.connect(`https://127.0.0.1:${port}`, tlsClient);
      get = () =>
        new Promise((resolve, reject) => {
          const req = session.request({ ':path': '/', ':authority': 'r.test' });
          req.on('response', (h) => resolve(Number(h[':status'])));
          req.on('error', reject);
          req.resume();
          req.end();
        });
      done = () => session.close();
    } else {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ...tlsClient });
      get = () =>
        new Promise((resolve, reject) =>
          https
            .get({ host: '127.0.0.1', port, agent, headers: { host: 'r.test' } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            })
            .on('error', reject),
        );
      done = () => agent.destroy();
    }
    try {
      assert.equal(await get(), 200);
      for (const desc of ['v2', 'v3']) {
        store.set(object(desc));
        assert.equal(await get(), 200, reasons.join('; '));
      }
    } finally {
      done();
      await new Promise<void>(
        (r) => (server.close(() => r()), (server as { closeAllConnections?: () => void }).closeAllConnections?.()),
      );
    }
  });
}
