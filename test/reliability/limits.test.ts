// Resource limits (issue 6): slow headers (slowloris), slow bodies, huge headers, many idle
// connections and many handshakes that never send a request, against node:https and node:http2
// servers attached to a store with small limits (hundreds of milliseconds). In every case the
// misbehaving sockets are closed at the configured limit, and a well-behaved client holding a valid
// certificate keeps being answered meanwhile. Also: what Node does without the limits, and how bad
// option values are refused.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { createSslStore, ErrorCodes, MtlsGateConfigError, type ServerLimits } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';
import {
  type Closed,
  drip,
  type Gate,
  partialHello,
  probe,
  type ServerKind,
  silentTcp,
  sleep,
  startGate,
  tlsThen,
  waitFor,
} from './fixtures/limits-sockets.js';

let pki: TestPki;
let client: TestCert;
let cert: { chain: string; key: string; ca: string };

before(async () => {
  pki = await createTestPki({ serverNames: ['gate.test'] });
  client = await pki.client('valid');
  cert = { chain: pki.server.chain, key: pki.server.key, ca: pki.root.cert };
});

const LIMITS = {
  handshakeTimeoutMs: 400,
  headersTimeoutMs: 300,
  requestTimeoutMs: 1000,
  keepAliveTimeoutMs: 300,
  maxHeaderSize: 4096,
  maxConcurrentStreams: 8,
} satisfies ServerLimits;
// Node 20.20 keeps an HTTP/1.1 keep-alive socket open 1 s past keepAliveTimeout (keepAliveTimeoutBuffer).
const NODE_KEEPALIVE_GRACE = 1000;
// Timers on a loaded 2-core machine: how late a limit may fire and still count as enforced.
const SLACK = 1500;

const fmt = (cs: Closed[]) => {
  const t = cs.map((c) => c.closedAfter).sort((a, b) => a - b);
  return `${cs.length} sockets closed after ${t[0]}..${t[t.length - 1]} ms`;
};

function assertClosedWithin(what: string, cs: Closed[], min: number, max: number): void {
  const late = cs.filter((c) => !(c.closedAfter <= max));
  const early = cs.filter((c) => c.closedAfter < min);
  assert.equal(
    late.length,
    0,
    `${what}: ${late.length} of ${cs.length} still open or closed after ${max} ms (${fmt(cs)})`,
  );
  assert.equal(early.length, 0, `${what}: ${early.length} of ${cs.length} closed before ${min} ms (${fmt(cs)})`);
  console.log(`${what}: ${fmt(cs)}`);
}

/** Well-behaved clients on both protocols (HTTP/1.1 only for node:https), each answered 200 in time. */
async function assertServing(gate: Gate, kind: ServerKind, what: string): Promise<void> {
  const protos = kind === 'h2' ? (['http1', 'h2'] as const) : (['http1'] as const);
  for (const p of protos) {
    const r = await probe(gate.port, client, p);
    assert.equal(r.status, 200, `${what}: ${p} probe got ${r.status} ${r.body}`);
    assert.ok(r.ms < 2000, `${what}: ${p} probe took ${r.ms} ms`);
    console.log(`${what}: ${p} probe answered 200 in ${r.ms} ms`);
  }
}

describe('attach options: defaults, false, and bad values', () => {
  const servers = (): [tls.Server, tls.Server] => [
    https.createServer(),
    http2.createSecureServer({ allowHTTP1: true }),
  ];
  /** The properties Node reads per connection (typed on node:https servers only). */
  interface Knobs {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout?: number;
    maxHeaderSize?: number;
    connectionsCheckingInterval: number;
    timeout: number;
  }
  const k = (s: tls.Server) => s as unknown as Knobs;
  const kHandshake = (s: tls.Server) =>
    (s as unknown as Record<symbol, number>)[
      Object.getOwnPropertySymbols(s).find((x) => x.description === 'handshake-timeout')!
    ];

  test('what Node does without them: 120 s handshakes, checks every 30 s, no keep-alive timeout for HTTP/1.1 on HTTP/2 servers', () => {
    const [h1, h2] = servers();
    for (const s of [h1, h2]) {
      assert.equal(kHandshake(s), 120_000);
      assert.equal(k(s).headersTimeout, 60_000);
      assert.equal(k(s).requestTimeout, 300_000);
      assert.equal(k(s).connectionsCheckingInterval, 30_000);
    }
    assert.equal(k(h1).keepAliveTimeout, 5000);
    // HTTP/1.1 on an HTTP/2 server (allowHTTP1): Node sets no keep-alive timeout at all, and HTTP/2
    // sessions have no idle timeout: an idle connection stays open for ever (shown with sockets below).
    assert.equal(k(h2).keepAliveTimeout, undefined);
    assert.equal(k(h2).timeout, 0);
  });

  test('attach applies the defaults to node:https and node:http2 servers', () => {
    for (const s of servers()) {
      createSslStore().attach(s);
      assert.equal(kHandshake(s), 10_000);
      assert.equal(k(s).headersTimeout, 60_000);
      assert.equal(k(s).requestTimeout, 300_000);
      assert.equal(k(s).keepAliveTimeout, 5000);
      assert.equal(k(s).maxHeaderSize, 16_384);
      assert.equal(k(s).connectionsCheckingInterval, 1000);
      assert.equal(s.maxConnections, undefined);
    }
  });

  test('limits: false leaves the server as Node made it', () => {
    for (const s of servers()) {
      const before = { hs: kHandshake(s), h: k(s).headersTimeout, k: k(s).keepAliveTimeout };
      createSslStore().attach(s, { limits: false });
      assert.deepEqual({ hs: kHandshake(s), h: k(s).headersTimeout, k: k(s).keepAliveTimeout }, before);
    }
  });

  test('attaching twice replaces the limits and adds no listeners', () => {
    const store = createSslStore();
    for (const s of servers()) {
      store.attach(s);
      const counts = s.eventNames().map((e) => [String(e), s.listenerCount(e)]);
      store.attach(s, { limits: { headersTimeoutMs: 1234 } });
      store.attach(s, { limits: { headersTimeoutMs: 2345 } });
      assert.deepEqual(
        s.eventNames().map((e) => [String(e), s.listenerCount(e)]),
        counts,
      );
      assert.equal(k(s).headersTimeout, 2345);
    }
  });

  const bad: [string, unknown, string][] = [];
  for (const f of [
    'handshakeTimeoutMs',
    'headersTimeoutMs',
    'requestTimeoutMs',
    'keepAliveTimeoutMs',
    'maxHeaderSize',
    'maxConcurrentStreams',
    'maxConnections',
  ]) {
    for (const v of [-1, 1.5, '100', Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, null, true, {}])
      bad.push([f, v, `limits.${f}`]);
  }
  bad.push(
    ['maxHeaderSize', 100, 'limits.maxHeaderSize'],
    ['maxConcurrentStreams', 0, 'limits.maxConcurrentStreams'],
    ['maxConnections', 0, 'limits.maxConnections'],
  );

  test(`${bad.length} bad limit values: MtlsGateConfigError INVALID_OPTION naming the field, server untouched`, () => {
    for (const [f, v, field] of bad) {
      const s = https.createServer();
      const store = createSslStore();
      assert.throws(
        () => store.attach(s, { limits: { [f]: v } as ServerLimits }),
        (e: unknown) => e instanceof MtlsGateConfigError && e.code === ErrorCodes.INVALID_OPTION && e.field === field,
        `${f}: ${String(v)}`,
      );
      assert.equal(kHandshake(s), 120_000, 'nothing applied');
      assert.equal(k(s).headersTimeout, 60_000, 'nothing applied');
    }
  });

  test('headersTimeoutMs above requestTimeoutMs is refused (Node would throw too)', () => {
    const store = createSslStore();
    for (const [limits, field] of [
      [{ headersTimeoutMs: 2000, requestTimeoutMs: 1000 }, 'limits.headersTimeoutMs'],
      [{ requestTimeoutMs: 30_000 }, 'limits.requestTimeoutMs'],
    ] as const) {
      assert.throws(
        () => store.attach(https.createServer(), { limits }),
        (e: unknown) => e instanceof MtlsGateConfigError && e.code === ErrorCodes.INVALID_OPTION && e.field === field,
        JSON.stringify(limits),
      );
    }
    // Either off, or both, is allowed.
    store.attach(https.createServer(), { limits: { headersTimeoutMs: 0, requestTimeoutMs: 0 } });
    store.attach(https.createServer(), { limits: { headersTimeoutMs: 0 } });
    store.attach(https.createServer(), { limits: { headersTimeoutMs: 90_000, requestTimeoutMs: 0 } });
  });

  test('maxConnections: kept from the server when not given, cleared when a later attach drops it', () => {
    const store = createSslStore();
    const own = https.createServer();
    own.maxConnections = 7;
    store.attach(own);
    assert.equal(own.maxConnections, 7);
    const s = https.createServer();
    store.attach(s, { limits: { maxConnections: 5 } });
    assert.equal(s.maxConnections, 5);
    store.attach(s);
    assert.equal(s.maxConnections, undefined);
  });

  test('unknown fields, non-objects and non-servers are refused with a code and field', () => {
    const store = createSslStore();
    const cases: [() => unknown, string, string][] = [
      [
        () => store.attach(https.createServer(), { limits: { headerTimeoutMs: 1 } as ServerLimits }),
        ErrorCodes.UNKNOWN_FIELD,
        'limits.headerTimeoutMs',
      ],
      [() => store.attach(https.createServer(), { limit: {} } as never), ErrorCodes.UNKNOWN_FIELD, 'limit'],
      [() => store.attach(https.createServer(), { limits: true } as never), ErrorCodes.INVALID_OPTION, 'limits'],
      [() => store.attach(https.createServer(), 'fast' as never), ErrorCodes.INVALID_OPTION, 'options'],
      [() => store.attach({} as never), ErrorCodes.INVALID_OPTION, 'server'],
      [() => store.attach(null as never), ErrorCodes.INVALID_OPTION, 'server'],
    ];
    for (const [fn, code, field] of cases) {
      assert.throws(
        fn,
        (e: unknown) => e instanceof MtlsGateConfigError && e.code === code && e.field === field,
        field,
      );
    }
  });
});

for (const kind of ['https', 'h2'] as const) {
  describe(`${kind === 'h2' ? 'node:http2 (HTTP/2 + HTTP/1.1)' : 'node:https'} server with small limits keeps answering well-behaved clients`, () => {
    let gate: Gate;
    before(async () => {
      gate = await startGate(kind, cert, { limits: LIMITS });
    });
    after(async () => {
      await gate?.close();
    });
    const settle = (what: string) =>
      waitFor(`${what}: the server's connections to drain`, async () => (await gate.connections()) === 0, 5000);

    test('100 silent TCP connections and 100 half-sent ClientHellos are closed at handshakeTimeoutMs', async () => {
      const held = [
        ...Array.from({ length: 100 }, () => silentTcp(gate.port, 10_000)),
        ...Array.from({ length: 100 }, () => partialHello(gate.port, 10_000)),
      ];
      await sleep(100);
      await assertServing(gate, kind, 'during 200 stuck handshakes');
      const cs = await Promise.all(held);
      assertClosedWithin('stuck handshakes', cs, LIMITS.handshakeTimeoutMs - 50, LIMITS.handshakeTimeoutMs + SLACK);
      await settle('stuck handshakes');
    });

    test('100 TLS connections that finish the handshake and never send a request are closed', async () => {
      // HTTP/1.1 (ALPN http/1.1): 408 at headersTimeoutMs, counted from the connection.
      const h1 = Array.from({ length: 100 }, () => tlsThen(gate.port, { client }, 10_000));
      // HTTP/2 (ALPN h2, no connection preface): GOAWAY when the session has been idle keepAliveTimeoutMs.
      const h2 =
        kind === 'h2' ? Array.from({ length: 100 }, () => tlsThen(gate.port, { client, alpn: 'h2' }, 10_000)) : [];
      await sleep(100);
      await assertServing(gate, kind, 'during 100-200 silent TLS connections');
      const c1 = await Promise.all(h1);
      assert.ok(c1.every((c) => c.handshaken));
      assert.ok(
        c1.every((c) => c.received.startsWith('HTTP/1.1 408 ')),
        c1[0]!.received,
      );
      assertClosedWithin(
        'HTTP/1.1 silent after handshake',
        c1,
        LIMITS.headersTimeoutMs - 50,
        LIMITS.headersTimeoutMs + SLACK,
      );
      if (kind === 'h2')
        assertClosedWithin(
          'HTTP/2 silent after handshake',
          await Promise.all(h2),
          LIMITS.keepAliveTimeoutMs - 50,
          LIMITS.keepAliveTimeoutMs + SLACK,
        );
      await settle('silent TLS');
    });

    test('slowloris: 50 connections sending their headers a byte every 30 ms get 408 at headersTimeoutMs', async () => {
      const head = `GET / HTTP/1.1\r\nHost: gate.test\r\nUser-Agent: slowloris\r\nX-Padding: ${'p'.repeat(200)}\r\n\r\n`;
      const held = Array.from({ length: 50 }, () => tlsThen(gate.port, { client }, 10_000, (s) => drip(s, head, 30)));
      await sleep(100);
      await assertServing(gate, kind, 'during 50 slowloris connections');
      const cs = await Promise.all(held);
      assert.ok(
        cs.every((c) => c.received.startsWith('HTTP/1.1 408 ')),
        cs[0]!.received,
      );
      assertClosedWithin('slowloris', cs, LIMITS.headersTimeoutMs - 50, LIMITS.headersTimeoutMs + SLACK);
      await settle('slowloris');
    });

    test('slow body: 20 uploads trickling a byte every 30 ms get 408 at requestTimeoutMs', async () => {
      const held = Array.from({ length: 20 }, () =>
        tlsThen(gate.port, { client }, 10_000, (s) => {
          s.write('POST / HTTP/1.1\r\nHost: gate.test\r\nContent-Length: 100000\r\n\r\n');
          drip(s, 'x'.repeat(100_000), 30);
        }),
      );
      await sleep(100);
      await assertServing(gate, kind, 'during 20 slow uploads');
      const cs = await Promise.all(held);
      assert.ok(
        cs.every((c) => c.received.startsWith('HTTP/1.1 408 ')),
        cs[0]!.received,
      );
      assertClosedWithin('slow body', cs, LIMITS.requestTimeoutMs - 50, LIMITS.requestTimeoutMs + SLACK);
      await settle('slow body');
    });

    test('huge headers: HTTP/1.1 gets 431 and the connection closes; smaller ones pass', async () => {
      const send = (n: number) =>
        tlsThen(gate.port, { client }, 5000, (s) =>
          s.write(`GET / HTTP/1.1\r\nHost: gate.test\r\nConnection: close\r\nX-Big: ${'a'.repeat(n)}\r\n\r\n`),
        );
      const big = await send(LIMITS.maxHeaderSize + 100);
      assert.match(big.received, /^HTTP\/1\.1 431 /);
      const huge = await send(1024 * 1024);
      assert.ok(huge.closedAfter < 5000 && !huge.received.startsWith('HTTP/1.1 200'), huge.received.slice(0, 40));
      const fits = await send(LIMITS.maxHeaderSize - 500);
      assert.match(fits.received, /^HTTP\/1\.1 200 /);
      await assertServing(gate, kind, 'after huge headers');
    });

    if (kind === 'h2') {
      test('huge headers: an HTTP/2 stream over maxHeaderSize is reset, the session and other streams carry on', async () => {
        const session = http2.connect(`https://127.0.0.1:${gate.port}`, {
          servername: 'gate.test',
          rejectUnauthorized: false,
          cert: client.chain,
          key: client.key,
        });
        session.on('error', () => {});
        try {
          const settings = await new Promise<http2.Settings>((r) => session.once('remoteSettings', r));
          assert.equal(settings.maxHeaderListSize, LIMITS.maxHeaderSize);
          assert.equal(settings.maxConcurrentStreams, LIMITS.maxConcurrentStreams);
          const one = (extra: Record<string, string>) =>
            new Promise<{ status: number; rst: number | undefined }>((resolve) => {
              const st = session.request({ ':path': '/', ':authority': 'gate.test', ...extra });
              let status = 0;
              st.on('response', (h) => (status = Number(h[':status'])));
              st.on('error', () => {});
              st.resume();
              st.on('close', () => resolve({ status, rst: st.rstCode }));
              st.end();
            });
          const big = await one({ 'x-big': 'a'.repeat(LIMITS.maxHeaderSize + 100) });
          assert.equal(big.status, 0, 'no response to the oversized stream');
          assert.equal(big.rst, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
          const ok = await one({ 'x-small': 'a'.repeat(100) });
          assert.equal(ok.status, 200, 'the same session still serves');
          // More streams than maxConcurrentStreams at once: the client queues them, all are answered.
          const many = await Promise.all(Array.from({ length: 24 }, () => one({ ':path': '/wait?ms=100' })));
          assert.deepEqual([...new Set(many.map((m) => m.status))], [200]);
        } finally {
          session.destroy();
        }
      });
    }

    test('200 idle keep-alive connections are closed at keepAliveTimeoutMs; a request waiting longer than it is not cut', async () => {
      // HTTP/1.1: one request each on a kept-alive connection, then silence.
      const idle1 = Array.from({ length: 100 }, () =>
        tlsThen(gate.port, { client }, 10_000, (s) => s.write('GET / HTTP/1.1\r\nHost: gate.test\r\n\r\n')),
      );
      // HTTP/2: one stream each, then an idle session.
      const sessions: Promise<{ closedAfter: number; goaway: boolean }>[] =
        kind === 'h2'
          ? Array.from({ length: 100 }, () => {
              const start = Date.now();
              return new Promise((resolve) => {
                const s = http2.connect(`https://127.0.0.1:${gate.port}`, {
                  servername: 'gate.test',
                  rejectUnauthorized: false,
                  cert: client.chain,
                  key: client.key,
                });
                let goaway = false;
                s.on('goaway', () => (goaway = true));
                s.on('error', () => {});
                s.on('close', () => resolve({ closedAfter: Date.now() - start, goaway }));
                const st = s.request({ ':path': '/', ':authority': 'gate.test' });
                st.resume();
                st.on('error', () => {});
                st.end();
              });
            })
          : [];
      await sleep(100);
      // Requests slower than the keep-alive timeout: the limit is for idle connections only.
      const slow1 = await probe(gate.port, client, 'http1', `/wait?ms=${LIMITS.keepAliveTimeoutMs * 3}`);
      assert.equal(slow1.status, 200);
      if (kind === 'h2')
        assert.equal((await probe(gate.port, client, 'h2', `/wait?ms=${LIMITS.keepAliveTimeoutMs * 3}`)).status, 200);
      await assertServing(gate, kind, 'during 100-200 idle keep-alive connections');
      const c1 = await Promise.all(idle1);
      assert.ok(c1.every((c) => c.received.startsWith('HTTP/1.1 200 ')));
      assertClosedWithin(
        'HTTP/1.1 idle keep-alive',
        c1,
        LIMITS.keepAliveTimeoutMs,
        LIMITS.keepAliveTimeoutMs + NODE_KEEPALIVE_GRACE + SLACK,
      );
      if (kind === 'h2') {
        const ss = await Promise.all(sessions);
        assert.ok(
          ss.every((s) => s.goaway),
          'each idle session got a GOAWAY',
        );
        assertClosedWithin(
          'HTTP/2 idle sessions after a request',
          ss as unknown as Closed[],
          LIMITS.keepAliveTimeoutMs - 50,
          LIMITS.keepAliveTimeoutMs + SLACK,
        );
      }
      await settle('idle keep-alive');
    });
  });
}

describe('without limits (limits: false), Node keeps idle connections open', () => {
  let gate: Gate;
  before(async () => {
    gate = await startGate('h2', cert, { limits: false });
  });
  after(async () => {
    await gate?.close();
  });

  test('an idle HTTP/2 session and an idle HTTP/1.1 keep-alive connection on an HTTP/2 server are still open after 1.5 s', async () => {
    const h1 = tlsThen(gate.port, { client }, 1500, (s) => s.write('GET / HTTP/1.1\r\nHost: gate.test\r\n\r\n'));
    const h2 = tlsThen(gate.port, { client, alpn: 'h2' }, 1500);
    const [c1, c2] = await Promise.all([h1, h2]);
    assert.match(c1.received, /^HTTP\/1\.1 200 /);
    assert.equal(c1.closedAfter, Infinity, 'HTTP/1.1 on node:http2: no keep-alive timeout');
    assert.equal(c2.closedAfter, Infinity, 'HTTP/2: no session idle timeout');
  });
});

describe('maxConnections', () => {
  let gate: Gate;
  before(async () => {
    gate = await startGate('h2', cert, { limits: { maxConnections: 5 } });
  });
  after(async () => {
    await gate?.close();
  });

  test('over the cap a new connection is closed at once; under it clients are served again', async () => {
    const held: import('node:tls').TLSSocket[] = [];
    const heldClosed: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((r) => {
        const s = tls.connect(
          {
            host: '127.0.0.1',
            port: gate.port,
            servername: 'gate.test',
            rejectUnauthorized: false,
            ALPNProtocols: ['http/1.1'],
          },
          () => r(),
        );
        s.on('error', () => {});
        heldClosed.push(new Promise((c) => s.on('close', c)));
        held.push(s);
      });
    }
    const over = await tlsThen(gate.port, { client }, 5000);
    assert.equal(over.handshaken, false, 'the sixth connection was dropped before its handshake');
    assert.ok(over.closedAfter < 1000, `dropped after ${over.closedAfter} ms`);
    for (const s of held) s.destroy();
    await Promise.all(heldClosed);
    await waitFor('the server to count the connections gone', async () => (await gate.connections()) === 0);
    assert.equal((await probe(gate.port, client, 'h2')).status, 200);
  });
});
