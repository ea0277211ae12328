import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeHost, requestHost } from '../../src/http/host.js';
import { htmlPage, wantsJson } from '../../src/http/pages.js';
import { isCanonicalTarget, normalizePath } from '../../src/http/path.js';
import { matchHost } from '../../src/internal/hostname.js';

describe('normalizePath', () => {
  const cases: [string, string | undefined][] = [
    ['/v1/json', '/v1/json'],
    ['/v1/json?x=1#f', '/v1/json'],
    ['/v1//json', '/v1/json'],
    ['//v1///json/', '/v1/json/'],
    ['/public/../v1/json', '/v1/json'],
    ['/public/%2e%2e/v1/json', '/v1/json'],
    ['/public/%2E%2E/v1/json', '/v1/json'],
    ['/a/./b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/../../x', '/x'],
    ['/%70ublic', '/public'],
    ['/caf%C3%A9', '/café'],
    ['http://h.test/a/../b?q', '/b'],
    ['http://h.test', '/'],
    ['/', '/'],
    // Ambiguous between HTTP stacks: refused, so nothing relaxes a check for them.
    ['/v1/json/..%2f..%2fpublic/x', undefined],
    ['/public%2F..', undefined],
    ['/public/..\\..\\v1/json', undefined],
    ['/a%5c..', undefined],
    ['/a%00b', undefined],
    ['/a%zz', undefined],
    ['/a%', undefined],
    ['*', undefined],
    ['v1/json', undefined],
    // Read as another path by some upstream (finding 4): `;` parameters on dot segments, double
    // encodings, Unicode lookalikes of `.` and `/`.
    ['/public/..;/admin', undefined],
    ['/public/.;x=1/admin', undefined],
    ['/public/%2e%2e%3b/admin', undefined],
    ['/public/%252e%252e/admin', undefined],
    ['/public/%252F', undefined],
    ['/public/%EF%BC%8E%EF%BC%8E/admin', undefined],
    ['/public/%E2%80%A5/admin', undefined],
    ['/public/a%EF%BC%8Fb', undefined],
    ['/public/app.css;v=2', '/public/app.css;v=2'],
    ['/files/100%25', '/files/100%'],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => assert.equal(normalizePath(input), expected));
  }
});

describe('isCanonicalTarget (finding 10: a skip is granted to canonical targets only)', () => {
  const cases: [string, boolean][] = [
    ['/public/x', true],
    ['/public/x?a=../b', true],
    ['/public/a%20b', true],
    ['/public/caf%C3%A9', true],
    ['/public/x;v=1', true],
    ['https://a.test/public/x', true],
    ['/admin/../public/x', false],
    ['/admin/%2e%2e/public/x', false],
    ['/public/./x', false],
    ['/public//x', false],
    ['/%70ublic/x', false],
    ['/public/%7Ex', false],
    ['/public/..;/x', false],
    ['/public/.;a/x', false],
    ['x', false],
  ];
  for (const [target, expected] of cases)
    test(`${JSON.stringify(target)}: ${expected}`, () => assert.equal(isCanonicalTarget(target), expected));
});

describe('matchHost: the one host rule of the guard and the router', () => {
  const tables = {
    exact: new Map([
      ['a.test', 'A-exact'],
      ['x.c.a.test', 'X'],
    ]),
    wildcard: new Map([
      ['a.test', 'A'],
      ['c.a.test', 'C'],
    ]),
    star: 'STAR',
  };
  const owner = (h: string) => matchHost(h, tables, (v, pattern) => `${v} ${pattern}`);
  test('exact first, then the nearest wildcard at any depth, then the catch-all', () => {
    assert.equal(owner('a.test'), 'A-exact a.test');
    assert.equal(owner('x.a.test'), 'A *.a.test');
    assert.equal(owner('x.y.a.test'), 'A *.a.test');
    assert.equal(owner('q.c.a.test'), 'C *.c.a.test');
    assert.equal(owner('deep.q.c.a.test'), 'C *.c.a.test');
    assert.equal(owner('x.c.a.test'), 'X x.c.a.test');
    assert.equal(owner('c.a.test'), 'A *.a.test', '*.c.a.test never covers c.a.test itself');
    assert.equal(owner('other.test'), 'STAR *');
    assert.equal(owner(''), 'STAR *');
  });
  test('a refused candidate lets the search go on to the next', () => {
    assert.equal(
      matchHost('q.c.a.test', tables, (v, p) => (v === 'C' ? undefined : `${v} ${p}`)),
      'A *.a.test',
    );
  });
});

describe('request host', () => {
  test('normalizeHost: case, port, trailing dot, IPv6; malformed refused', () => {
    assert.equal(normalizeHost('A.Test:8443'), 'a.test');
    assert.equal(normalizeHost('a.test.'), 'a.test');
    assert.equal(normalizeHost('[::1]:443'), '[::1]');
    assert.equal(normalizeHost('public.test:1@secure.test'), undefined);
    assert.equal(normalizeHost('a.test:443:1'), undefined);
    assert.equal(normalizeHost('a test'), undefined);
    assert.equal(normalizeHost(''), undefined);
    assert.equal(normalizeHost(`${'a.'.repeat(126)}zz`), undefined, 'over 253 characters');
    assert.equal(normalizeHost(`${'a'.repeat(249)}.tst`), `${'a'.repeat(249)}.tst`);
  });
  const req = (headers: Record<string, string>, url = '/') => ({ headers, url }) as never;
  test('requestHost: Host, :authority, absolute-form', () => {
    assert.equal(requestHost(req({ host: 'A.test:1' })), 'a.test');
    assert.equal(requestHost(req({})), '');
    assert.equal(requestHost(req({ ':authority': 'a.test' })), 'a.test');
    assert.equal(requestHost(req({ ':authority': 'a.test', host: 'a.test:443' })), 'a.test');
    assert.equal(requestHost(req({ ':authority': 'public.test', host: 'secure.test' })), undefined);
    assert.equal(requestHost(req({ host: 'secure.test' }, 'https://secure.test/x')), 'secure.test');
    assert.equal(requestHost(req({ host: 'public.test' }, 'https://secure.test/x')), undefined);
    assert.equal(requestHost(req({}, 'https://secure.test/x')), 'secure.test');
    assert.equal(requestHost(req({ host: 'a.test' }, 'garbage')), undefined);
    assert.equal(requestHost(req({ host: 'open.test' }, '//a.test/admin')), undefined, 'a network-path reference');
    assert.equal(requestHost(req({ host: 'open.test' }, '/\\a.test/admin')), undefined);
    assert.equal(requestHost(req({ host: 'open.test' }, '/a//b')), 'open.test');
  });
});

describe('error pages', () => {
  test('the 400 page is nginx-shaped, CRLF, 154 bytes with a nine-letter footer', () => {
    const page = htmlPage(400, 'openresty');
    assert.equal(page.length, 154);
    assert.equal(
      page.toString(),
      '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n',
    );
    assert.match(htmlPage(502, 'x').toString(), /<title>502 Bad Gateway<\/title>/);
  });
  test('JSON is chosen only when preferred over HTML', () => {
    assert.equal(wantsJson('application/json'), true);
    assert.equal(wantsJson('application/json, text/html'), true);
    assert.equal(wantsJson('text/html, application/json'), false);
    assert.equal(wantsJson('*/*'), false);
    assert.equal(wantsJson(undefined), false);
  });
});
