// Faults (issue 6), beyond test/proxy/faults.test.ts (refused, read timeout, send timeout, no node,
// resets mid-body, clients leaving mid-upload, router.update every 20 ms over keep-alive):
// - upstreams that truncate a body and close at once, answer with invalid HTTP, or stall in the
//   middle of their headers or body;
// - clients that go away at every stage, from the TCP handshake to the middle of the response,
//   counting the gateway's connections, the process's handles and the server's listeners after;
// - the SSL object replaced every 50 ms and the router every 50 ms at the same time, plus 1,000
//   SSL objects added and removed, under a mixed load, in a gateway child process whose heap is
//   measured after a full GC (the 10,000-object, 20,000-request version is test/reliability/soak.test.ts).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { createSslStore, mtlsGuard, type ServiceConfig } from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';
import { type Gateway, startGateway } from '../helpers.js';
import {
  assertNoResidue,
  type Child,
  churnConfig,
  forkGateway,
  getWithSni,
  mb,
  runLoad,
  startUpstreams,
  type Upstreams,
} from './fixtures/faults-load.js';
import { sleep, waitFor } from './fixtures/limits-sockets.js';

let pki: TestPki;
let client: TestCert;

before(async () => {
  pki = await createTestPki({ serverNames: ['gw.test'] });
  client = await pki.client('valid');
});

const tlsClient = (c: TestCert) => ({ cert: c.chain, key: c.key, servername: 'gw.test', rejectUnauthorized: false });
const activeHandles = () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
const listenerCounts = (e: NodeJS.EventEmitter) =>
  Object.fromEntries(e.eventNames().map((n) => [String(n), e.listenerCount(n)]));

/** The shared gateway (test/helpers.ts) on this file's PKI. */
const startGw = (services: ServiceConfig[]): Promise<Gateway> => startGateway(pki, services);

/** A raw TCP upstream: `onRequest` gets the socket once a request head has arrived. */
async function rawUpstream(
  onRequest: (s: Socket) => void,
  onAccept?: (s: Socket) => void,
): Promise<{ port: number; open: () => number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    if (onAccept) {
      s.resume(); // read (and drop) the request, so the peer's FIN is seen
      return onAccept(s);
    }
    let head = '';
    s.on('data', (d: Buffer) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) onRequest(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Outcome {
  status: number;
  received: number;
  /** The body ended cleanly (all of it, as far as the client can tell). */
  ended: boolean;
  error: string | undefined;
  body: string;
}

/** One GET through the gateway that reports what arrived instead of throwing. */
function get(port: number, proto: 'http1' | 'h2', path: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const o: Outcome = { status: 0, received: 0, ended: false, error: undefined, body: '' };
    if (proto === 'http1') {
      const req = https.request(
        { host: '127.0.0.1', port, path, agent: false, headers: { host: 'gw.test' }, ...tlsClient(client) },
        (res) => {
          o.status = res.statusCode!;
          res.on('data', (d: Buffer) => {
            o.received += d.length;
            if (o.body.length < 2000) o.body += d.toString('latin1');
          });
          res.on('end', () => (o.ended = true));
          res.on('aborted', () => (o.error ??= 'aborted'));
          res.on('error', (e: NodeJS.ErrnoException) => (o.error ??= e.code ?? e.message));
          res.on('close', () => resolve(o));
        },
      );
      req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => (o.status ? undefined : reject(e)));
      req.end();
      return;
    }
    const session = http2.connect(`https://127.0.0.1:${port}`, tlsClient(client));
    session.on('error', reject);
    const st = session.request({ ':path': path, ':authority': 'gw.test' });
    const timer = setTimeout(() => st.close(http2.constants.NGHTTP2_CANCEL), 15_000);
    st.on('response', (h) => (o.status = Number(h[':status'])));
    st.on('data', (d: Buffer) => {
      o.received += d.length;
      if (o.body.length < 2000) o.body += d.toString('latin1');
    });
    st.on('end', () => (o.ended = true));
    st.on('error', (e: NodeJS.ErrnoException) => (o.error ??= e.code ?? e.message));
    st.on('close', () => {
      clearTimeout(timer);
      if (st.rstCode) o.error ??= `rst ${st.rstCode}`;
      session.close();
      resolve(o);
    });
    st.end();
  });
}

const title = (body: string) => /<title>([^<]*)<\/title>/.exec(body)?.[1];
const all = [{ name: 'all', path: '/', pathType: 'prefix' as const }];
const FAST = { connect: 1, send: 1, read: 0.5 };

describe('upstreams that truncate, garble or stall', () => {
  let gw: Gateway;
  const ups: { close(): Promise<void> }[] = [];
  const cases: Record<string, (s: Socket) => void> = {
    // Content-Length longer than what is sent; the FIN follows in the same breath.
    'truncated-cl': (s) =>
      s.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(1000)}`),
    // Chunked without the last chunk.
    'truncated-chunked': (s) =>
      s.end(
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n${'a'.repeat(1000)}\r\n`,
      ),
    'garbage-status': (s) => s.end('HTTP/1.1 abc Whatever\r\nContent-Length: 2\r\n\r\nok'),
    'not-http': (s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'),
    binary: (s) => s.end(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x0d, 0x0a])),
    'bad-header': (s) => s.end('HTTP/1.1 200 OK\r\nX-Bad\x00Name: 1\r\nContent-Length: 2\r\n\r\nok'),
    'cl-and-te': (s) =>
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
    'two-cl': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!'),
    'negative-cl': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok'),
    // Stalls: half a header block, or the head and part of the body, then nothing.
    'stall-in-headers': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Ty'),
    'stall-in-body': (s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n${'a'.repeat(1000)}`),
    // Closes without a byte of answer.
    'fin-after-request': (s) => s.end(),
    'rst-after-request': (s) => s.resetAndDestroy(),
  };
  const accepting: Record<string, (s: Socket) => void> = {
    // Closes or resets as soon as the connection is accepted, before reading the request.
    'fin-on-accept': (s) => s.end(),
    'rst-on-accept': (s) => s.resetAndDestroy(),
  };

  before(async () => {
    const services: ServiceConfig[] = [];
    for (const [name, fn] of Object.entries(cases)) {
      const u = await rawUpstream(fn);
      ups.push(u);
      services.push({
        name,
        pathPrefix: `/${name}`,
        upstream: { nodes: [{ host: '127.0.0.1', port: u.port }], timeout: FAST },
        routes: all,
      });
    }
    for (const [name, fn] of Object.entries(accepting)) {
      const u = await rawUpstream(() => {}, fn);
      ups.push(u);
      services.push({
        name,
        pathPrefix: `/${name}`,
        upstream: { nodes: [{ host: '127.0.0.1', port: u.port }], timeout: FAST },
        routes: all,
      });
    }
    gw = await startGw(services);
  });
  after(async () => {
    await gw?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  const kinds = (url: string) => gw.errors.filter((e) => e.url === url).map((e) => `${e.info.status}/${e.info.kind}`);

  for (const proto of ['http1', 'h2'] as const) {
    test(`${proto}: a truncated body never ends cleanly (Content-Length short, chunked without its last chunk)`, async () => {
      for (const name of ['truncated-cl', 'truncated-chunked']) {
        const url = `/${name}/x?${proto}`;
        const o = await get(gw.port, proto, url);
        // Either the gateway had the head first (200, then the stream fails) or the failure first (502).
        if (o.status === 200) {
          assert.equal(
            o.ended && o.error === undefined,
            false,
            `${name}: the truncated body ended cleanly (${o.received} bytes)`,
          );
          assert.ok(o.received <= 1000, `${name}: ${o.received} bytes`);
        } else {
          assert.equal(o.status, 502, `${name}: ${o.status}`);
        }
        await waitFor(`onProxyError for ${url}`, () => kinds(url).length > 0, 3000);
        assert.deepEqual(kinds(url), ['502/reset'], name);
      }
    });

    test(`${proto}: invalid HTTP from the upstream -> 502 page, never passed on`, async () => {
      for (const name of ['garbage-status', 'not-http', 'binary', 'bad-header', 'cl-and-te', 'two-cl', 'negative-cl']) {
        const url = `/${name}/x?${proto}`;
        const o = await get(gw.port, proto, url);
        assert.equal(o.status, 502, `${name}: ${o.status} ${o.body.slice(0, 80)}`);
        assert.equal(title(o.body), '502 Bad Gateway', name);
        assert.equal(kinds(url).length, 1, `${name}: ${kinds(url).join()}`);
        assert.match(kinds(url)[0]!, /^502\//, name);
      }
    });

    test(`${proto}: an upstream stalling mid-headers -> 504; mid-body -> the response fails at the read timeout`, async () => {
      const t0 = Date.now();
      const h = await get(gw.port, proto, `/stall-in-headers/x?${proto}`);
      assert.equal(h.status, 504);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms with a 0.5 s read timeout`);
      assert.deepEqual(kinds(`/stall-in-headers/x?${proto}`), ['504/read_timeout']);
      const b = await get(gw.port, proto, `/stall-in-body/x?${proto}`);
      assert.equal(b.status, 200);
      assert.equal(b.ended && b.error === undefined, false, 'a stalled body must not end cleanly');
      await waitFor('the body timeout to be reported', () => kinds(`/stall-in-body/x?${proto}`).length > 0, 5000);
      assert.deepEqual(kinds(`/stall-in-body/x?${proto}`), ['504/read_timeout']);
    });

    test(`${proto}: an upstream closing or resetting before it answers -> 502, kind reset`, async () => {
      for (const name of ['fin-after-request', 'rst-after-request', 'fin-on-accept', 'rst-on-accept']) {
        const url = `/${name}/x?${proto}`;
        const o = await get(gw.port, proto, url);
        assert.equal(o.status, 502, `${name}: ${o.status}`);
        assert.deepEqual(kinds(url), ['502/reset'], name);
      }
    });
  }

  test('after all of these the gateway has no connection left open and serves a good upstream', async () => {
    await waitFor('the gateway connections to close', async () => (await gw.connections()) === 0, 5000);
    const open = ups.map((u) => (u as { open?: () => number }).open?.() ?? 0);
    // Sockets to the stalled upstreams are dropped at the read timeout.
    await waitFor(
      `the upstream sockets to close (${open.join(',')})`,
      () => ups.every((u) => ((u as { open?: () => number }).open?.() ?? 0) === 0),
      5000,
    );
  });
});

describe('clients that go away at every stage', () => {
  let gw: Gateway;
  let up: http.Server;
  const upstreamOpen = new Set<Socket>();
  let requestsSeen = 0;
  const upstreamSeen: string[] = [];
  const upstreamClosedEarly: string[] = [];

  before(async () => {
    up = http.createServer((req, res) => {
      requestsSeen++;
      const id = String(req.headers['x-id'] ?? '');
      upstreamSeen.push(id);
      res.on('close', () => {
        if (!res.writableFinished) upstreamClosedEarly.push(id);
      });
      if (req.url?.startsWith('/wait')) return; // never answers: only the client leaving ends it
      if (req.url?.startsWith('/stream')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024, 0x61)), 10);
        res.on('close', () => clearInterval(timer));
        return;
      }
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    up.on('connection', (s: Socket) => {
      upstreamOpen.add(s);
      s.on('close', () => upstreamOpen.delete(s));
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    const port = (up.address() as AddressInfo).port;
    gw = await startGw([
      {
        name: 'up',
        upstream: { nodes: [{ host: '127.0.0.1', port }], timeout: { connect: 2, send: 30, read: 30 } },
        routes: all,
      },
    ]);
  });
  after(async () => {
    await gw?.close();
    up.closeAllConnections();
    await new Promise<void>((r) => up.close(() => r()));
  });

  const ROUNDS = 10;
  type Stage = (id: string) => Promise<void>;
  const tcp = (then: (s: Socket) => void) =>
    new Promise<void>((resolve) => {
      const s = net.connect(gw.port, '127.0.0.1', () => then(s));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
  /** TLS over a TCP socket of our own (`tcp`, for resetAndDestroy, which a TLSSocket cannot do). */
  const secure = (alpn: string, then: (s: tls.TLSSocket, tcp: Socket) => void) =>
    new Promise<void>((resolve) => {
      const raw = net.connect(gw.port, '127.0.0.1');
      raw.on('error', () => {});
      const s = tls.connect({ socket: raw, ...tlsClient(client), ALPNProtocols: [alpn] }, () => then(s, raw));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
  /** An HTTP/2 stream; `leave` is called with the session and stream once `when` happens. */
  const h2 = (
    path: string,
    id: string,
    when: 'sent' | 'data',
    leave: (s: http2.ClientHttp2Session, st: http2.ClientHttp2Stream) => void,
  ) =>
    new Promise<void>((resolve) => {
      const session = http2.connect(`https://127.0.0.1:${gw.port}`, tlsClient(client));
      session.on('error', () => {});
      session.on('close', () => resolve());
      const st = session.request({ ':path': path, ':authority': 'gw.test', 'x-id': id });
      st.on('error', () => {});
      if (when === 'sent') {
        st.end();
        void waitFor('the upstream to see the request', () => requestsSeen > 0, 5000).then(async () => {
          await sleep(50);
          leave(session, st);
          if (!session.destroyed) session.close();
        });
      } else {
        st.once('data', () => {
          leave(session, st);
          if (!session.destroyed) session.close();
        });
        st.end();
      }
    });

  const stages: [string, Stage][] = [
    ['TCP connect, then close before the ClientHello', () => tcp((s) => s.end())],
    [
      'half a ClientHello, then RST',
      () => tcp((s) => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), () => s.resetAndDestroy())),
    ],
    [
      'ClientHello sent, RST before the handshake completes',
      () =>
        tcp((s) => {
          // A real ClientHello from a TLS client over this TCP socket, then the reset.
          const t = tls.connect({ socket: s, ...tlsClient(client) });
          t.on('error', () => {});
          setImmediate(() => s.resetAndDestroy());
        }),
    ],
    ['handshake done, close before any request (HTTP/1.1)', () => secure('http/1.1', (s) => s.end())],
    ['handshake done, RST before any request (HTTP/2)', () => secure('h2', (_s, tcp) => tcp.resetAndDestroy())],
    [
      'mid request head (HTTP/1.1)',
      () => secure('http/1.1', (s) => s.write('GET /x HTTP/1.1\r\nHost: gw.test\r\nX-Some', () => s.destroy())),
    ],
    [
      'mid request body (HTTP/1.1)',
      (id) =>
        secure('http/1.1', (s) => {
          s.write(
            `POST /x HTTP/1.1\r\nHost: gw.test\r\nX-Id: ${id}\r\nContent-Length: 100000\r\n\r\n${'b'.repeat(5000)}`,
          );
          void waitFor('the upstream to see the request', () => requestsSeen > 0, 5000).then(() => s.destroy());
        }),
    ],
    [
      'while the upstream is thinking (HTTP/1.1)',
      (id) =>
        secure('http/1.1', (s) => {
          s.write(`GET /wait HTTP/1.1\r\nHost: gw.test\r\nX-Id: ${id}\r\n\r\n`);
          void waitFor('the upstream to see the request', () => requestsSeen > 0, 5000).then(() =>
            setTimeout(() => s.destroy(), 50),
          );
        }),
    ],
    [
      'while the upstream is thinking (HTTP/2 session dropped)',
      (id) => h2('/wait', id, 'sent', (session) => session.destroy()),
    ],
    [
      'while the upstream is thinking (HTTP/2 stream cancelled)',
      (id) => h2('/wait', id, 'sent', (_s, st) => st.close(http2.constants.NGHTTP2_CANCEL)),
    ],
    [
      'mid response (HTTP/1.1)',
      (id) =>
        secure('http/1.1', (s) => {
          s.write(`GET /stream HTTP/1.1\r\nHost: gw.test\r\nX-Id: ${id}\r\n\r\n`);
          s.once('data', () => s.destroy());
        }),
    ],
    ['mid response (HTTP/2 session dropped)', (id) => h2('/stream', id, 'data', (session) => session.destroy())],
    [
      'mid response (HTTP/2 stream cancelled)',
      (id) => h2('/stream', id, 'data', (_s, st) => st.close(http2.constants.NGHTTP2_CANCEL)),
    ],
  ];

  test(`${stages.length} stages x ${ROUNDS} rounds: no connection, handle or listener left behind, no upstream error, the gateway still serves`, {
    timeout: 60_000,
  }, async () => {
    // Warm up: one full request path each way, so lazily created handles (pools, timers) exist before counting.
    assert.equal((await get(gw.port, 'http1', '/ok')).status, 200);
    assert.equal((await get(gw.port, 'h2', '/ok')).status, 200);
    await waitFor('warm-up connections to close', async () => (await gw.connections()) === 0, 5000);
    const handlesBefore = activeHandles();
    const listenersBefore = listenerCounts(gw.server);
    const figures: string[] = [];
    for (const [name, stage] of stages) {
      for (let round = 0; round < ROUNDS; round++) {
        requestsSeen = 0;
        await stage(`${name}#${round}`);
      }
      await waitFor(`${name}: the gateway's connections to close`, async () => (await gw.connections()) === 0, 5000);
      // Every request the upstream received for this stage was aborted: its response closed unfinished.
      const mine = (ids: string[]) => ids.filter((id) => id.startsWith(`${name}#`)).length;
      const expected = /body|thinking|mid response/.test(name) ? ROUNDS : 0;
      await waitFor(
        `${name}: the upstream requests to be aborted`,
        () => mine(upstreamSeen) === expected && mine(upstreamClosedEarly) === expected,
        5000,
      ).catch((e: Error) => {
        throw new Error(
          `${e.message}: upstream saw ${mine(upstreamSeen)}, aborted ${mine(upstreamClosedEarly)}, expected ${expected}`,
        );
      });
      figures.push(
        `${name}: ${ROUNDS} rounds, upstream requests ${mine(upstreamSeen)}, aborted ${mine(upstreamClosedEarly)}`,
      );
    }
    assert.deepEqual(
      gw.errors.map((e) => `${e.url} ${e.info.kind}`),
      [],
      'a client leaving is not an upstream error',
    );
    await waitFor('aborted upstream sockets to close', () => upstreamOpen.size <= 1, 5000);
    // Every leftover socket is gone; what remains are the same handles as before.
    await waitFor('handles to settle', () => activeHandles() <= handlesBefore, 5000).catch(() => {});
    const handlesAfter = activeHandles();
    assert.deepEqual(listenerCounts(gw.server), listenersBefore, 'server listeners');
    assert.equal(await gw.connections(), 0);
    assert.ok(handlesAfter <= handlesBefore, `active handles ${handlesBefore} -> ${handlesAfter}`);
    assert.equal((await get(gw.port, 'http1', '/ok')).status, 200);
    assert.equal((await get(gw.port, 'h2', '/ok')).status, 200);
    console.log(figures.join('\n'));
    console.log(
      `client disconnects: ${stages.length * ROUNDS} connections left at ${stages.length} stages; gateway connections after 0; active handles ${handlesBefore} -> ${handlesAfter}; server listeners unchanged; upstream sockets open ${upstreamOpen.size}`,
    );
  });
});

describe('a node:https server and clients that prefer HTTP/2', () => {
  // tlsOptions() offers ALPN h2 and http/1.1 for node:http2 servers; node:https speaks HTTP/1.1
  // only, so curl (which prefers h2) got an empty reply from https.createServer(store.tlsOptions()).
  const answers = async (attach: boolean) => {
    const store = createSslStore();
    store.set({
      id: 'gw',
      cert: pki.server.chain,
      key: pki.server.key,
      snis: ['gw.test'],
      client: { ca: pki.root.cert },
    });
    const guard = mtlsGuard({ store });
    const server = https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => res.end('hello')));
    if (attach) store.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const alpn = await new Promise<string | false | null>((resolve, reject) => {
        const s = tls.connect(
          { host: '127.0.0.1', port, ...tlsClient(client), ALPNProtocols: ['h2', 'http/1.1'] },
          () => {
            resolve(s.alpnProtocol);
            s.destroy();
          },
        );
        s.on('error', reject);
      });
      const curl = await new Promise<string>((resolve) => {
        const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-faults-'));
        writeFileSync(join(dir, 'c.crt'), client.chain);
        writeFileSync(join(dir, 'c.key'), client.key);
        execFile(
          'curl',
          [
            '-sk',
            '-i',
            '--max-time',
            '10',
            '--cert',
            join(dir, 'c.crt'),
            '--key',
            join(dir, 'c.key'),
            '--resolve',
            `gw.test:${port}:127.0.0.1`,
            `https://gw.test:${port}/`,
          ],
          (err, stdout) => {
            rmSync(dir, { recursive: true, force: true });
            resolve(err ? `curl exit ${(err as { code?: number }).code}` : stdout.split('\r\n')[0]!);
          },
        );
      });
      return { alpn, curl };
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  };

  test('store.attach makes a node:https server offer only http/1.1: curl without --http1.1 gets its answer', async () => {
    assert.deepEqual(await answers(true), { alpn: 'http/1.1', curl: 'HTTP/1.1 200 OK' });
  });

  test('a node:https server made from tlsOptions() answers curl without attach', async () => {
    assert.deepEqual(await answers(false), { alpn: 'http/1.1', curl: 'HTTP/1.1 200 OK' });
  });
});

describe('SSL object and router replaced every 50 ms, 1,000 SSL objects added and removed, under load (gateway in a child process)', () => {
  let gw: Child;
  let ups: Upstreams;
  let otherRoot: Awaited<ReturnType<TestPki['createRoot']>>;
  let otherClient: TestCert;

  before(async () => {
    ups = await startUpstreams();
    otherRoot = await pki.createRoot({ subject: 'CN=second tenant root' });
    otherClient = await otherRoot.issue({ subject: 'CN=second tenant client' });
    gw = await forkGateway(await churnConfig(pki, otherRoot, ups));
  });
  after(async () => {
    await gw?.stop();
    await ups?.close();
  });

  test('2,000 requests: none that should pass fails; no connection, handle or listener leaked; heap back after GC', {
    timeout: 120_000,
  }, async () => {
    const load = (total: number) =>
      runLoad({
        port: gw.port,
        client,
        otherClient,
        total,
        workers: { 'h1-fresh': 2, 'h1-keepalive': 4, h2: 4, 'other-ca': 1 },
        deadlineMs: 90_000,
      });
    // Warm-up, then the baseline: connections closed, full GC.
    const warm = await load(300);
    assert.deepEqual(warm.failures, []);
    gw.send({ cmd: 'stats' });
    await sleep(200);
    const before = (await gw.next('stats')).stats;

    gw.send({ cmd: 'churn', storeMs: 50, routerMs: 50, bulk: 1000 });
    let bulkProbes: number[] = [];
    const bulk = gw.next('bulk-added', 90_000).then(async (m) => {
      bulkProbes = await Promise.all(m.snis.map((sni) => getWithSni(gw.port, client, sni)));
      gw.send({ cmd: 'bulk-remove' });
    });
    const r = await load(2000);
    await bulk;
    await sleep(300);
    gw.send({ cmd: 'stop-churn' });
    const counts = (await gw.next('churned')).counts;

    // Idle keep-alive connections close after the default 5 s limit; the load closed its own.
    let after = before;
    await waitFor(
      'the gateway connections to close',
      async () => {
        gw.send({ cmd: 'stats' });
        after = (await gw.next('stats')).stats;
        return after.connections === 0;
      },
      10_000,
    );

    const lines = [
      `requests under reload: ${r.issued} in ${r.ms} ms (h1 fresh ${r.byKind['h1-fresh']}, h1 keep-alive ${r.byKind['h1-keepalive']}, h2 ${r.byKind.h2}, second-tenant client ${r.byKind['other-ca']}: ${r.otherCa.ok} x 200, ${r.otherCa.rejected} x 400)`,
      `reloads during the load: SSL object replaced ${counts.storeSets} times, router ${counts.routerUpdates} times; ${counts.bulkAdded} SSL objects added, ${counts.bulkRemoved} removed; longest churn step ${counts.maxStepMs.toFixed(1)} ms`,
      `failures: ${r.failures.length}; proxy errors ${JSON.stringify(after.proxyErrors)}; guard rejects ${JSON.stringify(after.rejects)}`,
      `bulk SNIs probed while present: ${bulkProbes.length}, statuses ${[...new Set(bulkProbes)].join(',')}`,
      `gateway connections after: ${after.connections}; active handles ${before.handles} -> ${after.handles} (${JSON.stringify(after.handleTypes)}); store size ${after.storeSize}`,
      `server listeners before ${JSON.stringify(before.serverListeners)} after ${JSON.stringify(after.serverListeners)}`,
      `heap after GC: ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} (${after.heapUsed >= before.heapUsed ? '+' : ''}${mb(after.heapUsed - before.heapUsed)}); rss ${mb(before.rss)} -> ${mb(after.rss)}`,
    ];
    console.log(lines.join('\n'));

    assert.deepEqual(r.failures.slice(0, 10), [], `${r.failures.length} failed requests`);
    assert.equal(r.issued, 2000, 'all requests issued before the deadline');
    assert.equal(r.ok + r.otherCa.ok + r.otherCa.rejected, 2000);
    assert.ok(counts.storeSets >= 10 && counts.routerUpdates >= 10, `too few reloads: ${JSON.stringify(counts)}`);
    assert.equal(counts.bulkAdded, 1000);
    assert.equal(counts.bulkRemoved, 1000);
    assert.deepEqual([...new Set(bulkProbes)], [200]);
    assert.ok(ups.hits[0] > 0 && ups.hits[1] > 0, `both upstreams served: ${ups.hits.join(',')}`);
    // 1,000 SSL objects (with their TLS contexts) came and went: the heap must come back near its baseline.
    assertNoResidue(before, after, 8 * 1024 * 1024);
  });
});
