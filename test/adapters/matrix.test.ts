// One guard matrix, nine hosts: plain node:https, node:http2, Express 4, Express 5, Koa 2, Koa 3,
// Fastify 5 (HTTPS and HTTP/2) and Hono 4 (on @hono/node-server).
// Every case must reach the same verdict (status, reject reason, page bytes, identity) on all.

import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import express5 from 'express';
import express4 from 'express4';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RawServerBase,
  type RouteGenericInterface,
} from 'fastify';
import { type Context, Hono } from 'hono';
import Koa3 from 'koa';
import Koa2 from 'koa2';
import { mtlsGuard as expressGuard } from '../../src/adapters/express.js';
import fastifyMtlsGate from '../../src/adapters/fastify.js';
import { mtlsGuard as honoGuard, type MtlsVariables } from '../../src/adapters/hono.js';
import { mtlsGuard as koaGuard } from '../../src/adapters/koa.js';
import {
  mtlsGuard as coreGuard,
  createSslStore,
  type GuardOptions,
  getClientIdentity,
  type SslStore,
} from '../../src/index.js';
import {
  type CallbackApp,
  createTestPki,
  startTestServer,
  type TestCert,
  type TestHandler,
  type TestServer,
  testRequest,
} from '../../src/testing/index.js';

interface Host {
  name: string;
  protocols: ('http1' | 'h2')[];
  /** The server: node:https (`http1`) or node:http2 with HTTP/1.1 fallback (`h2`); default by app. */
  server?: 'http1' | 'h2';
  /** Builds the app; everything under `/api` also exercises a mount point where the framework has one. */
  build?(options: GuardOptions): TestHandler | CallbackApp;
  /** For a framework that makes its own server (Fastify): starts it, the store attached, on a free port. */
  serve?(options: GuardOptions): Promise<Pick<TestServer, 'port' | 'close'>>;
}

const echo = (identity: ReturnType<typeof getClientIdentity> | undefined, path: string, viaCore: boolean) =>
  JSON.stringify({
    subject: identity === undefined ? 'unset' : (identity?.subject ?? null),
    sslId: identity?.sslId ?? null,
    path,
    viaCore,
  });

function expressApp(express: typeof express5) {
  return (options: GuardOptions) => {
    const app = express();
    const guard = expressGuard(options);
    const reply = (req: express5.Request, res: express5.Response) => {
      res.type('application/json').send(echo(req.mtls, req.originalUrl, getClientIdentity(req) === (req.mtls ?? null)));
    };
    // Mounted: Express strips `/api` from req.url inside; the skip-list must still see `/api/...`.
    app.use('/api', guard, reply);
    app.use(guard, reply);
    return app;
  };
}

function koaApp(Koa: typeof Koa3) {
  return (options: GuardOptions) => {
    const app = new Koa();
    app.use(async (ctx, next) => {
      // What koa-mount does: the downstream sees the path without the mount prefix.
      if (ctx.path.startsWith('/api/')) ctx.path = ctx.path.slice(4);
      await next();
    });
    app.use(koaGuard(options)).use((ctx) => {
      ctx.type = 'application/json';
      ctx.body = echo(ctx.state.mtls, ctx.originalUrl, getClientIdentity(ctx.req) === ctx.state.mtls);
    });
    return app;
  };
}

function nodeApp(options: GuardOptions): TestHandler {
  const guard = coreGuard(options);
  return (req: IncomingMessage, res: ServerResponse) =>
    guard(req, res, () => {
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(echo(getClientIdentity(req), req.url ?? '/', true));
    });
}

/** Fastify's own server (`https`, or `http2` with HTTP/1.1 fallback) from the store's TLS options. */
function fastifyServer(http2: boolean) {
  return async (options: GuardOptions) => {
    const app = http2 ? Fastify({ http2: true, https: store.tlsOptions() }) : Fastify({ https: store.tlsOptions() });
    store.attach(app.server);
    await fastifyRoutes(app as FastifyInstance<RawServerBase>, options);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
  };
}

async function fastifyRoutes(app: FastifyInstance<RawServerBase>, options: GuardOptions): Promise<void> {
  const reply = async (
    request: FastifyRequest<RouteGenericInterface, RawServerBase>,
    r: FastifyReply<RouteGenericInterface, RawServerBase>,
  ) => {
    r.type('application/json');
    return echo(request.mtls, request.originalUrl, getClientIdentity(request.raw) === request.mtls);
  };
  // At the root (fastify-plugin: not encapsulated), so it guards every route, those of the
  // encapsulated `/api` plugin included. Fastify routes on the full URL: a prefix strips nothing.
  await app.register(fastifyMtlsGate, options);
  app.get('/*', reply);
  await app.register(async (api) => void api.get('/*', reply), { prefix: '/api' });
}

function honoApp(options: GuardOptions): TestHandler {
  type E = { Bindings: HttpBindings; Variables: MtlsVariables };
  const guard = honoGuard(options);
  const reply = (c: Context<E>) =>
    c.body(echo(c.var.mtls, c.env.incoming.url ?? '/', getClientIdentity(c.env.incoming) === c.var.mtls), 200, {
      'content-type': 'application/json',
    });
  // A sub-application under `/api`, with the same guard: Hono leaves incoming.url whole.
  const api = new Hono<E>().use(guard).all('*', reply);
  const app = new Hono<E>().route('/api', api).use(guard).all('*', reply);
  return getRequestListener(app.fetch) as unknown as TestHandler;
}

const hosts: Host[] = [
  { name: 'node:https', protocols: ['http1'], server: 'http1', build: nodeApp },
  { name: 'node:http2', protocols: ['http1', 'h2'], server: 'h2', build: nodeApp },
  { name: 'express 4', protocols: ['http1'], build: expressApp(express4) },
  { name: 'express 5', protocols: ['http1'], build: expressApp(express5) },
  { name: 'koa 2', protocols: ['http1', 'h2'], build: koaApp(Koa2) },
  { name: 'koa 3', protocols: ['http1', 'h2'], build: koaApp(Koa3) },
  { name: 'fastify 5 (https)', protocols: ['http1'], serve: fastifyServer(false) },
  { name: 'fastify 5 (http2)', protocols: ['http1', 'h2'], serve: fastifyServer(true) },
  { name: 'hono 4 (@hono/node-server)', protocols: ['http1', 'h2'], build: honoApp },
];

interface Case {
  name: string;
  servername: string;
  host?: string;
  path?: string;
  cert?: keyof typeof certs;
  /** 200, or the reject reason. */
  expect: 200 | string;
  /** Subject expected on 200; null for "no certificate needed". */
  subject?: 'client' | null;
}

const certs = {} as Record<'valid' | 'viaIntermediate' | 'otherCa' | 'expired' | 'notYetValid', TestCert>;

const cases: Case[] = [
  { name: 'valid', servername: 'a.test', cert: 'valid', expect: 200, subject: 'client' },
  { name: 'via an intermediate', servername: 'a.test', cert: 'viaIntermediate', expect: 200, subject: 'client' },
  { name: 'missing', servername: 'a.test', expect: 'missing' },
  { name: 'another CA', servername: 'a.test', cert: 'otherCa', expect: 'untrusted' },
  { name: 'expired', servername: 'a.test', cert: 'expired', expect: 'expired' },
  { name: 'not yet valid', servername: 'a.test', cert: 'notYetValid', expect: 'not_yet_valid' },
  {
    name: 'SNI of an open object, Host of an mTLS one',
    servername: 'open.test',
    host: 'a.test',
    cert: 'valid',
    expect: 'sni_host_mismatch',
  },
  { name: 'open object, no certificate', servername: 'open.test', expect: 200, subject: null },
  { name: 'skip-list hit, no certificate', servername: 'a.test', path: '/public/info', expect: 200, subject: null },
  // Not canonical: Express and Koa route on the raw target, so no skip is granted to it (finding 10).
  { name: 'skip-list hit, percent-encoded', servername: 'a.test', path: '/%70ublic/info', expect: 'missing' },
  { name: 'skip-list miss by dot segments', servername: 'a.test', path: '/public/../private', expect: 'missing' },
  {
    name: 'skip-list entry naming the mount point, no certificate',
    servername: 'a.test',
    path: '/api/open/info',
    expect: 200,
    subject: null,
  },
  // Inside the mount, req.url is `/public/info`: matching on it would skip the certificate.
  {
    name: 'skip-list entry matching only below the mount point',
    servername: 'a.test',
    path: '/api/public/info',
    expect: 'missing',
  },
  { name: 'under a mount point, outside the skip-list', servername: 'a.test', path: '/api/private', expect: 'missing' },
  {
    name: 'under a mount point, valid',
    servername: 'a.test',
    path: '/api/private',
    cert: 'valid',
    expect: 200,
    subject: 'client',
  },
];

let store: SslStore;

before(async () => {
  const pki = await createTestPki({ serverNames: ['a.test', 'open.test'] });
  for (const shape of ['valid', 'viaIntermediate', 'otherCa', 'expired', 'notYetValid'] as const)
    certs[shape] = await pki.client(shape);
  store = createSslStore();
  const pair = { cert: pki.server.chain, key: pki.server.key };
  store.set({
    id: 'a',
    ...pair,
    snis: ['a.test'],
    client: { ca: pki.root.cert, skipMtlsUriRegex: ['^/public/', '^/api/open/'] },
  });
  store.set({ id: 'open', ...pair, snis: ['open.test'] });
});

/** Verdicts per host and protocol: `case -> "200 subject" | "400 reason"`, compared across hosts at the end. */
const tables = new Map<string, Map<string, string>>();
const pages = new Map<string, string>();

for (const h of hosts) {
  describe(`guard on ${h.name}`, () => {
    let server: Pick<TestServer, 'port' | 'close'>;
    const rejects: string[] = [];
    before(async () => {
      const options: GuardOptions = { store, onReject: (i) => rejects.push(i.reason) };
      server = h.serve
        ? await h.serve(options)
        : await startTestServer(h.build!(options), { store, ...(h.server ? { protocol: h.server } : {}) });
    });
    after(() => server.close());

    for (const protocol of h.protocols) {
      for (const c of cases) {
        test(`${protocol}: ${c.name}`, async () => {
          const before = rejects.length;
          const r = await testRequest({
            port: server.port,
            protocol,
            servername: c.servername,
            ...(c.host ? { host: c.host } : {}),
            path: c.path ?? '/private',
            ...(c.cert ? { client: certs[c.cert] } : {}),
          });
          const key = `${h.name}/${protocol}`;
          if (!tables.has(key)) tables.set(key, new Map());
          if (c.expect === 200) {
            assert.equal(r.status, 200, r.body);
            const body = r.json<{ subject: string | null; sslId: string | null; path: string; viaCore: boolean }>();
            if (c.subject === 'client') {
              assert.equal(body.subject, certs[c.cert!].subject.split('\n').reverse().join(','));
              assert.equal(body.sslId, 'a');
            } else {
              assert.equal(body.subject, null, 'no certificate needed: identity is null, not unset');
            }
            assert.equal(body.viaCore, true, 'the adapter exposes the same identity as getClientIdentity');
            assert.equal(body.path, c.path ?? '/private');
            assert.equal(rejects.length, before);
            tables.get(key)!.set(c.name, `200 ${body.subject === null ? 'anonymous' : 'client'}`);
          } else {
            assert.equal(r.status, 400, r.body);
            assert.equal(rejects.length, before + 1);
            assert.equal(rejects.at(-1), c.expect);
            assert.match(r.body, /<title>400 Bad Request<\/title>/);
            const page = pages.get(protocol);
            if (page === undefined) pages.set(protocol, r.body);
            else assert.equal(r.body, page, 'the 400 page is byte-identical on every host');
            if (protocol === 'http1') assert.equal(r.headers.connection, 'close');
            tables.get(key)!.set(c.name, `400 ${rejects.at(-1)}`);
          }
        });
      }
    }
  });
}

describe('all hosts agree', () => {
  test('every host reached the same verdict on every case', () => {
    const reference = tables.get('node:https/http1');
    assert.ok(reference && reference.size === cases.length, 'the plain Node run completed');
    const ref = Object.fromEntries(reference);
    for (const [key, table] of tables) assert.deepEqual(Object.fromEntries(table), ref, key);
    assert.equal(
      tables.size,
      hosts.reduce((n, h) => n + h.protocols.length, 0),
    );
  });
});
