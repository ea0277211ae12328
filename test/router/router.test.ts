import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createRouter, type ServiceConfig } from '../../src/index.js';

const up = 'http://127.0.0.1:9';
const svc = (s: Partial<ServiceConfig> & Pick<ServiceConfig, 'name' | 'routes'>): ServiceConfig => ({
  upstream: up,
  ...s,
});

describe('matching order (APISIX radixtree_host_uri)', () => {
  const router = createRouter({
    services: [
      svc({
        name: 'api',
        pathPrefix: '/v1',
        routes: [
          { name: 'json', path: '/json', methods: ['GET'] },
          { name: 'json-post', path: '/json', pathType: 'prefix', methods: ['POST'] },
          { name: 'all', path: '/', pathType: 'prefix' },
          { name: 'users', path: '/users', pathType: 'prefix' },
          { name: 'users-me', path: '/users/me', pathType: 'prefix' },
        ],
      }),
      svc({ name: 'hosted', hosts: ['a.test'], routes: [{ name: 'any', path: '/', pathType: 'prefix' }] }),
      svc({ name: 'wild', hosts: ['*.w.test'], routes: [{ name: 'w', path: '/v1/json' }] }),
      svc({ name: 'deep', hosts: ['*.b.w.test'], routes: [{ name: 'd', path: '/v1/json' }] }),
      svc({ name: 'route-hosts', routes: [{ name: 'rh', path: '/only', hosts: ['only.test'] }] }),
      svc({ name: 'keep', pathPrefix: '/keep', stripPathPrefix: false, routes: [{ name: 'k', path: '/x' }] }),
      svc({ name: 'root', routes: [{ name: 'exact-root', path: '/' }] }),
    ],
  });
  const m = (method: string, host: string, target: string) => {
    const r = router.match(method, host, target);
    return r && `${r.service}/${r.route} ${r.upstreamPath}`;
  };
  test('exact path, prefix stripped, query kept', () => {
    assert.equal(m('GET', 'x.test', '/v1/json?a=1&b=2'), 'api/json /json?a=1&b=2');
  });
  test('method mismatch falls through; no 405', () => {
    assert.equal(m('POST', 'x.test', '/v1/json'), 'api/json-post /json');
    assert.equal(m('HEAD', 'x.test', '/v1/json'), 'api/all /json', 'HEAD is not GET');
    assert.equal(m('DELETE', 'x.test', '/v1/json'), 'api/all /json');
  });
  test('longer prefixes first; plain string prefixes', () => {
    assert.equal(m('GET', 'x.test', '/v1/users/me/x'), 'api/users-me /users/me/x');
    assert.equal(m('GET', 'x.test', '/v1/users/meow'), 'api/users-me /users/meow');
    assert.equal(m('GET', 'x.test', '/v1/usersX'), 'api/users /usersX');
    assert.equal(m('GET', 'x.test', '/v1/'), 'api/all /');
  });
  test('prefix route "/" under /v1 does not match /v1 itself nor /v2', () => {
    assert.equal(m('GET', 'x.test', '/v1'), undefined);
    assert.equal(m('GET', 'x.test', '/v2/json'), undefined);
    assert.equal(m('GET', 'x.test', '/v1/json/'), 'api/all /json/');
  });
  test('host-bound routes before host-less ones, even a prefix over an exact path', () => {
    assert.equal(m('GET', 'a.test', '/v1/json'), 'hosted/any /v1/json');
    assert.equal(m('GET', 'A.TEST', '/v1/json'), 'hosted/any /v1/json');
  });
  test('wildcard hosts: any depth below, most specific first, never the bare domain', () => {
    assert.equal(m('GET', 'x.w.test', '/v1/json'), 'wild/w /v1/json');
    assert.equal(m('GET', 'x.y.w.test', '/v1/json'), 'wild/w /v1/json');
    assert.equal(m('GET', 'c.b.w.test', '/v1/json'), 'deep/d /v1/json');
    assert.equal(m('GET', 'w.test', '/v1/json'), 'api/json /json');
  });
  test('route hosts override the service; stripPathPrefix false keeps the prefix', () => {
    assert.equal(m('GET', 'only.test', '/only'), 'route-hosts/rh /only');
    assert.equal(m('GET', 'x.test', '/only'), undefined);
    assert.equal(m('GET', 'x.test', '/keep/x'), 'keep/k /keep/x');
  });
  test('the path is normalised before matching and re-encoded for the upstream', () => {
    assert.equal(m('GET', 'x.test', '/v1//json'), 'api/json /json');
    assert.equal(m('GET', 'x.test', '/x/../v1/json'), 'api/json /json');
    assert.equal(m('GET', 'x.test', '/v1/%6Aso%6E'), 'api/json /json');
    assert.equal(m('GET', 'x.test', '/v1/users/a%20b'), 'api/users /users/a%20b');
    assert.equal(m('GET', 'x.test', '/v1/users/a%2fb'), undefined);
  });
  test('a trailing "*" is a prefix match, as in APISIX: /foo* and /foo/*', () => {
    const r = createRouter({
      services: [
        svc({
          name: 'st',
          routes: [
            { name: 'star', path: '/foo*' },
            { name: 'slash', path: '/bar/*' },
          ],
        }),
      ],
    });
    assert.equal(r.match('GET', 'x', '/foo')?.route, 'star');
    assert.equal(r.match('GET', 'x', '/foo1')?.route, 'star');
    assert.equal(r.match('GET', 'x', '/foo/bar')?.route, 'star');
    assert.equal(r.match('GET', 'x', '/bar/')?.route, 'slash');
    assert.equal(r.match('GET', 'x', '/bar/x')?.route, 'slash');
    assert.equal(r.match('GET', 'x', '/bar'), undefined);
    void r.close();
  });
  test('exact root route', () => {
    assert.equal(m('GET', 'x.test', '/'), 'root/exact-root /');
  });
});

describe('over HTTP', () => {
  let server: http.Server;
  let upstream: http.Server;
  let port: number;
  let seen: { url: string; host: string | undefined }[] = [];
  const router = createRouter({ services: [] });
  before(async () => {
    upstream = http.createServer((req, res) => {
      seen.push({ url: req.url!, host: req.headers.host });
      res.end('up');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upPort = (upstream.address() as AddressInfo).port;
    router.update([
      {
        name: 'secure',
        pathPrefix: '/v1',
        protocols: ['https'],
        hosts: ['s.test'],
        upstream: `http://127.0.0.1:${upPort}`,
        routes: [{ name: 'json', path: '/json', methods: ['GET'] }],
      },
      {
        name: 'plain',
        pathPrefix: '/p',
        protocols: ['http'],
        upstream: { nodes: [{ host: '127.0.0.1', port: upPort }], passHost: 'node', pathPrefix: '/base' },
        routes: [{ name: 'any', path: '/', pathType: 'prefix' }],
      },
    ]);
    server = http.createServer((req, res) => router(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.close();
    upstream.close();
    await router.close();
  });
  const get = (path: string, method = 'GET', host = 's.test') =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  test('no route: 404 with APISIX body', async () => {
    const r = await get('/nope', 'GET', 'x.test');
    assert.equal(r.status, 404);
    assert.equal(r.body, '{"error_msg":"404 Route Not Found"}\n');
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  });
  test('HTTPS-only service over plain HTTP redirects: 301 GET/HEAD, 308 otherwise', async () => {
    const g = await get('/v1/json?x=1');
    assert.equal(g.status, 301);
    assert.equal(g.headers.location, 'https://s.test/v1/json?x=1');
    const h = await get('/v1/json', 'HEAD');
    assert.equal(h.status, 404, 'HEAD is not GET: no route, no redirect');
    seen = [];
    const p = await get('/v1/json', 'POST');
    assert.equal(p.status, 404);
    assert.equal(seen.length, 0);
  });
  test('http service proxies with passHost node and the upstream path prefix', async () => {
    seen = [];
    const r = await get('/p/a/b?q=1', 'GET', 'whatever.test');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'up');
    assert.equal(seen[0]!.url, '/base/a/b?q=1');
    assert.match(seen[0]!.host!, /^127\.0\.0\.1:\d+$/);
  });
  test('as middleware, no match calls next', async () => {
    let called = false;
    await new Promise<void>((resolve) => {
      const fake = { url: '/nope', method: 'GET', headers: { host: 'x.test' }, socket: {} } as never;
      router(fake, {} as never, () => {
        called = true;
        resolve();
      });
    });
    assert.equal(called, true);
  });
  test('a bad target gets 400', async () => {
    const r = await get('/v1/%zz');
    assert.equal(r.status, 400);
  });
});

describe('configuration errors', () => {
  const bad: [string, unknown, string, string][] = [
    ['services not an array', {}, 'ERR_MTLS_INVALID_OPTION', 'services'],
    [
      'unknown service field',
      [{ name: 's', upstream: up, routes: [], prefix: '/v1' }],
      'ERR_MTLS_UNKNOWN_FIELD',
      'services[0].prefix',
    ],
    ['missing name', [{ upstream: up, routes: [] }], 'ERR_MTLS_MISSING_FIELD', 'services[0].name'],
    [
      'duplicate service',
      [
        { name: 's', upstream: up, routes: [] },
        { name: 's', upstream: up, routes: [] },
      ],
      'ERR_MTLS_INVALID_OPTION',
      'services[1].name',
    ],
    [
      'bad prefix',
      [{ name: 's', pathPrefix: 'v1', upstream: up, routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].pathPrefix',
    ],
    [
      'bad protocol',
      [{ name: 's', protocols: ['ftp'], upstream: up, routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].protocols[0]',
    ],
    [
      'bad host',
      [{ name: 's', hosts: ['a.*.com'], upstream: up, routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].hosts[0]',
    ],
    [
      'bad upstream url',
      [{ name: 's', upstream: 'ftp://x', routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].upstream',
    ],
    ['missing upstream', [{ name: 's', routes: [] }], 'ERR_MTLS_MISSING_FIELD', 'services[0].upstream'],
    [
      'bad node port',
      [{ name: 's', upstream: { nodes: [{ host: 'a', port: 0 }] }, routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].upstream.nodes[0].port',
    ],
    [
      'unknown upstream field',
      [{ name: 's', upstream: { nodes: [], retries: 2 }, routes: [] }],
      'ERR_MTLS_UNKNOWN_FIELD',
      'services[0].upstream.retries',
    ],
    [
      'rewrite without host',
      [{ name: 's', upstream: { nodes: [], passHost: 'rewrite' }, routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].upstream.upstreamHost',
    ],
    [
      'bad timeout',
      [{ name: 's', upstream: { nodes: [], timeout: { read: 0 } }, routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].upstream.timeout.read',
    ],
    [
      'route path',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: 'json' }] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[0].path',
    ],
    [
      'route pathType',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: '/j', pathType: 'regex' }] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[0].pathType',
    ],
    [
      'route method',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: '/j', methods: ['get'] }] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[0].methods[0]',
    ],
    [
      'unknown route field',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: '/j', method: ['GET'] }] }],
      'ERR_MTLS_UNKNOWN_FIELD',
      'services[0].routes[0].method',
    ],
    [
      'duplicate route',
      [
        {
          name: 's',
          upstream: up,
          routes: [
            { name: 'r', path: '/a' },
            { name: 'r', path: '/b' },
          ],
        },
      ],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[1].name',
    ],
    [
      '":param" segment',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: '/users/:id' }] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[0].path',
    ],
    [
      '"*" inside a path',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: '/a/*/b' }] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[0].path',
    ],
    [
      'trailing "*" with pathType exact',
      [{ name: 's', upstream: up, routes: [{ name: 'r', path: '/a*', pathType: 'exact' }] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].routes[0].path',
    ],
    [
      'upstream without scheme',
      [{ name: 's', upstream: 'localhost:8080', routes: [] }],
      'ERR_MTLS_INVALID_OPTION',
      'services[0].upstream',
    ],
  ];
  for (const [what, services, code, field] of bad) {
    test(`${what}: ${code} at ${field}; update leaves the old table`, () => {
      assert.throws(() => createRouter({ services: services as ServiceConfig[] }), { code, field });
      const r = createRouter({ services: [svc({ name: 'ok', routes: [{ name: 'r', path: '/r' }] })] });
      assert.throws(() => r.update(services as ServiceConfig[]), { code, field });
      assert.equal(r.size, 1);
      assert.equal(r.match('GET', 'x', '/r')?.route, 'r');
    });
  }
  test('messages name what was received: an upstream "localhost:8080", a missing value', () => {
    assert.throws(
      () => createRouter({ services: [{ name: 's', upstream: 'localhost:8080', routes: [] }] }),
      (e: Error) => /received "localhost:8080"/.test(e.message) && /http:\/\//.test(e.message),
    );
    assert.throws(
      () => createRouter({ services: [{ name: 's', upstream: { nodes: [{ host: 'a' }] }, routes: [] }] as never }),
      (e: Error) => /nodes\[0\]\.port: is required/.test(e.message) && !/undefined undefined/.test(e.message),
    );
  });
  test('router options', () => {
    assert.throws(() => createRouter({ services: [], httpsPort: 0 }), {
      code: 'ERR_MTLS_INVALID_OPTION',
      field: 'httpsPort',
    });
    assert.throws(() => createRouter({ services: [], colour: 1 } as never), {
      code: 'ERR_MTLS_UNKNOWN_FIELD',
      field: 'colour',
    });
  });
});

describe('router.apply: batches by service name', () => {
  test('set replaces in place and appends, delete removes; validated first, with the entry in the field', () => {
    const r = createRouter({
      services: [
        svc({ name: 'a', pathPrefix: '/a', routes: [{ name: 'r', path: '/', pathType: 'prefix' }] }),
        svc({ name: 'b', pathPrefix: '/b', routes: [{ name: 'r', path: '/', pathType: 'prefix' }] }),
      ],
    });
    r.apply({
      set: [
        svc({ name: 'a', pathPrefix: '/a2', routes: [{ name: 'r', path: '/', pathType: 'prefix' }] }),
        svc({ name: 'c', pathPrefix: '/c', routes: [{ name: 'r', path: '/x' }] }),
      ],
      delete: ['b', 'unknown'],
    });
    assert.equal(r.match('GET', 'h', '/a2/x')?.service, 'a');
    assert.equal(r.match('GET', 'h', '/a/x'), undefined);
    assert.equal(r.match('GET', 'h', '/b/x'), undefined);
    assert.equal(r.match('GET', 'h', '/c/x')?.service, 'c');
    assert.throws(
      () =>
        r.apply({ set: [svc({ name: 'd', routes: [] }), svc({ name: 'e', routes: [{ name: 'r', path: 'nope' }] })] }),
      { code: 'ERR_MTLS_INVALID_OPTION', field: 'set[1].routes[0].path' },
    );
    assert.throws(() => r.apply({ set: [svc({ name: 'd', routes: [] })], delete: ['d'] }), {
      code: 'ERR_MTLS_INVALID_OPTION',
      field: 'delete[0]',
    });
    assert.throws(() => r.apply({ set: [svc({ name: 'd', routes: [] }), svc({ name: 'd', routes: [] })] }), {
      code: 'ERR_MTLS_INVALID_OPTION',
      field: 'set[1].name',
    });
    assert.throws(() => r.apply({ put: [] } as never), { code: 'ERR_MTLS_UNKNOWN_FIELD', field: 'put' });
    assert.equal(r.match('GET', 'h', '/c/x')?.service, 'c', 'a refused batch leaves the table');
    assert.equal(r.size, 2);
    void r.close();
  });
});

describe('weighted round robin over upstream nodes', () => {
  const servers: http.Server[] = [];
  const router = createRouter({ services: [] });
  let port = 0;
  before(async () => {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const s = http.createServer((_req, res) => res.end(String(i)));
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      ports.push((s.address() as AddressInfo).port);
    }
    router.update([
      {
        name: 'weighted',
        pathPrefix: '/w',
        upstream: {
          nodes: [
            { host: '127.0.0.1', port: ports[0]!, weight: 2 },
            { host: '127.0.0.1', port: ports[1]!, weight: 0 },
            { host: '127.0.0.1', port: ports[2]!, weight: 1 },
          ],
        },
        routes: [{ name: 'any', path: '/', pathType: 'prefix' }],
      },
      {
        name: 'drained',
        pathPrefix: '/d',
        upstream: { nodes: [{ host: '127.0.0.1', port: ports[0]!, weight: 0 }] },
        routes: [{ name: 'any', path: '/', pathType: 'prefix' }],
      },
    ]);
    const front = http.createServer((req, res) => router(req, res));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    servers.push(front);
    port = (front.address() as AddressInfo).port;
  });
  after(async () => {
    for (const s of servers) s.close();
    await router.close();
  });
  const get = (path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });

  test('weights 2 / 0 / 1: the sequence repeats 0 0 2, a weight-0 node gets nothing', async () => {
    const order: string[] = [];
    for (let i = 0; i < 12; i++) order.push((await get(`/w/${i}`)).body);
    assert.deepEqual(order, ['0', '0', '2', '0', '0', '2', '0', '0', '2', '0', '0', '2']);
  });
  test('every node at weight 0: 503, nothing forwarded', async () => {
    const r = await get('/d/x');
    assert.equal(r.status, 503);
  });
});
