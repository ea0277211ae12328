// Secrets: private keys never appear in errors, in store.list()/get()/match() views, in JSON or
// util.inspect dumps of the store, its views or the router, nor in what onReject receives.

import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import util from 'node:util';
import {
  createRouter,
  createSslStore,
  MtlsGateConfigError,
  mtlsGuard,
  type RejectInfo,
  type SslObject,
  type SslStore,
} from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';
import { request1, request2 } from '../helpers.js';
import { type Listening, listen } from './lib/net.js';

let pki: TestPki;
let rsa: TestCert;
let client: TestCert;
/** Every private key in play, and the recognisable parts of each. */
let secrets: { name: string; needles: string[] }[] = [];

/**
 * Recognisable pieces of a key's private parts only (an EC PKCS#8 key also holds its public key,
 * which certificates carry too): the JWK's private members as base64url, hex, and base64 at the
 * three byte alignments a PEM body can give them.
 */
function needles(keyPem: string): string[] {
  const jwk = createPrivateKey(keyPem).export({ format: 'jwk' }) as Record<string, string | undefined>;
  const out: string[] = [];
  for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
    const v = jwk[member];
    if (!v) continue;
    const bytes = Buffer.from(v, 'base64url');
    out.push(v.slice(0, 32), bytes.toString('hex').slice(0, 40));
    for (let o = 0; o < 3; o++) out.push(bytes.subarray(o).toString('base64').slice(0, 28));
  }
  return out;
}

function assertNoKey(text: string, where: string): void {
  assert.doesNotMatch(text, /PRIVATE KEY/, `${where} shows a PEM private key label`);
  for (const s of secrets)
    for (const n of s.needles) assert.ok(!text.includes(n), `${where} contains part of ${s.name}`);
}

const dump = (v: unknown) =>
  util.inspect(v, {
    depth: Infinity,
    showHidden: true,
    getters: true,
    maxArrayLength: Infinity,
    maxStringLength: Infinity,
  });

/** Everything an error carries that a logger might print. */
function errorText(err: unknown): string {
  const e = err as Error & { cause?: unknown };
  return [
    e.message,
    e.stack,
    String(e.cause),
    (e.cause as Error | undefined)?.stack,
    dump(err),
    JSON.stringify(err),
  ].join('\n');
}

before(async () => {
  pki = await createTestPki({ serverNames: ['a.test'] });
  rsa = await pki.root.issue({ subject: 'CN=a.test rsa', keyType: 'rsa', san: { dns: ['a.test'] } });
  client = await pki.client('valid');
  secrets = [
    { name: 'the server key', needles: needles(pki.server.key) },
    { name: 'the RSA server key', needles: needles(rsa.key) },
    { name: 'the root key', needles: needles(pki.root.key) },
    { name: 'the client key', needles: needles(client.key) },
  ];
});

describe('errors', () => {
  test('no configuration error carries a private key: message, stack, cause, inspect, JSON', () => {
    const base = { id: 'a', cert: pki.server.chain, key: pki.server.key, snis: ['a.test'] };
    const bad: [string, unknown][] = [
      ['key of another certificate', { ...base, key: rsa.key }],
      ['key in the cert field', { ...base, cert: pki.server.key }],
      ['truncated key', { ...base, key: `${pki.server.key.slice(0, 120)}\n-----END PRIVATE KEY-----\n` }],
      ['key with a damaged body', { ...base, key: pki.server.key.replace(/[A-Za-z]/, '!') }],
      ['encrypted-looking key', { ...base, key: pki.server.key.replace(/PRIVATE KEY/g, 'ENCRYPTED PRIVATE KEY') }],
      ['key as client.ca', { ...base, client: { ca: pki.server.key } }],
      ['key as id', { ...base, id: pki.server.key }],
      ['RSA key as desc (over 256 characters)', { ...base, desc: rsa.key }],
      ['key as a label', { ...base, labels: { k: pki.server.key } }],
      ['key as a skip regex list', { ...base, client: { ca: pki.root.cert, skipMtlsUriRegex: pki.server.key } }],
      ['keys without certs', { ...base, keys: [rsa.key] }],
      ['certs/keys swapped', { ...base, certs: [rsa.key], keys: [rsa.cert] }],
      ['extra pair mismatched', { ...base, certs: [rsa.cert], keys: [pki.server.key] }],
      ['key as status', { ...base, status: pki.server.key }],
      ['unknown field holding a key', { ...base, privateKey: pki.server.key }],
    ];
    const store = createSslStore();
    for (const [what, obj] of bad) {
      const err = (() => {
        try {
          store.set(obj as SslObject);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof MtlsGateConfigError, `${what}: ${String(err)}`);
      assertNoKey(errorText(err), what);
    }
    for (const opts of [{ fallbackSni: pki.server.key }, { verifyCacheSize: pki.server.key }]) {
      assert.throws(
        () => createSslStore(opts as never),
        (e) => (assertNoKey(errorText(e), 'createSslStore'), true),
      );
    }
    assert.throws(
      () => createRouter({ services: [{ name: 'x', upstream: pki.server.key, routes: [] }] }),
      (e) => (assertNoKey(errorText(e), 'upstream'), true),
    );
    assert.throws(
      () => createRouter({ services: [{ name: pki.server.key, upstream: 'http://127.0.0.1:9', routes: [] }] }),
      (e) => (assertNoKey(errorText(e), 'name'), true),
    );
    assert.throws(
      () =>
        createRouter({
          services: [
            {
              name: 'x',
              upstream: { nodes: [], tls: { ca: 1 as never } },
              routes: [{ name: 'r', path: pki.server.key }],
            },
          ],
        }),
      (e) => (assertNoKey(errorText(e), 'path'), true),
    );
  });

  test('a private key pasted into snis, sslProtocols or hosts is not echoed in the error', () => {
    const base = { id: 'a', cert: pki.server.chain, key: pki.server.key };
    assert.throws(
      () => createSslStore().set({ ...base, snis: [pki.server.key] }),
      (e) => (assertNoKey(errorText(e), 'snis'), true),
    );
    assert.throws(
      () => createSslStore().set({ ...base, sslProtocols: [pki.server.key as never] }),
      (e) => (assertNoKey(errorText(e), 'sslProtocols'), true),
    );
    assert.throws(
      () =>
        createRouter({
          services: [{ name: 'x', hosts: [pki.server.key], upstream: 'http://127.0.0.1:9', routes: [] }],
        }),
      (e) => (assertNoKey(errorText(e), 'hosts'), true),
    );
  });
});

describe('store, views and router', () => {
  let store: SslStore;
  before(() => {
    store = createSslStore({ fallbackSni: 'a.test' });
    store.set({
      id: 'a',
      cert: pki.server.chain,
      key: pki.server.key,
      certs: [rsa.chain],
      keys: [rsa.key],
      snis: ['a.test', '*.a.test'],
      client: { ca: pki.root.cert, skipMtlsUriRegex: ['^/public/'] },
      labels: { env: 'test' },
      desc: 'tenant a',
    });
    store.set({ id: 2, cert: rsa.chain, key: rsa.key, snis: ['b.test'] });
  });

  test('list(), get(), match(): JSON and full util.inspect dumps hold no key', () => {
    assertNoKey(JSON.stringify(store.list()), 'JSON list()');
    assertNoKey(dump(store.list()), 'inspect list()');
    for (const v of [store.get('a'), store.get(2), store.match('x.a.test'), store.match('b.test')]) {
      assert.ok(v);
      assertNoKey(JSON.stringify(v), 'JSON view');
      assertNoKey(dump(v), 'inspect view');
      assert.equal('key' in v, false);
      assert.equal('keys' in v, false);
    }
  });

  test('the store itself: JSON.stringify, util.inspect with hidden fields, String()', () => {
    assertNoKey(JSON.stringify(store), 'JSON store');
    assertNoKey(dump(store), 'inspect store');
    assertNoKey(String(store), 'String(store)');
    assertNoKey(JSON.stringify(store.verifierStats()), 'verifierStats');
  });

  test('the router, with an HTTPS upstream and its CA: JSON, util.inspect, match()', async () => {
    const router = createRouter({
      services: [
        {
          name: 's',
          upstream: { nodes: [{ host: '127.0.0.1', port: 9 }], scheme: 'https', tls: { ca: pki.root.cert } },
          routes: [{ name: 'r', path: '/r' }],
        },
      ],
    });
    try {
      assertNoKey(dump(router), 'inspect router');
      assertNoKey(String(JSON.stringify(router)), 'JSON router');
      assertNoKey(JSON.stringify(router.match('GET', 'x', '/r')), 'match');
    } finally {
      await router.close();
    }
  });

  test('a cert field that also carries the private key (a combined PEM file) does not expose the key in views', () => {
    const s = createSslStore();
    try {
      s.set({
        id: 'combined',
        cert: pki.server.chain + pki.server.key,
        key: pki.server.key,
        snis: ['c.test'],
        client: { ca: pki.root.cert + pki.root.key },
      });
    } catch (err) {
      // Refusing such a field is as good, provided the error does not quote it.
      assert.ok(err instanceof MtlsGateConfigError);
      assertNoKey(errorText(err), 'combined PEM error');
      return;
    }
    assertNoKey(JSON.stringify(s.list()), 'list() of a combined PEM');
  });
});

describe('onReject', () => {
  let server: Listening;
  const infos: RejectInfo[] = [];
  let store: SslStore;
  before(async () => {
    store = createSslStore({ fallbackSni: 'a.test' });
    store.set({
      id: 'a',
      cert: pki.server.chain,
      key: pki.server.key,
      snis: ['a.test'],
      client: { ca: pki.root.cert },
    });
    const guard = mtlsGuard({ store, onReject: (i) => infos.push(i) });
    server = await listen(
      store.attach(http2.createSecureServer(store.tlsOptions(), (req, res) => guard(req, res, () => res.end('ok')))),
    );
  });
  after(() => server?.close());

  test('what onReject receives (req aside) and the default util.inspect of it hold no key', async () => {
    const expired = await pki.client('expired');
    await request1({ port: server.port, servername: 'a.test' });
    await request2({ port: server.port, servername: 'a.test', client: expired });
    await request1({ port: server.port, servername: 'a.test', client: await pki.client('otherCa') });
    assert.equal(infos.length, 3);
    for (const info of infos) {
      const { req, ...rest } = info;
      assert.ok(req);
      assertNoKey(JSON.stringify(rest), `JSON of ${info.reason}`);
      assertNoKey(dump(rest), `inspect of ${info.reason}`);
      assertNoKey(util.inspect(info), `default inspect of ${info.reason} (req included)`);
    }
  });
});
