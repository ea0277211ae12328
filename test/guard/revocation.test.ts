// CRLs made by `openssl ca -revoke` / `-gencrl`: a root, an intermediate under it, client leaves
// under the intermediate. The guard's verdicts under client.crl / client.revocation, on new and on
// open connections, and a differential against `openssl verify -crl_check` / `-crl_check_all`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createSslStore,
  ErrorCodes,
  getClientIdentity,
  mtlsGuard,
  type RejectInfo,
  type SslObject,
  type SslStore,
} from '../../src/index.js';
import { createTestPki, type TestPki, testRequest } from '../../src/testing/index.js';

let dir: string;
let serverPki: TestPki;
const openssl = (...args: string[]) =>
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const read = (f: string) => readFileSync(join(dir, f), 'utf8');

const CNF = (name: string) => `
[ca]
default_ca = this
[this]
dir = ${name}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/cert.pem
private_key = $dir/key.pem
default_md = sha256
default_days = 2
default_crl_days = 1
policy = any
unique_subject = no
[any]
commonName = supplied
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[v3_leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
`;

function caDir(name: string): void {
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, 'index.txt'), '');
  writeFileSync(join(dir, name, 'serial'), '1000\n');
  writeFileSync(join(dir, name, 'crlnumber'), '01\n');
  writeFileSync(join(dir, `${name}.cnf`), CNF(name));
}
const key = (out: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out);
function issue(ca: string, subject: string, out: string, ext: 'v3_ca' | 'v3_leaf'): void {
  key(`${out}.key`);
  openssl('req', '-new', '-key', `${out}.key`, '-subj', subject, '-out', `${out}.csr`, '-config', `${ca}.cnf`);
  openssl(
    'ca',
    '-batch',
    '-notext',
    '-config',
    `${ca}.cnf`,
    '-in',
    `${out}.csr`,
    '-out',
    `${out}.pem`,
    '-extensions',
    ext,
  );
}
const gencrl = (ca: string, out: string, ...extra: string[]) =>
  openssl('ca', '-config', `${ca}.cnf`, '-gencrl', '-out', out, ...extra);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-gate-crl-'));
  caDir('root');
  key('root/key.pem');
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    'root/key.pem',
    '-subj',
    '/CN=CRL Test Root',
    '-days',
    '2',
    '-out',
    'root/cert.pem',
    '-config',
    'root.cnf',
    '-extensions',
    'v3_ca',
  );
  caDir('int');
  issue('root', '/CN=CRL Test Intermediate', 'int-cert', 'v3_ca');
  writeFileSync(join(dir, 'int/cert.pem'), read('int-cert.pem'));
  writeFileSync(join(dir, 'int/key.pem'), read('int-cert.key'));
  for (const leaf of ['good', 'revoked', 'later']) issue('int', `/CN=${leaf}`, leaf, 'v3_leaf');
  openssl('ca', '-config', 'int.cnf', '-revoke', 'revoked.pem');
  gencrl('int', 'int.crl');
  gencrl('root', 'root-clean.crl');
  // The intermediate revoked by the root.
  caDir('root2');
  gencrl('int', 'int-expired.crl', '-crl_lastupdate', '200101000000Z', '-crl_nextupdate', '200102000000Z');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const client = (leaf: string) => ({ cert: read(`${leaf}.pem`) + read('int-cert.pem'), key: read(`${leaf}.key`) });

async function serve(object: Partial<SslObject['client']>, opts: { h2?: boolean } = {}) {
  serverPki ??= await createTestPki({ serverNames: ['crl.test'] });
  const store = createSslStore();
  const ssl = (c: Partial<SslObject['client']>): SslObject => ({
    id: 'crl',
    cert: serverPki.server.chain,
    key: serverPki.server.key,
    snis: ['crl.test'],
    client: { ca: read('root/cert.pem'), depth: 1, ...c },
  });
  store.set(ssl(object));
  const rejects: RejectInfo[] = [];
  const guard = mtlsGuard({ store, onReject: (i) => rejects.push(i), exposeReason: true });
  const handler = (req: Parameters<typeof guard>[0], res: Parameters<typeof guard>[1]) =>
    guard(req, res, () => res.end(JSON.stringify(getClientIdentity(req)?.revocation ?? null)));
  const server = store.attach(
    opts.h2 ? http2.createSecureServer(store.tlsOptions(), handler) : https.createServer(store.tlsOptions(), handler),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    store: store as SslStore,
    server,
    port,
    rejects,
    update: (c: Partial<SslObject['client']>) => store.set(ssl(c)),
    ask: (leaf: string) => testRequest({ port, servername: 'crl.test', client: client(leaf) }),
    close: () =>
      new Promise<void>(
        (r) => (server.close(() => r()), (server as { closeAllConnections?: () => void }).closeAllConnections?.()),
      ),
  };
}

describe('client.crl', () => {
  test('scope leaf: a revoked leaf gets 400 revoked, a good one passes and its identity says so', async () => {
    const s = await serve({ crl: read('int.crl') });
    try {
      const good = await s.ask('good');
      assert.equal(good.status, 200);
      assert.deepEqual(JSON.parse(good.body), { status: 'good', via: 'crl' });
      const revoked = await s.ask('revoked');
      assert.equal(revoked.status, 400);
      assert.equal(s.rejects.at(-1)?.reason, 'revoked');
    } finally {
      await s.close();
    }
  });

  test('scope chain: a revoked intermediate refuses every leaf under it; a missing CRL of a level is unknown (strict 400, ignore-ca-error 200)', async () => {
    // A root CRL listing the intermediate.
    openssl('ca', '-config', 'root.cnf', '-revoke', 'int-cert.pem');
    gencrl('root', 'root-revoking.crl');
    const s = await serve({ crl: [read('int.crl'), read('root-revoking.crl')], revocation: { scope: 'chain' } });
    try {
      assert.equal((await s.ask('good')).status, 400);
      assert.equal(s.rejects.at(-1)?.reason, 'revoked');
      assert.match(s.rejects.at(-1)!.detail, /intermediate 1/);
      s.update({ crl: [read('int.crl'), read('root-clean.crl')], revocation: { scope: 'chain' } });
      assert.equal((await s.ask('good')).status, 200);
      s.update({ crl: read('int.crl'), revocation: { scope: 'chain' } });
      assert.equal((await s.ask('good')).status, 400);
      assert.equal(s.rejects.at(-1)?.reason, 'revocation_unknown');
      s.update({ crl: read('int.crl'), revocation: { scope: 'chain', mode: 'ignore-ca-error' } });
      const passed = await s.ask('good');
      assert.equal(passed.status, 200);
      assert.deepEqual(JSON.parse(passed.body), { status: 'unknown', via: 'crl' });
      assert.equal((await s.ask('revoked')).status, 400, 'revoked is revoked in every mode');
      s.update({ crl: read('int.crl'), revocation: { mode: 'skip' } });
      assert.equal((await s.ask('revoked')).status, 200, 'skip checks nothing');
    } finally {
      await s.close();
    }
  });

  test('an expired CRL is unknown: 400 revocation_unknown under strict, 200 under ignore-ca-error', async () => {
    const s = await serve({ crl: read('int-expired.crl') });
    try {
      assert.equal((await s.ask('good')).status, 400);
      assert.equal(s.rejects.at(-1)?.reason, 'revocation_unknown');
      assert.match(s.rejects.at(-1)!.detail, /expired/);
      s.update({ crl: read('int-expired.crl'), revocation: { mode: 'ignore-ca-error' } });
      assert.equal((await s.ask('good')).status, 200);
    } finally {
      await s.close();
    }
  });

  for (const h2 of [false, true]) {
    test(`a CRL update revokes an open ${h2 ? 'HTTP/2' : 'keep-alive HTTP/1.1'} connection at its next request, without rotating ticket keys`, async () => {
      const s = await serve({ crl: read('int.crl') }, { h2 });
      const c = client('later');
      try {
        let get: (path: string) => Promise<number>;
        let closeClient: () => void;
        if (h2) {
          const session = http2.connect(`https://127.0.0.1:${s.port}`, {
            servername: 'crl.test',
            rejectUnauthorized: false,
            ...c,
          });
          get = (path) =>
            new Promise((resolve, reject) => {
              const req = session.request({ ':path': path, ':authority': 'crl.test' });
              req.on('response', (hd) => resolve(Number(hd[':status'])));
              req.on('error', reject);
              req.resume();
              req.end();
            });
          closeClient = () => session.close();
        } else {
          const agent = new https.Agent({
            keepAlive: true,
            maxSockets: 1,
            rejectUnauthorized: false,
            servername: 'crl.test',
            ...c,
          });
          let sockets = 0;
          get = (path) =>
            new Promise((resolve, reject) => {
              const req = https.request(
                { host: '127.0.0.1', port: s.port, path, agent, headers: { host: 'crl.test' } },
                (res) => {
                  res.resume();
                  res.once('end', () => resolve(res.statusCode ?? 0));
                },
              );
              req.on('socket', (sock) => sock.once('secureConnect', () => sockets++));
              req.on('error', reject);
              req.end();
            });
          closeClient = () => {
            agent.destroy();
            assert.equal(sockets, 1, 'one connection throughout');
          };
        }
        assert.equal(await get('/before'), 200);
        if (!read('int/index.txt').includes('CN=later')) throw new Error('fixture');
        if (!/^R.*CN=later$/m.test(read('int/index.txt'))) openssl('ca', '-config', 'int.cnf', '-revoke', 'later.pem');
        gencrl('int', 'int-later.crl');
        const keys = s.server.getTicketKeys();
        s.update({ crl: read('int-later.crl') });
        assert.deepEqual(s.server.getTicketKeys(), keys, 'a change of CRLs alone keeps the ticket keys');
        assert.equal(await get('/after'), 400);
        assert.equal(s.rejects.at(-1)?.reason, 'revoked', s.rejects.at(-1)?.detail);
        closeClient();
        // Any other change rotates them.
        s.update({ crl: read('int-later.crl'), depth: 2 });
        assert.notDeepEqual(s.server.getTicketKeys(), keys);
      } finally {
        await s.close();
      }
    });
  }

  test('an old and a new CRL side by side (a rollover): a certificate listed by either is revoked, in any order', async () => {
    gencrl('int', 'int-old.crl');
    issue('int', '/CN=rollover', 'rollover', 'v3_leaf');
    gencrl('int', 'int-before.crl');
    openssl('ca', '-config', 'int.cnf', '-revoke', 'rollover.pem');
    gencrl('int', 'int-after.crl');
    for (const crls of [
      ['int-before.crl', 'int-after.crl'],
      ['int-after.crl', 'int-before.crl'],
    ]) {
      const s = await serve({ crl: crls.map(read) });
      try {
        assert.equal((await s.ask('rollover')).status, 400, crls.join(', '));
        assert.equal(s.rejects.at(-1)?.reason, 'revoked');
        assert.equal((await s.ask('good')).status, 200);
      } finally {
        await s.close();
      }
    }
  });

  test('serials as DER writes them: a revoked intermediate with serial 0 refuses its leaves under scope chain', async () => {
    key('int0.key');
    openssl(
      'req',
      '-new',
      '-key',
      'int0.key',
      '-subj',
      '/CN=Serial Zero Intermediate',
      '-out',
      'int0.csr',
      '-config',
      'root.cnf',
    );
    openssl(
      'x509',
      '-req',
      '-in',
      'int0.csr',
      '-CA',
      'root/cert.pem',
      '-CAkey',
      'root/key.pem',
      '-set_serial',
      '0',
      '-days',
      '1',
      '-extfile',
      'root.cnf',
      '-extensions',
      'v3_ca',
      '-out',
      'int0.pem',
    );
    key('zero-leaf.key');
    openssl(
      'req',
      '-new',
      '-key',
      'zero-leaf.key',
      '-subj',
      '/CN=under zero',
      '-out',
      'zero-leaf.csr',
      '-config',
      'root.cnf',
    );
    openssl(
      'x509',
      '-req',
      '-in',
      'zero-leaf.csr',
      '-CA',
      'int0.pem',
      '-CAkey',
      'int0.key',
      '-set_serial',
      '7',
      '-days',
      '1',
      '-extfile',
      'root.cnf',
      '-extensions',
      'v3_leaf',
      '-out',
      'zero-leaf.pem',
    );
    openssl('ca', '-config', 'root.cnf', '-revoke', 'int0.pem');
    gencrl('root', 'root-zero.crl');
    const s = await serve({ crl: read('root-zero.crl'), revocation: { scope: 'chain', mode: 'ignore-ca-error' } });
    try {
      const r = await testRequest({
        port: s.port,
        servername: 'crl.test',
        client: { cert: read('zero-leaf.pem') + read('int0.pem'), key: read('zero-leaf.key') },
      });
      assert.equal(r.status, 400);
      assert.equal(s.rejects.at(-1)?.reason, 'revoked');
      assert.match(s.rejects.at(-1)!.detail, /intermediate 1: serial 00 is listed/);
    } finally {
      await s.close();
    }
  });

  test('a CRL-only update keeps TLS sessions resumable: the client resumes and is judged against the new CRL', async () => {
    serverPki ??= await createTestPki({ serverNames: ['crl.test'] });
    const store = createSslStore();
    const ssl = (crl: string): SslObject => ({
      id: 'crl',
      cert: serverPki.server.chain,
      key: serverPki.server.key,
      snis: ['crl.test'],
      client: { ca: read('root/cert.pem'), depth: 1, crl },
    });
    store.set(ssl(read('int.crl')));
    const reasons: string[] = [];
    const guard = mtlsGuard({ store, onReject: (i) => reasons.push(`${i.reason}: ${i.detail}`) });
    const server = store.attach(
      https.createServer(store.tlsOptions({ sessionTickets: true }), (req, res) =>
        guard(req, res, () => res.end('ok')),
      ),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const first = await testRequest({ port, servername: 'crl.test', client: client('good'), maxVersion: 'TLSv1.2' });
      assert.equal(first.status, 200);
      store.set(ssl(read('int-later.crl')));
      const resumed = await testRequest({
        port,
        servername: 'crl.test',
        client: client('good'),
        session: first.session,
        maxVersion: 'TLSv1.2',
      });
      assert.equal(resumed.reused, true);
      assert.equal(resumed.status, 200, reasons.join('; '));
      // A client the new CRL lists is refused on resumption too.
      const later = await testRequest({ port, servername: 'crl.test', client: client('later'), maxVersion: 'TLSv1.2' });
      assert.equal(later.status, 400);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('two CAs of client.ca with one name (a key rollover): a CRL signed by either is accepted', async () => {
    key('rootB.key');
    openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      'rootB.key',
      '-subj',
      '/CN=CRL Test Root',
      '-days',
      '2',
      '-out',
      'rootB.pem',
      '-config',
      'root.cnf',
      '-extensions',
      'v3_ca',
    );
    serverPki ??= await createTestPki({ serverNames: ['crl.test'] });
    const store = createSslStore();
    for (const ca of [
      [read('root/cert.pem'), read('rootB.pem')],
      [read('rootB.pem'), read('root/cert.pem')],
    ]) {
      assert.doesNotThrow(() =>
        store.set({
          id: 'x',
          cert: serverPki.server.chain,
          key: serverPki.server.key,
          snis: ['x.test'],
          client: { ca, crl: read('root-clean.crl') },
        }),
      );
    }
  });

  test('configuration errors: a CRL not signed by the CA it names, garbage, a scoped CRL', async () => {
    const store = createSslStore();
    serverPki ??= await createTestPki({ serverNames: ['crl.test'] });
    const set = (crl: unknown) =>
      store.set({
        id: 'x',
        cert: serverPki.server.chain,
        key: serverPki.server.key,
        snis: ['x.test'],
        client: { ca: read('root/cert.pem'), crl } as never,
      });
    // The root's CRL with one byte of its signature changed.
    const der = Buffer.from(
      read('root-clean.crl')
        .replace(/-----[^-]+-----/g, '')
        .replace(/\s+/g, ''),
      'base64',
    );
    der[der.length - 3]! ^= 0x01;
    assert.throws(() => set(der), { code: ErrorCodes.CRL_INVALID, field: 'client.crl' });
    assert.throws(() => set('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'), {
      code: ErrorCodes.CRL_INVALID,
      field: 'client.crl',
    });
    assert.throws(() => set(['not a crl']), { code: ErrorCodes.CRL_INVALID, field: 'client.crl[0]' });
    // A CRL scoped by an issuing distribution point (openssl 3.0 cannot make delta CRLs from a config).
    writeFileSync(
      join(dir, 'idp.cnf'),
      `${CNF('int')}\n[idp]\nissuingDistributionPoint = critical, @idp_sect\n[idp_sect]\nfullname = URI:http://crl.example.test/int.crl\n`,
    );
    openssl('ca', '-config', 'idp.cnf', '-gencrl', '-crlexts', 'idp', '-out', 'idp.crl');
    assert.throws(
      () => set(read('idp.crl')),
      (e: unknown) =>
        (e as { code: string }).code === ErrorCodes.CRL_INVALID &&
        /issuing distribution point/.test((e as Error).message),
    );
    // The intermediate's CRL names no CA of client.ca: accepted now, its signature checked against the intermediate of
    // each chain.
    assert.doesNotThrow(() => set(read('int.crl')));
  });
});

test('differential: the verdict equals openssl verify -crl_check (leaf) and -crl_check_all (chain) with complete CRL sets', async () => {
  const cases: { leaf: string; scope: 'leaf' | 'chain'; crls: string[] }[] = [];
  for (const leaf of ['good', 'revoked', 'later']) {
    cases.push({ leaf, scope: 'leaf', crls: ['int.crl'] });
    cases.push({ leaf, scope: 'leaf', crls: ['int-later.crl'] });
    cases.push({ leaf, scope: 'chain', crls: ['int.crl', 'root-clean.crl'] });
    cases.push({ leaf, scope: 'chain', crls: ['int-later.crl', 'root-revoking.crl'] });
  }
  const s = await serve({});
  try {
    for (const c of cases) {
      writeFileSync(join(dir, 'crls.pem'), c.crls.map(read).join(''));
      let opensslOk: boolean;
      try {
        openssl(
          'verify',
          c.scope === 'leaf' ? '-crl_check' : '-crl_check_all',
          '-CAfile',
          'root/cert.pem',
          '-untrusted',
          'int-cert.pem',
          '-CRLfile',
          'crls.pem',
          `${c.leaf}.pem`,
        );
        opensslOk = true;
      } catch {
        opensslOk = false;
      }
      s.update({ crl: c.crls.map(read), revocation: { scope: c.scope } });
      const ours = (await s.ask(c.leaf)).status === 200;
      assert.equal(ours, opensslOk, `${c.leaf} ${c.scope} ${c.crls.join('+')}: ours ${ours}, openssl ${opensslOk}`);
    }
  } finally {
    await s.close();
  }
});
