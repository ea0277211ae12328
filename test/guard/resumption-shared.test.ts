// Shared ticket keys (`ticketSecret`): a resumed session this process never saw is admitted only
// when OpenSSL's verdict of the handshake that made it was clean, our verifier admits its leaf under
// this very object again, and the object's CAs carry nothing only OpenSSL enforces. Certificates
// made by openssl: a CA with critical name constraints and leaves inside and outside them.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSslStore, mtlsGuard, type SslStore } from '../../src/index.js';
import { createTestPki, testRequest } from '../../src/testing/index.js';

let dir: string;
const pem = (f: string) => readFileSync(join(dir, f), 'utf8');
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-gate-nc-'));
  writeFileSync(
    join(dir, 'ext.cnf'),
    [
      '[req]',
      'distinguished_name=dn',
      'prompt=no',
      '[dn]',
      'CN=Constrained Root',
      '[ca]',
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign',
      'nameConstraints=critical,permitted;DNS:good.test',
      'subjectKeyIdentifier=hash',
      '[inside]',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      'subjectAltName=DNS:x.good.test',
      '[outside]',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      'subjectAltName=DNS:evil.other',
    ].join('\n'),
  );
  const openssl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-config',
    'ext.cnf',
    '-extensions',
    'ca',
  );
  for (const leaf of ['inside', 'outside']) {
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${leaf}.key`,
      '-out',
      `${leaf}.csr`,
      '-subj',
      `/CN=${leaf}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${leaf}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${leaf}.pem`,
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
      '-extensions',
      leaf,
    );
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function serve(store: SslStore) {
  const guard = mtlsGuard({ store });
  const server = store.attach(
    https.createServer(store.tlsOptions({ sessionTickets: true }), (req, res) =>
      guard(req, res, () => res.end('admitted')),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('a session made in one process resumes in another holding the same objects and secret, under its own object only', async () => {
  const pki = await createTestPki({ serverNames: ['a.test', 'b.test', 'nc.test'] });
  const other = await createTestPki({ name: 'other' });
  const make = () => {
    const store = createSslStore({ ticketSecret: 'k'.repeat(32) });
    store.apply({
      set: [
        { id: 'a', cert: pki.server.chain, key: pki.server.key, snis: ['a.test'], client: { ca: pki.root.cert } },
        { id: 'b', cert: pki.server.chain, key: pki.server.key, snis: ['b.test'], client: { ca: other.root.cert } },
        {
          id: 'nc',
          cert: pki.server.chain,
          key: pki.server.key,
          snis: ['nc.test'],
          client: { ca: pem('ca.pem'), depth: 0 },
        },
      ],
    });
    return store;
  };
  const one = await serve(make());
  const two = await serve(make());
  try {
    const client = await pki.client('valid');
    const first = await testRequest({ port: one.port, servername: 'a.test', client, maxVersion: 'TLSv1.2' });
    assert.equal(first.status, 200);
    const resumed = await testRequest({
      port: two.port,
      servername: 'a.test',
      client,
      session: first.session,
      maxVersion: 'TLSv1.2',
    });
    assert.equal(resumed.reused, true);
    assert.equal(resumed.status, 200, 'resumed in the other process: verified again from the leaf, admitted');
    // The same session offered under b.test (another CA): resumed by TLS, refused by the guard.
    const elsewhere = await testRequest({
      port: two.port,
      servername: 'b.test',
      client,
      session: first.session,
      maxVersion: 'TLSv1.2',
    });
    if (elsewhere.reused) assert.equal(elsewhere.status, 400);

    // A CA with name constraints (which only OpenSSL enforces): a chain outside them is refused in
    // the full handshake and when its session is resumed; one inside them is admitted in the full
    // handshake, but its session is not taken by a process that did not see it made.
    for (const [leaf, full, resumedStatus] of [
      ['inside', 200, 400],
      ['outside', 400, 400],
    ] as const) {
      const c = { cert: pem(`${leaf}.pem`), key: pem(`${leaf}.key`) };
      const f = await testRequest({ port: one.port, servername: 'nc.test', client: c, maxVersion: 'TLSv1.2' });
      assert.equal(f.status, full, `${leaf}: full handshake`);
      const r = await testRequest({
        port: two.port,
        servername: 'nc.test',
        client: c,
        session: f.session,
        maxVersion: 'TLSv1.2',
      });
      assert.equal(r.reused, true, `${leaf}: the other process resumed the session`);
      assert.equal(r.status, resumedStatus, `${leaf}: resumed in the other process`);
      // In the process that made it, a session it admitted resumes (its own verdict is remembered).
      const again = await testRequest({
        port: one.port,
        servername: 'nc.test',
        client: c,
        session: f.session,
        maxVersion: 'TLSv1.2',
      });
      if (again.reused) assert.equal(again.status, full, `${leaf}: resumed where it was made`);
    }
  } finally {
    await one.close();
    await two.close();
  }
});
