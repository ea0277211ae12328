// OCSP through the guard: a real `openssl ocsp` responder on 127.0.0.1 answering for an `openssl ca`
// index; requests wait for the answer (node:https, Express, Koa), a responder down under strict and
// ignore-ca-error, and the AIA of a stranger's certificate never fetched.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import express from 'express';
import Koa from 'koa';
import { mtlsGuard as expressGuard } from '../../src/adapters/express.js';
import { mtlsGuard as koaGuard } from '../../src/adapters/koa.js';
import { createSslStore, getClientIdentity, mtlsGuard, type RejectInfo, type SslObject } from '../../src/index.js';
import { createTestPki, type TestPki, testRequest } from '../../src/testing/index.js';
import { opensslCa } from '../verify/openssl-ca.js';
import { startOcspResponder } from '../verify/openssl-ocsp.js';

let dir: string;
let responder: ChildProcess;
let url: string;
let serverPki: TestPki;
let counter: http.Server;
let counted = 0;
const read = (f: string) => readFileSync(join(dir, f), 'utf8');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-gate-guard-ocsp-'));
  // A listener where certificates' AIA points: it counts what reaches it and answers nonsense.
  counter = http.createServer((req, res) => {
    counted++;
    req.resume();
    res.end('not an OCSP response');
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', () => r()));
  const pki = opensslCa(dir);
  const aia = [
    '[aia]',
    'basicConstraints = CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = clientAuth',
    `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${(counter.address() as AddressInfo).port}/ocsp`,
  ].join('\n');
  pki.ca('ca', aia);
  pki.ca('stranger', aia);
  for (const [cn, ext] of [
    ['good', 'leaf'],
    ['revoked', 'leaf'],
    ['signer', 'signer'],
    ['aia', 'aia'],
  ])
    pki.issue('ca', cn!, ext!);
  pki.issue('stranger', 'intruder', 'aia');
  pki.revoke('ca', 'revoked');
  const started = await startOcspResponder(dir);
  responder = started.child;
  url = started.url;
  serverPki = await createTestPki({ serverNames: ['ocsp.test'] });
});
after(() => {
  responder?.kill();
  counter?.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = (cn: string) => ({ cert: read(`${cn}.pem`), key: read(`${cn}.key`) });
const object = (c: Partial<SslObject['client']>): SslObject => ({
  id: 'o',
  cert: serverPki.server.chain,
  key: serverPki.server.key,
  snis: ['ocsp.test'],
  client: { ca: read('ca/cert.pem'), depth: 0, ...c },
});

async function serveWith(
  app: (store: ReturnType<typeof createSslStore>, rejects: RejectInfo[]) => http.RequestListener,
  c: Partial<SslObject['client']>,
) {
  const store = createSslStore();
  store.set(object(c));
  const rejects: RejectInfo[] = [];
  const server = store.attach(https.createServer(store.tlsOptions(), app(store, rejects)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    rejects,
    ask: (cn: string) => testRequest({ port, servername: 'ocsp.test', client: client(cn), timeoutMs: 8000 }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
const core = (store: ReturnType<typeof createSslStore>, rejects: RejectInfo[]): http.RequestListener => {
  const guard = mtlsGuard({ store, onReject: (i) => rejects.push(i) });
  return (req, res) => guard(req, res, () => res.end(JSON.stringify(getClientIdentity(req)?.revocation ?? null)));
};

test('the first request of a connection waits for the responder: good passes (identity via ocsp), revoked gets 400 revoked', async () => {
  const s = await serveWith(core, { ocsp: { responder: url } });
  try {
    const good = await s.ask('good');
    assert.equal(good.status, 200);
    assert.deepEqual(JSON.parse(good.body), { status: 'good', via: 'ocsp' });
    assert.equal((await s.ask('revoked')).status, 400);
    assert.equal(s.rejects.at(-1)?.reason, 'revoked');
  } finally {
    await s.close();
  }
});

test('responder down: strict refuses (revocation_unknown), ignore-ca-error admits; a revoked CRL entry wins without asking', async () => {
  for (const [mode, status] of [
    ['strict', 400],
    ['ignore-ca-error', 200],
  ] as const) {
    const s = await serveWith(core, {
      ocsp: { responder: 'http://127.0.0.1:1/', timeoutMs: 500 },
      revocation: { mode },
    });
    try {
      const t0 = Date.now();
      assert.equal((await s.ask('good')).status, status, mode);
      assert.ok(Date.now() - t0 < 3000, 'bounded by timeoutMs');
      if (status === 400) assert.equal(s.rejects.at(-1)?.reason, 'revocation_unknown');
    } finally {
      await s.close();
    }
  }
});

test("AIA: a verified client's responder is asked; a stranger's certificate (another CA) never makes the gateway fetch its AIA", async () => {
  const s = await serveWith(core, { ocsp: true, revocation: { mode: 'ignore-ca-error' } });
  try {
    const before = counted;
    const intruder = await s.ask('intruder');
    assert.equal(intruder.status, 400);
    assert.equal(s.rejects.at(-1)?.reason, 'untrusted');
    assert.equal(counted, before, 'no request reached the AIA listener for an unverified chain');
    assert.equal((await s.ask('aia')).status, 200, 'an unreadable answer is unknown: admitted under ignore-ca-error');
    assert.equal(counted, before + 1, "the verified client's AIA was asked once");
  } finally {
    await s.close();
  }
});

test('allowedHosts: a responder on another host is never asked (unknown); a listed one is', async () => {
  const s = await serveWith(core, { ocsp: { allowedHosts: ['ocsp.example.test'] }, revocation: { mode: 'strict' } });
  try {
    const before = counted;
    assert.equal((await s.ask('aia')).status, 400, 'the AIA names 127.0.0.1, not a listed host');
    assert.equal(s.rejects.at(-1)?.reason, 'revocation_unknown');
    assert.match(s.rejects.at(-1)!.detail, /not in allowedHosts/);
    assert.equal(counted, before, 'nothing was fetched');
  } finally {
    await s.close();
  }
  const listed = await serveWith(core, { ocsp: { responder: url, allowedHosts: ['127.0.0.1'] } });
  try {
    assert.equal((await listed.ask('good')).status, 200);
  } finally {
    await listed.close();
  }
});

test('the Express and Koa adapters wait for the answer', async () => {
  const viaExpress = await serveWith(
    (store) => {
      const app = express();
      app.use(expressGuard({ store }));
      app.get('/', (req, res) => {
        res.json((req as unknown as { mtls?: { revocation?: unknown } }).mtls?.revocation ?? null);
      });
      return app as unknown as http.RequestListener;
    },
    { ocsp: { responder: url } },
  );
  const viaKoa = await serveWith(
    (store) => {
      const app = new Koa();
      app.use(koaGuard({ store }));
      app.use((ctx) => {
        ctx.body = (ctx.state as { mtls?: { revocation?: unknown } }).mtls?.revocation ?? null;
      });
      return app.callback() as unknown as http.RequestListener;
    },
    { ocsp: { responder: url } },
  );
  try {
    for (const s of [viaExpress, viaKoa]) {
      const good = await s.ask('good');
      assert.equal(good.status, 200);
      assert.deepEqual(JSON.parse(good.body), { status: 'good', via: 'ocsp' });
      assert.equal((await s.ask('revoked')).status, 400);
    }
  } finally {
    await viaExpress.close();
    await viaKoa.close();
  }
});
