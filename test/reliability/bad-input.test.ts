// Bad input: randomised SSL objects, services and routes (fast-check, fixed seeds, bounded runs),
// odd but legal certificates, and random or mangled client certificates. Every configuration is
// either accepted or refused with a coded MtlsGateConfigError naming a field, never another
// exception, and a refused change leaves the store / router exactly as it was. A client's
// certificate, however mangled, never throws out of the verifier or the guard.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  createRouter,
  createSslStore,
  ErrorCodes,
  MtlsGateConfigError,
  mtlsGuard,
  type ServiceConfig,
  type SslObject,
  type SslStore,
} from '../../src/index.js';
import { compileCaSet } from '../../src/verify/ca-set.js';
import { type ParsedCert, parseCert } from '../../src/verify/cert.js';
import { verifyChain } from '../../src/verify/chain.js';
import { clientIdentity, verifiedChain } from '../../src/verify/identity.js';
import { Verifier } from '../../src/verify/verifier.js';
import { request1 } from '../helpers.js';
import { OID, pem } from './lib/der.js';
import { type CertSpec, keyPool, mint, type PoolKey, type Rdns } from './lib/mint.js';
import { type Listening, listen } from './lib/net.js';

const DAY = 86_400_000;
const CODES = new Set<string>(Object.values(ErrorCodes));
const NOW = Date.now();

let keys: { ec: PoolKey[]; rsa: PoolKey[] };
let serverCert: string;
let serverKey: string;
let otherKey: string;
let caPem: string;

const rootName: Rdns = [
  [OID.o, 'bad input'],
  [OID.cn, 'Bad Input Root'],
];

/** A certificate issued by `root` (or self-signed when `self`), valid now, with overrides. */
function issue(over: Partial<CertSpec>, key = keys.ec[1]!): { pem: string; der: Buffer } {
  return mint({
    subject: [[OID.cn, 'x.test']],
    issuer: rootName,
    key,
    signer: keys.ec[0]!,
    notBefore: NOW - DAY,
    notAfter: NOW + DAY,
    ...over,
  });
}

before(() => {
  keys = keyPool(3, 1);
  const spec: CertSpec = {
    subject: rootName,
    issuer: rootName,
    key: keys.ec[0]!,
    signer: keys.ec[0]!,
    notBefore: NOW - DAY,
    notAfter: NOW + 30 * DAY,
    basicConstraints: { ca: true, critical: true },
  };
  const m = mint(spec);
  caPem = m.pem;
  serverCert = issue({ subject: [[OID.cn, 'keep.test']], san: { dns: ['keep.test'] } }).pem;
  serverKey = keys.ec[1]!.keyPem;
  otherKey = keys.ec[2]!.keyPem;
});

/** Asserts `fn` either returns or throws a coded MtlsGateConfigError naming a field; returns the error. */
function acceptedOrCoded(fn: () => unknown, what: string): MtlsGateConfigError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof MtlsGateConfigError)) {
      assert.fail(`${what}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    }
    assert.ok(CODES.has(err.code), `${what}: unknown code ${err.code}`);
    assert.equal(typeof err.field, 'string', `${what}: no field`);
    assert.ok(err.field!.length > 0);
    return err;
  }
}

const snapshot = (store: SslStore) => ({
  size: store.size,
  list: store.list(),
  keep: store.match('keep.test'),
  star: store.match('anything.test'),
});

describe('randomised SSL objects', () => {
  const cases: Record<string, number> & { accepted: number; refused: number } = { accepted: 0, refused: 0 };
  after(() => console.log(`ssl objects: ${JSON.stringify(cases)}`));

  test('set(random object): accepted, or a coded error with the store unchanged (600 runs)', {
    timeout: 30_000,
  }, () => {
    const certDer = Buffer.from(new X509Certificate(serverCert).raw);
    const keyDer = Buffer.from(serverKey.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const huge = 'A'.repeat(70_000);
    const pemish = fc.oneof(
      { arbitrary: fc.constant(serverCert), weight: 24 },
      fc.constant(serverCert + caPem),
      fc.constant(serverCert.replace(/\n/g, '\r\n')),
      fc.constant(caPem),
      fc.constant(serverKey),
      fc.constant(huge),
      fc.constant(`-----BEGIN CERTIFICATE-----\n${'QUFB'.repeat(17_000)}\n-----END CERTIFICATE-----\n`),
      fc.uint8Array({ maxLength: 400 }).map((b) => pem(Buffer.from(b))),
      fc.integer({ min: 1, max: certDer.length - 1 }).map((n) => pem(certDer.subarray(0, n))),
      fc.tuple(fc.nat(certDer.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
        const d = Buffer.from(certDer);
        d[i]! ^= x;
        return pem(d);
      }),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.anything(),
    );
    const keyish = fc.oneof(
      { arbitrary: fc.constant(serverKey), weight: 16 },
      fc.constant(otherKey),
      fc.constant(keys.rsa[0]!.keyPem),
      fc.constant(serverKey.replace('PRIVATE KEY', 'ENCRYPTED PRIVATE KEY')),
      fc.integer({ min: 1, max: keyDer.length - 1 }).map((n) => pem(keyDer.subarray(0, n), 'PRIVATE KEY')),
      fc.constant(serverCert),
      fc.constant(huge),
      fc.string({ maxLength: 100 }),
      fc.anything(),
    );
    const sni = fc.oneof(
      fc.constantFrom(
        'keep.test',
        'a.test',
        '*.x.test',
        '*',
        'A.TEST.',
        '*.*.x',
        'a..b',
        '',
        ' a.test',
        'x'.repeat(300),
        'ü.test',
        'a_b.test',
      ),
      fc.string({ maxLength: 40 }),
    );
    // Absent most of the time, then mostly a valid value, sometimes garbage.
    const opt = <T>(a: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: a, weight: 1 });
    const obj = fc.record(
      {
        id: fc.oneof(
          { arbitrary: fc.constantFrom('keep', 'new-1', 7), weight: 12 },
          fc.constantFrom(0, -1, 1.5, 'a b', '', 'x'.repeat(65), NaN),
          fc.string({ maxLength: 70 }),
          fc.anything(),
        ),
        cert: pemish,
        key: keyish,
        certs: opt(fc.oneof(fc.array(pemish, { maxLength: 3 }), fc.anything())),
        keys: opt(fc.oneof(fc.array(keyish, { maxLength: 3 }), fc.anything())),
        snis: opt(
          fc.oneof(
            { arbitrary: fc.array(sni, { minLength: 1, maxLength: 4 }), weight: 4 },
            fc.constant([]),
            fc.constant(Array.from({ length: 1100 }, (_, i) => `n${i}.test`)),
            fc.anything(),
          ),
        ),
        client: opt(
          fc.oneof(
            {
              arbitrary: fc.record(
                {
                  ca: fc.oneof({ arbitrary: fc.constant(caPem), weight: 4 }, pemish),
                  depth: opt(
                    fc.oneof(
                      { arbitrary: fc.integer({ min: -2, max: 10 }), weight: 3 },
                      fc.constantFrom(1.5, '1', NaN, Infinity),
                      fc.anything(),
                    ),
                  ),
                  skipMtlsUriRegex: opt(
                    fc.oneof(
                      fc.array(
                        fc.oneof(
                          fc.constantFrom('^/ok$', '(', '[', '\\', '(?<n>a)\\k<m>', '*'),
                          fc.string({ maxLength: 30 }),
                        ),
                        { maxLength: 3 },
                      ),
                      fc.anything(),
                    ),
                  ),
                },
                { requiredKeys: [] },
              ),
              weight: 4,
            },
            fc.anything(),
          ),
        ),
        status: opt(
          fc.oneof({ arbitrary: fc.constantFrom(0, 1), weight: 3 }, fc.constantFrom(2, '1', true, -0), fc.anything()),
        ),
        sslProtocols: opt(
          fc.oneof(
            fc.array(fc.constantFrom('TLSv1.2', 'TLSv1.3', 'TLSv1.1', 'SSLv3', 'tlsv1.3'), { maxLength: 4 }),
            fc.anything(),
          ),
        ),
        labels: opt(
          fc.oneof(
            fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string({ maxLength: 300 }), fc.anything())),
            fc.anything(),
          ),
        ),
        desc: opt(fc.oneof(fc.string({ maxLength: 300 }), fc.anything())),
        dept: fc.constant(undefined),
      },
      { requiredKeys: ['id', 'cert', 'key'] },
    );
    const withTypo = fc
      .tuple(obj, fc.oneof({ arbitrary: fc.constant(undefined), weight: 12 }, fc.constantFrom('dept', 'sni', 'Client')))
      .map(([o, typo]) => {
        const out: Record<string, unknown> = { ...o };
        delete out.dept;
        if (typo) out[typo] = 1;
        return out;
      });
    const store = createSslStore();
    const keep: SslObject = {
      id: 'keep',
      cert: serverCert,
      key: serverKey,
      snis: ['keep.test', '*'],
      client: { ca: caPem },
    };
    store.set(keep);
    fc.assert(
      fc.property(fc.oneof({ arbitrary: withTypo, weight: 9 }, fc.anything()), (input) => {
        const before = snapshot(store);
        let view: ReturnType<SslStore['set']> | undefined;
        const err = acceptedOrCoded(() => (view = store.set(input as SslObject)), 'store.set');
        if (err) {
          cases.refused++;
          cases[err.code] = (cases[err.code] ?? 0) + 1;
          const after = snapshot(store);
          assert.equal(after.size, before.size);
          assert.deepEqual(after.list, before.list);
          for (let i = 0; i < before.list.length; i++)
            assert.equal(after.list[i], before.list[i], 'the very same view: nothing replaced');
          assert.equal(after.keep, before.keep);
          assert.equal(after.star, before.star);
          return;
        }
        cases.accepted++;
        // Undo, so every run starts from the same store.
        if (view!.id === 'keep') store.set(keep);
        else store.delete(view!.id);
        assert.equal(store.size, 1);
      }),
      { numRuns: 600, seed: 61 },
    );
    assert.ok(cases.accepted! > 20, `some objects accepted (${cases.accepted})`);
  });

  test('a certificate whose validity dates OpenSSL cannot print is refused with PEM_INVALID (found by the run above)', () => {
    // UTCTime ">61125230236Z": OpenSSL parses the certificate, Node prints "Bad time value".
    const der = Buffer.from(new X509Certificate(serverCert).raw);
    const at = der.indexOf(Buffer.from([0x17, 0x0d]));
    assert.ok(at > 0);
    der[at + 2] = 0x3e;
    const bad = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    const store = createSslStore();
    assert.throws(
      () => store.set({ id: 'bad-dates', cert: bad, key: serverKey }),
      (e: unknown) => e instanceof MtlsGateConfigError && e.code === 'ERR_MTLS_PEM_INVALID' && e.field === 'cert',
    );
    assert.equal(store.size, 0);
  });

  test('after all of it the kept object still serves over TLS', async () => {
    const store = createSslStore();
    store.set({ id: 'keep', cert: serverCert, key: serverKey, snis: ['keep.test'] });
    for (const bad of [
      { id: 'keep', cert: 'x', key: serverKey },
      { id: 'keep', cert: serverCert, key: otherKey },
      { id: 'keep', cert: serverCert, key: serverKey, client: { ca: serverCert } },
    ]) {
      assert.ok(acceptedOrCoded(() => store.set(bad as SslObject), 'set'));
    }
    const server = await listen(http2.createSecureServer(store.tlsOptions(), (_req, res) => res.end('ok')));
    try {
      const r = await request1({ port: server.port, servername: 'keep.test', ca: caPem });
      assert.equal(r.status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('randomised services and routes', () => {
  test('createRouter and update(random services): accepted, or a coded error with the table unchanged (500 runs)', {
    timeout: 30_000,
  }, async () => {
    const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const str = fc.oneof(
      fc.constantFrom('a', 'json', 'x'.repeat(101), '', 'a b', 'ü', '../x'),
      fc.string({ maxLength: 30 }),
    );
    const pathish = fc.oneof(
      fc.constantFrom('/json', '/', '/v1/', 'json', '/a?b', '/a#b', '/a b', '/a\\b', `/${'p'.repeat(5000)}`),
      fc.string({ maxLength: 30 }),
    );
    const hostish = fc.oneof(
      fc.constantFrom('a.test', '*.a.test', '*', 'A.TEST.', '*.*.a', 'a..b', ''),
      fc.string({ maxLength: 20 }),
    );
    const node = fc.record(
      {
        host: fc.oneof(fc.constantFrom('127.0.0.1', '::1', '[::1]', 'a b', '', 'h/x', 'u@h'), fc.anything()),
        port: fc.oneof(fc.constantFrom(80, 0, 65536, 1.5, -1, '80'), fc.anything()),
        weight: opt(fc.oneof(fc.constantFrom(0, 1, -1, 1.5), fc.anything())),
      },
      { requiredKeys: [] },
    );
    const upstream = fc.oneof(
      fc.constantFrom(
        'http://127.0.0.1:1',
        'https://up.test',
        'ftp://x',
        'http://u:p@x',
        'http://x/?q',
        'not a url',
        'http://x/prefix/',
      ),
      fc.record(
        {
          nodes: fc.oneof(fc.array(node, { maxLength: 3 }), fc.anything()),
          scheme: opt(fc.oneof(fc.constantFrom('http', 'https', 'HTTP'), fc.anything())),
          passHost: opt(fc.oneof(fc.constantFrom('pass', 'node', 'rewrite', 'keep'), fc.anything())),
          upstreamHost: opt(fc.oneof(fc.constantFrom('up.test', ''), fc.anything())),
          timeout: opt(
            fc.oneof(
              fc.record(
                {
                  connect: opt(fc.oneof(fc.double(), fc.anything())),
                  read: opt(fc.double()),
                  typo: opt(fc.constant(1)),
                },
                { requiredKeys: [] },
              ),
              fc.anything(),
            ),
          ),
          pathPrefix: opt(pathish),
          tls: opt(
            fc.oneof(
              fc.record({ ca: opt(fc.anything()), verify: opt(fc.anything()) }, { requiredKeys: [] }),
              fc.anything(),
            ),
          ),
          maxConnections: opt(fc.oneof(fc.constantFrom(0, 1, 1.5), fc.anything())),
        },
        { requiredKeys: [] },
      ),
      fc.anything(),
    );
    const route = fc.record(
      {
        name: str,
        path: pathish,
        pathType: opt(fc.oneof(fc.constantFrom('exact', 'prefix', 'regex'), fc.anything())),
        methods: opt(
          fc.oneof(fc.array(fc.constantFrom('GET', 'get', 'POST', 'BREW', 'HEAD'), { maxLength: 3 }), fc.anything()),
        ),
        hosts: opt(fc.oneof(fc.array(hostish, { maxLength: 3 }), fc.anything())),
      },
      { requiredKeys: [] },
    );
    const service = fc.record(
      {
        name: str,
        pathPrefix: opt(pathish),
        protocols: opt(fc.oneof(fc.array(fc.constantFrom('http', 'https', 'h2'), { maxLength: 3 }), fc.anything())),
        hosts: opt(fc.oneof(fc.array(hostish, { maxLength: 3 }), fc.anything())),
        upstream,
        stripPathPrefix: opt(fc.oneof(fc.boolean(), fc.anything())),
        routes: fc.oneof({ arbitrary: fc.array(route, { maxLength: 4 }), weight: 4 }, fc.anything()),
      },
      { requiredKeys: ['upstream'] },
    );
    const services = fc.oneof({ arbitrary: fc.array(service, { maxLength: 3 }), weight: 9 }, fc.anything());

    const good: ServiceConfig[] = [
      {
        name: 'keep',
        pathPrefix: '/v1',
        upstream: 'http://127.0.0.1:9',
        routes: [{ name: 'json', path: '/json', methods: ['GET'] }],
      },
    ];
    const router = createRouter({ services: good });
    const counts = { accepted: 0, refused: 0, createAccepted: 0, createRefused: 0 };
    try {
      fc.assert(
        fc.property(services, (input) => {
          const created = acceptedOrCoded(() => createRouter({ services: input as never }).close(), 'createRouter');
          if (created) counts.createRefused++;
          else counts.createAccepted++;
          const size = router.size;
          const matched = router.match('GET', 'a.test', '/v1/json');
          const err = acceptedOrCoded(() => router.update(input as never), 'router.update');
          if (err) {
            counts.refused++;
            assert.equal(router.size, size);
            assert.deepEqual(router.match('GET', 'a.test', '/v1/json'), matched);
            assert.equal(router.match('GET', 'a.test', '/v1/json')?.route, 'json');
          } else {
            counts.accepted++;
            router.update(good);
          }
        }),
        { numRuns: 500, seed: 62 },
      );
    } finally {
      await router.close();
      console.log(`services: ${JSON.stringify(counts)}`);
    }
    assert.ok(counts.accepted > 10, `some service lists accepted (${counts.accepted})`);
  });

  test('huge strings in services are refused or accepted, never slow', () => {
    const t = performance.now();
    for (const big of ['x'.repeat(1_000_000), '/'.repeat(1_000_000), `/${'%41'.repeat(300_000)}`]) {
      acceptedOrCoded(
        () => createRouter({ services: [{ name: big, upstream: 'http://127.0.0.1:9', routes: [] }] }).close(),
        'name',
      );
      acceptedOrCoded(
        () =>
          createRouter({
            services: [{ name: 'a', pathPrefix: big, upstream: 'http://127.0.0.1:9', routes: [] }],
          }).close(),
        'pathPrefix',
      );
      acceptedOrCoded(() => createRouter({ services: [{ name: 'a', upstream: big, routes: [] }] }).close(), 'upstream');
      acceptedOrCoded(
        () =>
          createRouter({ services: [{ name: 'a', hosts: [big], upstream: 'http://127.0.0.1:9', routes: [] }] }).close(),
        'hosts',
      );
    }
    assert.ok(performance.now() - t < 2000);
  });
});

describe('odd but legal certificates', () => {
  const cn = (v: string): Rdns => [[OID.cn, v]];
  type Row = [string, Partial<CertSpec>, string[] | undefined, string | string[] | undefined];
  // [what, certificate, snis given, expected: derived snis (accepted) or an error code]
  const rows = (): Row[] => [
    ['v1 (no extensions), CN only', { version: 1, subject: cn('v1.test') }, undefined, ['v1.test']],
    ['no CN, DNS SAN', { subject: [[OID.o, 'no cn']], san: { dns: ['san.test'] } }, undefined, ['san.test']],
    ['no CN, no SAN, snis given', { subject: [[OID.ou, 'web']] }, ['given.test'], ['given.test']],
    ['no CN, no SAN, no snis', { subject: [[OID.ou, 'web']] }, undefined, ErrorCodes.SNI_INVALID],
    ['UTF-8 CN that is no host name, no snis', { subject: cn('Grüße') }, undefined, ErrorCodes.SNI_INVALID],
    [
      'UTF-8 O and CN, DNS SAN',
      {
        subject: [
          [OID.o, 'Société Générale ✓'],
          [OID.cn, '日本語'],
        ],
        san: { dns: ['utf8.test'] },
      },
      undefined,
      ['utf8.test'],
    ],
    [
      '1,000 DNS SANs',
      { subject: cn('many.test'), san: { dns: Array.from({ length: 1000 }, (_, i) => `h${i}.many.test`) } },
      undefined,
      ['h0.many.test'],
    ],
    [
      '5,000 email SANs (a PEM over 64 KiB)',
      {
        subject: cn('mail.test'),
        san: { dns: ['mail.test'], email: Array.from({ length: 5000 }, (_, i) => `u${i}@mail.test`) },
      },
      undefined,
      ErrorCodes.INVALID_OPTION,
    ],
    ['serial 0', { serial: 0n, subject: cn('zero.test') }, undefined, ['zero.test']],
    [
      '20-byte serial',
      { serial: Buffer.from(`7f${'ff'.repeat(19)}`, 'hex'), subject: cn('twenty.test') },
      undefined,
      ['twenty.test'],
    ],
    [
      'notAfter in 2060 (GeneralizedTime)',
      { subject: cn('far.test'), notAfter: Date.UTC(2060, 0, 1) },
      undefined,
      ['far.test'],
    ],
    ['empty subject, DNS SAN', { subject: [], san: { dns: ['nosubject.test'] } }, undefined, ['nosubject.test']],
  ];

  test('as server certificates: accepted with the expected snis, or a coded error', () => {
    for (const [what, over, snis, expected] of rows()) {
      const store = createSslStore();
      const cert = issue(over).pem;
      let view: ReturnType<SslStore['set']> | undefined;
      const err = acceptedOrCoded(
        () => (view = store.set({ id: 'x', cert, key: serverKey, ...(snis ? { snis } : {}) })),
        what,
      );
      if (typeof expected === 'string') {
        assert.equal(err?.code, expected, what);
        assert.equal(store.size, 0);
      } else {
        assert.equal(err, undefined, `${what}: ${err?.message}`);
        for (const n of expected!) assert.ok(view!.snis.includes(n), `${what}: ${n} in ${view!.snis.slice(0, 3)}`);
      }
    }
  });

  test('as client certificates: verified, and the identity computed', () => {
    const caSet = compileCaSet(caPem, 'client.ca');
    for (const [what, over] of rows()) {
      const leaf = parseCert(issue({ ...over, aki: keys.ec[0]!.keyId }).der);
      const v = verifyChain(caSet, [leaf], 1, Date.now());
      assert.ok(v.ok, `${what}: ${v.ok ? '' : v.detail}`);
      const id = clientIdentity(verifiedChain(v.path, v.anchor), 'tenant');
      assert.equal(typeof id.subject, 'string');
      assert.match(id.serialNumber, /^[0-9A-F]+$/);
      // Every field is computed on first read: read them all (JSON reads every accessor).
      assert.equal(JSON.parse(JSON.stringify(id)).fingerprint256, leaf.fp256, what);
    }
  });

  test('as client.ca: v1 root, UTF-8 names, serial 0 and a 20-byte serial are anchors', () => {
    const k = keys.ec[2]!;
    for (const [what, over] of [
      ['v1 self-signed', { version: 1 as const }],
      ['UTF-8', { subject: [[OID.cn, 'Wurzel-Zertifizierungsstelle ✓']] as Rdns }],
      ['serial 0', { serial: 0n }],
      ['20-byte serial', { serial: Buffer.from(`7f${'01'.repeat(19)}`, 'hex') }],
    ] as const) {
      const name: Rdns = 'subject' in over ? over.subject : [[OID.cn, `odd root ${what}`]];
      const ca = mint({
        subject: name,
        issuer: name,
        key: k,
        signer: k,
        notBefore: NOW - DAY,
        notAfter: NOW + DAY,
        basicConstraints: { ca: true },
        ...over,
      });
      const set = compileCaSet(ca.pem, 'client.ca');
      const leaf = mint({
        subject: [[OID.cn, 'c']],
        issuer: name,
        key: keys.ec[1]!,
        signer: k,
        notBefore: NOW - DAY,
        notAfter: NOW + DAY,
      });
      assert.ok(verifyChain(set, [parseCert(leaf.der)], 0, Date.now()).ok, what);
    }
  });

  describe('empty subject DN (RFC 5280 4.1.2.6 allows it when subjectAltName is critical)', () => {
    // Node's X509Certificate.subject / .issuer are undefined, not '', for an empty Name (Node 20.20),
    // and several places call string methods on them.
    test('verifyChain refuses an unknown empty-subject leaf without throwing', () => {
      const k = keys.ec[2]!;
      const self = mint({
        subject: [],
        issuer: [],
        key: k,
        signer: k,
        notBefore: NOW - DAY,
        notAfter: NOW + DAY,
        extKeyUsage: [OID.serverAuth],
      });
      const v = verifyChain(compileCaSet(caPem, 'client.ca'), [parseCert(self.der)], 1, Date.now());
      assert.equal(v.ok, false);
    });
    test('an empty-subject client certificate issued by client.ca yields an identity with subject ""', () => {
      const leaf = issue({ subject: [], san: { email: ['nobody@x.test'] }, aki: keys.ec[0]!.keyId });
      const v = verifyChain(compileCaSet(caPem, 'client.ca'), [parseCert(leaf.der)], 1, Date.now());
      assert.ok(v.ok);
      assert.equal(clientIdentity(verifiedChain(v.path, v.anchor)).subject, '');
    });
    test('store.set with an empty-subject certificate and neither SAN nor snis: SNI_INVALID', () => {
      const err = acceptedOrCoded(
        () => createSslStore().set({ id: 'x', cert: issue({ subject: [] }).pem, key: serverKey }),
        'empty subject',
      );
      assert.equal(err?.code, ErrorCodes.SNI_INVALID);
    });
    test('store.set with an empty-subject certificate and the wrong key: KEY_MISMATCH', () => {
      const err = acceptedOrCoded(
        () =>
          createSslStore().set({ id: 'x', cert: issue({ subject: [], san: { dns: ['e.test'] } }).pem, key: otherKey }),
        'empty subject',
      );
      assert.equal(err?.code, ErrorCodes.KEY_MISMATCH);
    });
    test('client.ca holding an empty-subject non-CA certificate: CA_INVALID', () => {
      const err = acceptedOrCoded(
        () => compileCaSet(issue({ subject: [], basicConstraints: { ca: false } }).pem, 'client.ca'),
        'empty subject',
      );
      assert.equal(err?.code, ErrorCodes.CA_INVALID);
    });
  });
});

describe('mangled client certificates never throw out of the verifier or the guard', () => {
  let caSet: ReturnType<typeof compileCaSet>;
  let leafDer: Buffer;
  let intDer: Buffer;
  before(() => {
    caSet = compileCaSet(caPem, 'client.ca');
    const intName: Rdns = [
      [OID.o, 'bad input'],
      [OID.cn, 'Int'],
    ];
    intDer = mint({
      subject: intName,
      issuer: rootName,
      key: keys.ec[2]!,
      signer: keys.ec[0]!,
      notBefore: NOW - DAY,
      notAfter: NOW + DAY,
      basicConstraints: { ca: true, critical: true },
      ski: keys.ec[2]!.keyId,
      aki: keys.ec[0]!.keyId,
    }).der;
    leafDer = mint({
      subject: [[OID.cn, 'leaf']],
      issuer: intName,
      key: keys.ec[1]!,
      signer: keys.ec[2]!,
      notBefore: NOW - DAY,
      notAfter: NOW + DAY,
      extKeyUsage: [OID.clientAuth],
      keyUsage: { mask: 1, critical: true },
      san: { dns: ['l.test'], email: ['l@x'] },
      aki: keys.ec[2]!.keyId,
    }).der;
  });

  test('byte flips, truncations and random bytes: node refuses to parse, or we give a verdict (1,500 runs)', () => {
    const counts = { unparsable: 0, parsedByNodeOnly: 0, verdicts: 0, ok: 0 };
    const mutate = (der: Buffer) =>
      fc.oneof(
        fc
          .array(fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
          .map((flips) => {
            const d = Buffer.from(der);
            for (const [i, x] of flips) d[i]! ^= x;
            return d;
          }),
        fc.nat(der.length - 1).map((n) => der.subarray(0, n)),
        fc.uint8Array({ minLength: 0, maxLength: 600 }).map((b) => Buffer.from(b)),
        fc.constant(der),
      );
    const verifier = new Verifier(64);
    fc.assert(
      fc.property(mutate(leafDer), mutate(intDer), fc.integer({ min: 0, max: 3 }), (leaf, int, depth) => {
        let x: X509Certificate;
        try {
          x = new X509Certificate(leaf);
        } catch {
          counts.unparsable++;
          return;
        }
        // What the guard calls with a peer leaf (single certificate: Node links the rest itself).
        const single = verifier.verify(caSet, depth, x, Date.now());
        assert.equal(typeof single.ok, 'boolean');
        // And the whole chain, the way the Verifier handles what it cannot parse.
        let parsed: ParsedCert[];
        try {
          parsed = [parseCert(x), parseCert(int)];
        } catch {
          counts.parsedByNodeOnly++;
          return;
        }
        const v = verifyChain(caSet, parsed, depth, Date.now());
        counts.verdicts++;
        if (v.ok) {
          counts.ok++;
          // Every field of the identity is computed on first read: JSON reads them all.
          JSON.stringify(clientIdentity(verifiedChain(v.path, v.anchor), 'tenant'));
        }
      }),
      { numRuns: 1500, seed: 63 },
    );
    console.log(`mangled chains: ${JSON.stringify(counts)}`);
    assert.ok(counts.verdicts > 100);
  });

  describe('over TLS', () => {
    let server: Listening;
    let store: SslStore;
    const thrown: unknown[] = [];
    const statuses = new Map<string, number>();
    before(async () => {
      store = createSslStore();
      store.set({ id: 'a', cert: serverCert, key: serverKey, snis: ['a.test'], client: { ca: caPem } });
      const guard = mtlsGuard({ store });
      // The guard must never throw; if it does, record it rather than crash the test process.
      server = await listen(
        store.attach(
          http2.createSecureServer(store.tlsOptions(), (req, res) => {
            try {
              guard(req, res, () => res.end('ok'));
            } catch (err) {
              thrown.push(err);
              res.statusCode = 500;
              res.end();
            }
          }),
        ),
      );
    });
    after(() => server?.close());

    test('random bytes on the TLS port, then mangled client certificates (60 connections): no throw, the server keeps serving', async () => {
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve) => {
          const s = net.connect(server.port, '127.0.0.1', () =>
            s.end(
              Buffer.from(fc.sample(fc.uint8Array({ minLength: 1, maxLength: 2048 }), { numRuns: 1, seed: i })[0]!),
            ),
          );
          s.on('error', () => resolve());
          s.on('close', () => resolve());
          s.resume();
        });
      }
      const samples = fc.sample(
        fc.array(fc.tuple(fc.nat(leafDer.length - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 2,
        }),
        { numRuns: 50, seed: 64 },
      );
      for (const flips of samples) {
        const d = Buffer.from(leafDer);
        for (const [i, x] of flips) d[i]! ^= x;
        try {
          new X509Certificate(d);
        } catch {
          statuses.set('unparsable', (statuses.get('unparsable') ?? 0) + 1);
          continue;
        }
        try {
          const r = await request1({
            port: server.port,
            servername: 'a.test',
            client: { cert: pem(d) + pem(intDer), key: keys.ec[1]!.keyPem },
            timeoutMs: 5000,
          });
          statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1);
        } catch (err) {
          // The client's own TLS stack may refuse the certificate, or OpenSSL may end the handshake.
          const k = `client error ${(err as { code?: string }).code ?? (err as Error).message.slice(0, 40)}`;
          statuses.set(k, (statuses.get(k) ?? 0) + 1);
        }
      }
      console.log(`mangled certificates over TLS: ${JSON.stringify(Object.fromEntries(statuses))}`);
      assert.deepEqual(thrown, []);
      const ok = await request1({
        port: server.port,
        servername: 'a.test',
        client: { cert: pem(leafDer) + pem(intDer), key: keys.ec[1]!.keyPem },
      });
      assert.equal(ok.status, 200);
    });

    test('a self-signed certificate with an empty subject and serverAuth-only EKU does not make the guard throw', async () => {
      const k = keys.ec[2]!;
      const self = mint({
        subject: [],
        issuer: [],
        key: k,
        signer: k,
        notBefore: NOW - DAY,
        notAfter: NOW + DAY,
        extKeyUsage: [OID.serverAuth],
      });
      const before = thrown.length;
      const r = await request1({ port: server.port, servername: 'a.test', client: { cert: self.pem, key: k.keyPem } });
      assert.equal(thrown.length, before, String(thrown.at(-1)));
      assert.equal(r.status, 400);
    });
  });
});
