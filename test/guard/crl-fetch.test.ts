// client.crlFetch: CRLs fetched from the client certificate's CRL distribution point, made by
// `openssl ca -revoke` / `-gencrl` and served by a loopback HTTP listener that counts what reaches
// it. Verdicts, one fetch for many connections, a server down under strict and ignore-ca-error, bounds
// (size, hosts), a stranger's distribution point never fetched, and a CRL update reaching an open
// connection after the refresh.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  createSslStore,
  ErrorCodes,
  getClientIdentity,
  MtlsGateConfigError,
  mtlsGuard,
  type RejectInfo,
  type SslObject,
} from '../../src/index.js';
import { createTestPki, type TestPki, testRequest } from '../../src/testing/index.js';
import { type OpensslCa, opensslCa } from '../verify/openssl-ca.js';

let pki: OpensslCa;
let serverPki: TestPki;
let crlServer: http.Server;
let crlDer: Buffer;
let mode: 'serve' | 'down' | 'big' = 'serve';
/** When set, served instead of the current CRL. */
let override: Buffer | undefined;
const hits: string[] = [];

const der = (ca: string, out: string, ...extra: string[]) => {
  pki.gencrl(ca, `${out}.crl`, ...extra);
  pki.openssl('crl', '-in', `${out}.crl`, '-outform', 'DER', '-out', `${out}.der`);
  return readFileSync(join(pki.dir, `${out}.der`));
};
let olderCrl: Buffer;
let strangerCrl: Buffer;

function publish(): void {
  pki.gencrl('ca', 'ca.crl');
  pki.openssl('crl', '-in', 'ca.crl', '-outform', 'DER', '-out', 'ca.der');
  crlDer = readFileSync(join(pki.dir, 'ca.der'));
}

before(async () => {
  pki = opensslCa(mkdtempSync(join(tmpdir(), 'mtls-gate-crl-fetch-')));
  crlServer = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    if (mode === 'down') return req.socket.destroy();
    if (mode === 'big') return res.end(Buffer.alloc(8192, 0x30));
    res.setHeader('content-type', 'application/pkix-crl');
    res.end(override ?? crlDer);
  });
  await new Promise<void>((r) => crlServer.listen(0, '127.0.0.1', () => r()));
  const cdp = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}/ca.crl`;
  const section = [
    '[cdp]',
    'basicConstraints = CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = clientAuth',
    `crlDistributionPoints = URI:${cdp}`,
  ].join('\n');
  pki.ca('ca', section);
  pki.ca('stranger', section);
  for (const cn of ['good', 'revoked', 'later']) pki.issue('ca', cn, 'cdp');
  pki.issue('ca', 'plain', 'leaf');
  pki.issue('stranger', 'intruder', 'cdp');
  // A CRL from before the revocation (an hour older), and one of another CA.
  const hourAgo = `${new Date(Date.now() - 3_600_000).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
  olderCrl = der('ca', 'older', '-crl_lastupdate', hourAgo);
  strangerCrl = der('stranger', 'stranger');
  pki.revoke('ca', 'revoked');
  publish();
  serverPki = await createTestPki({ serverNames: ['fetch.test'] });
});
after(() => {
  crlServer?.close();
  rmSync(pki.dir, { recursive: true, force: true });
});

const client = (cn: string) => ({ cert: pki.read(`${cn}.pem`), key: pki.read(`${cn}.key`) });
const object = (c: Partial<SslObject['client']>): SslObject => ({
  id: 'f',
  cert: serverPki.server.chain,
  key: serverPki.server.key,
  snis: ['fetch.test'],
  client: { ca: pki.read('ca/cert.pem'), depth: 0, ...c },
});

// Each test uses its own settings (fetchers, and so their caches, are shared per settings).
async function serve(c: Partial<SslObject['client']>) {
  const store = createSslStore();
  store.set(object(c));
  const rejects: RejectInfo[] = [];
  const guard = mtlsGuard({ store, onReject: (i) => rejects.push(i) });
  const server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) =>
      guard(req, res, () => res.end(JSON.stringify(getClientIdentity(req)?.revocation ?? null))),
    ),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    rejects,
    port,
    ask: (cn: string) => testRequest({ port, servername: 'fetch.test', client: client(cn), timeoutMs: 8000 }),
    /** GETs over one keep-alive connection; counts the handshakes. */
    keepAlive(cn: string) {
      const agent = new https.Agent({
        keepAlive: true,
        maxSockets: 1,
        rejectUnauthorized: false,
        servername: 'fetch.test',
        ...client(cn),
      });
      let handshakes = 0;
      const get = () =>
        new Promise<number>((resolve, reject) => {
          const req = https.request(
            { host: '127.0.0.1', port, path: '/', agent, headers: { host: 'fetch.test' } },
            (res) => {
              res.resume();
              res.once('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('socket', (sock) => sock.once('secureConnect', () => handshakes++));
          req.on('error', reject);
          req.end();
        });
      return { get, handshakes: () => handshakes, close: () => agent.destroy() };
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('a good leaf passes with its status learned from the fetched CRL; a revoked one gets 400 revoked; many connections, one fetch', async () => {
  hits.length = 0;
  mode = 'serve';
  const s = await serve({ crlFetch: { timeoutMs: 1001 } });
  try {
    const answers = await Promise.all(Array.from({ length: 12 }, () => s.ask('good')));
    for (const a of answers) {
      if (a.status !== 200) assert.fail(s.rejects.map((r) => `${r.reason}: ${r.detail}`).join('; '));
      assert.equal(a.status, 200);
      assert.deepEqual(JSON.parse(a.body), { status: 'good', via: 'crl' });
    }
    assert.equal((await s.ask('revoked')).status, 400);
    assert.equal(s.rejects.at(-1)?.reason, 'revoked');
    assert.equal(hits.length, 1, 'one fetch for every connection');
    // A certificate without a distribution point is unknown: strict refuses it, nothing fetched.
    assert.equal((await s.ask('plain')).status, 400);
    assert.equal(s.rejects.at(-1)?.reason, 'revocation_unknown');
    assert.match(s.rejects.at(-1)!.detail, /no http\(s\) CRL distribution point/);
    assert.equal(hits.length, 1);
  } finally {
    await s.close();
  }
});

test('the CRL server down: strict refuses (revocation_unknown), ignore-ca-error admits; within the timeout', async () => {
  mode = 'down';
  try {
    for (const [revocationMode, status, timeoutMs] of [
      ['strict', 400, 1002],
      ['ignore-ca-error', 200, 1003],
    ] as const) {
      const s = await serve({ crlFetch: { timeoutMs }, revocation: { mode: revocationMode } });
      try {
        const t0 = Date.now();
        const r = await s.ask('good');
        assert.equal(r.status, status, revocationMode);
        assert.ok(Date.now() - t0 < 4000);
        if (status === 400) {
          assert.equal(s.rejects.at(-1)?.reason, 'revocation_unknown');
          assert.match(s.rejects.at(-1)!.detail, /CRL fetch: the CRL cannot be fetched/);
        } else assert.deepEqual(JSON.parse(r.body), { status: 'unknown', via: 'crl' });
      } finally {
        await s.close();
      }
    }
  } finally {
    mode = 'serve';
  }
});

test("bounds: an oversized answer is unknown; a host not in allowedHosts is never asked; a stranger's distribution point is never fetched", async () => {
  mode = 'big';
  try {
    const s = await serve({ crlFetch: { timeoutMs: 1004, maxBytes: 2048 } });
    try {
      assert.equal((await s.ask('good')).status, 400);
      assert.match(s.rejects.at(-1)!.detail, /over 2048 bytes/);
    } finally {
      await s.close();
    }
  } finally {
    mode = 'serve';
  }
  hits.length = 0;
  const listed = await serve({ crlFetch: { timeoutMs: 1005, allowedHosts: ['crl.example'] } });
  try {
    assert.equal((await listed.ask('good')).status, 400);
    assert.match(
      listed.rejects.at(-1)!.detail,
      /no CRL distribution point of the certificate is on a host of crlFetch.allowedHosts/,
    );
  } finally {
    await listed.close();
  }
  const open = await serve({ crlFetch: { timeoutMs: 1006 } });
  try {
    assert.equal((await open.ask('intruder')).status, 400);
    assert.equal(open.rejects.at(-1)?.reason, 'untrusted');
  } finally {
    await open.close();
  }
  assert.deepEqual(hits, [], 'no request reached the CRL server');
});

test('a revocation published at the distribution point reaches an open keep-alive connection after the refresh', async () => {
  mode = 'serve';
  const s = await serve({ crlFetch: { timeoutMs: 1007, cacheTtlMs: 1000 } });
  const conn = s.keepAlive('later');
  try {
    assert.equal(await conn.get(), 200);
    pki.revoke('ca', 'later');
    publish();
    let status = 200;
    const until = Date.now() + 6000;
    while (status === 200 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      status = await conn.get();
    }
    assert.equal(status, 400);
    assert.equal(s.rejects.at(-1)?.reason, 'revoked');
    assert.equal(conn.handshakes(), 1, 'the open connection was judged again, not a new one');
  } finally {
    conn.close();
    await s.close();
  }
});

test('a refresh never replaces the CRL held by an older one or by one the issuer did not sign', async () => {
  mode = 'serve';
  override = undefined;
  const s = await serve({ crlFetch: { timeoutMs: 1008, cacheTtlMs: 1000 } });
  const conn = s.keepAlive('good');
  try {
    assert.equal((await s.ask('revoked')).status, 400);
    assert.equal(await conn.get(), 200);
    for (const replay of [olderCrl, strangerCrl]) {
      override = replay;
      const before = hits.length;
      // Past the refresh time: the next requests start a refresh, which gets the replayed CRL.
      const until = Date.now() + 5000;
      while (hits.length === before && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        assert.equal(await conn.get(), 200, 'the open connection of a good client keeps passing');
      }
      assert.ok(hits.length > before, 'the refresh happened');
      await new Promise((r) => setTimeout(r, 100));
      const r = await s.ask('revoked');
      assert.equal(r.status, 400, 'still revoked after a refresh that served an older or foreign CRL');
      assert.equal(s.rejects.at(-1)?.reason, 'revoked');
    }
  } finally {
    override = undefined;
    conn.close();
    await s.close();
  }
});

test('crlFetch settings are checked with the field named', () => {
  const store = createSslStore();
  for (const bad of [false, { timeoutMs: 5 }, { maxBytes: 1e9 }, { allowedHosts: [] }, { extra: 1 }]) {
    assert.throws(
      () => store.set(object({ crlFetch: bad as never })),
      (e: unknown) =>
        e instanceof MtlsGateConfigError &&
        (e.code === ErrorCodes.INVALID_OPTION || e.code === ErrorCodes.UNKNOWN_FIELD) &&
        /client\.crlFetch/.test(e.field ?? ''),
      JSON.stringify(bad),
    );
  }
});

test('distribution points read from the DER: http(s) full names only, not partial (reasons) or indirect (cRLIssuer) ones', async () => {
  const { crlDistributionUrls } = await import('../../src/verify/crl-fetch.js');
  const cnf = [
    '[mixed]',
    'basicConstraints = CA:FALSE',
    'crlDistributionPoints = URI:ldap://ldap.example/cn=ca, URI:http://a.example/ca.crl, URI:https://b.example/ca.crl',
    '[partial]',
    'basicConstraints = CA:FALSE',
    'crlDistributionPoints = dp_reasons, dp_indirect',
    '[dp_reasons]',
    'fullname = URI:http://reasons.example/ca.crl',
    'reasons = keyCompromise',
    '[dp_indirect]',
    'fullname = URI:http://indirect.example/ca.crl',
    'CRLissuer = dirName:issuer_dn',
    '[issuer_dn]',
    'CN = Another',
  ].join('\n');
  const { appendFileSync } = await import('node:fs');
  appendFileSync(join(pki.dir, 'ca.cnf'), `\n${cnf}\n`);
  pki.issue('ca', 'mixed', 'mixed');
  pki.issue('ca', 'partial', 'partial');
  const der = (cn: string) => Buffer.from(pki.read(`${cn}.pem`).replace(/-----[^-]+-----|\s/g, ''), 'base64');
  assert.deepEqual(crlDistributionUrls(der('mixed')), ['http://a.example/ca.crl', 'https://b.example/ca.crl']);
  assert.deepEqual(crlDistributionUrls(der('partial')), []);
  assert.deepEqual(crlDistributionUrls(der('plain')), []);
});
