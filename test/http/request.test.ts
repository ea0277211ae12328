import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath } from '../../src/http/path.js';
import { normalizeHost, requestHost } from '../../src/http/host.js';
import { htmlPage, wantsJson } from '../../src/http/pages.js';

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
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => assert.equal(normalizePath(input), expected));
  }
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
  });
});

describe('error pages', () => {
  test('the 400 page is nginx-shaped, CRLF, 154 bytes with a nine-letter footer', () => {
    const page = htmlPage(400, 'openresty');
    assert.equal(page.length, 154);
    assert.equal(page.toString(), '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n');
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
