// The answer to a refused request: a status per reason (guard option and the gateway's guard
// settings), a route policy's status for allow-list refusals, and a custom body through
// rejectResponse; and the gateway's refusal of an mtls policy on hosts of an SSL object without client.

import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { before, test } from 'node:test';
import { createGateway, createSslStore, type GuardOptions, MtlsGateConfigError, mtlsGuard } from '../../src/index.js';
import { createTestPki, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
before(async () => {
  pki = await createTestPki({ serverNames: ['app.test', 'open.test'] });
});

async function guarded(options: Omit<GuardOptions, 'store'>) {
  const store = createSslStore();
  store.set({
    id: 'app',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['app.test'],
    client: { ca: pki.root.cert },
  });
  const guard = mtlsGuard({ store, ...options });
  const server = store.attach(
    https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => res.end('ok'))),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    ask: (client?: Awaited<ReturnType<TestPki['client']>>, path = '/') =>
      testRequest({ port, servername: 'app.test', path, ...(client ? { client } : {}) }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('statusByReason: 496 for a missing certificate, 495 for an expired one, 400 for the rest', async () => {
  const g = await guarded({ statusByReason: { missing: 496, expired: 495 } });
  try {
    const missing = await g.ask();
    assert.equal(missing.status, 496);
    assert.match(missing.body, /496 SSL Certificate Required/);
    assert.equal((await g.ask(await pki.client('expired'))).status, 495);
    assert.equal((await g.ask(await pki.client('otherCa'))).status, 400);
  } finally {
    await g.close();
  }
});

test('rejectResponse gives a custom body and headers; its status only from the allowed set; a throwing hook gives the standard page', async () => {
  const g = await guarded({
    statusByReason: { missing: 401 },
    rejectResponse: (i) =>
      i.reason === 'missing'
        ? {
            status: i.status,
            headers: { 'content-type': 'application/problem+json', 'www-authenticate': 'mTLS' },
            body: JSON.stringify({ type: 'about:blank', title: 'certificate required', reason: i.reason }),
          }
        : i.reason === 'untrusted'
          ? { status: 302, body: 'x' }
          : (() => {
              throw new Error('hook bug');
            })(),
  });
  const warned: string[] = [];
  const onWarning = (w: Error) => warned.push(w.message);
  process.on('warning', onWarning);
  try {
    const r = await g.ask();
    assert.equal(r.status, 401);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(r.headers['www-authenticate'], 'mTLS');
    assert.deepEqual(r.json(), { type: 'about:blank', title: 'certificate required', reason: 'missing' });
    const other = await g.ask(await pki.client('otherCa'));
    assert.equal(other.status, 400, "a status outside the allowed set falls back to the reason's");
    assert.equal(other.body, 'x');
    const expired = await g.ask(await pki.client('expired'));
    assert.equal(expired.status, 400);
    assert.match(expired.body, /400 Bad Request/);
  } finally {
    process.off('warning', onWarning);
    await g.close();
  }
});

test('bad answer settings are refused with the field named', () => {
  const store = createSslStore();
  for (const [opts, field] of [
    [{ statusByReason: { missing: 404 } }, /statusByReason/],
    [{ statusByReason: { nope: 401 } }, /statusByReason/],
    [{ rejectResponse: 'x' }, /rejectResponse/],
    [{ policies: 'x' }, /policies/],
  ] as const) {
    assert.throws(
      () => mtlsGuard({ store, ...(opts as object) } as GuardOptions),
      (e: unknown) =>
        e instanceof MtlsGateConfigError && (field.test(e.field ?? '') || e.issues.some((i) => field.test(i.field))),
      JSON.stringify(opts),
    );
  }
});

test('the gateway: guard.statusByReason from the config, and an mtls policy on a host of an object without client refused whole', async () => {
  const base = {
    listen: [{ port: 0 }],
    guard: { statusByReason: { missing: 496 as const } },
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
      { id: 'open', cert: pki.server.chain, key: pki.server.key, snis: ['open.test'] },
    ],
    services: [
      { name: 'app', hosts: ['app.test'], upstream: 'http://127.0.0.1:1', routes: [{ name: 'r', path: '/' }] },
    ],
  };
  const gw = await createGateway(base);
  try {
    const port = gw.addresses[0]!.port;
    assert.equal((await testRequest({ port, servername: 'app.test' })).status, 496);
    const bad = {
      ...base,
      services: [
        ...base.services,
        {
          name: 'open',
          hosts: ['open.test'],
          upstream: 'http://127.0.0.1:1',
          routes: [{ name: 'r', path: '/', mtls: { mode: 'required' as const } }],
        },
      ],
    };
    assert.throws(
      () => gw.apply(bad),
      (e: unknown) =>
        e instanceof MtlsGateConfigError && e.field === 'services[1].routes[0].mtls' && /open/.test(e.message),
    );
    // Nothing half-applied: the old configuration serves on.
    assert.equal(gw.status().services, 1);
    assert.equal((await testRequest({ port, servername: 'app.test' })).status, 496);
    // Adding the object's client in the same change makes it valid.
    const good = { ...bad, ssls: [base.ssls[0]!, { ...base.ssls[1]!, client: { ca: pki.root.cert } }] };
    assert.equal(gw.apply(good).changed, true);
    assert.equal((await testRequest({ port, servername: 'open.test' })).status, 496);
  } finally {
    await gw.close();
  }
});
