// The bundled example, started the way `npm start` starts it, driven by the guide's two curls.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { guideOpensslCerts } from '../guide-openssl.js';
import { curl as curlExample, type Running, startExample, stopExample } from './run.js';

const HOST = 'mtls.httpbin.org';
const start = (args: string[]) => startExample('examples/mtls-auth-app/main.ts', args);
const stop = stopExample;
const curl = (dir: string, port: number, path: string, ...extra: string[]) =>
  curlExample(dir, HOST, port, path, ...extra);

const PAGE =
  '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n';

for (const variant of ['minted', 'guide-openssl'] as const) {
  describe(`mtls-auth-app with ${variant} certificates`, () => {
    let dir: string;
    let app: Running;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'mtls-auth-app-'));
      if (variant === 'guide-openssl') guideOpensslCerts(dir, HOST);
      app = await start(['--port', '0', '--certs', dir]);
    });
    after(async () => {
      await stop(app);
      rmSync(dir, { recursive: true, force: true });
    });

    test("prints the guide's two curl commands with the right paths", () => {
      const text = app.output.join('\n');
      assert.ok(
        text.includes(
          `curl https://${HOST}:${app.port}/v1/json --resolve '${HOST}:${app.port}:127.0.0.1' --cacert ${dir}/ca.crt -i`,
        ),
      );
      assert.ok(text.includes(`--cert ${dir}/client.crt --key ${dir}/client.key`));
      if (variant === 'minted')
        for (const f of ['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key'])
          assert.ok(existsSync(join(dir, f)), f);
    });
    test('no client certificate: HTTP/2 400 and the HTML page', async () => {
      const r = await curl(dir, app.port, '/v1/json');
      assert.equal(r.status, 'HTTP/2 400');
      assert.match(r.headers, /content-length: 154/);
      assert.equal(r.body, PAGE);
    });
    test('with client.crt/client.key: the slideshow, over HTTP/2 and HTTP/1.1', async () => {
      for (const proto of [[], ['--http1.1']]) {
        const r = await curl(
          dir,
          app.port,
          '/v1/json',
          '--cert',
          join(dir, 'client.crt'),
          '--key',
          join(dir, 'client.key'),
          ...proto,
        );
        assert.equal(r.status, proto.length ? 'HTTP/1.1 200 OK' : 'HTTP/2 200');
        assert.equal(JSON.parse(r.body).slideshow.title, 'Sample Slide Show');
      }
    });
    test('no client certificate over HTTP/1.1: 400 and Connection: close', async () => {
      const r = await curl(dir, app.port, '/v1/json', '--http1.1');
      assert.equal(r.status, 'HTTP/1.1 400 Bad Request');
      assert.match(r.headers, /connection: close/);
    });
    test('with a valid certificate: POST /v1/json, /v1/json/x and /v2/json are 404', async () => {
      const cert = ['--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key')];
      for (const [path, extra] of [
        ['/v1/json', ['-X', 'POST']],
        ['/v1/json/x', []],
        ['/v2/json', []],
        ['/v1/JSON', []],
      ] as const) {
        const r = await curl(dir, app.port, path, ...cert, ...extra);
        assert.equal(r.status, 'HTTP/2 404', `${extra.join(' ')} ${path}`);
        assert.equal(r.body, '{"error_msg":"404 Route Not Found"}\n');
      }
      const q = await curl(dir, app.port, '/v1/json?x=1', ...cert);
      assert.equal(q.status, 'HTTP/2 200');
    });
  });
}

test('the example stops cleanly on SIGINT', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-auth-app-'));
  try {
    const app = await start(['--port', '0', '--certs', dir]);
    assert.equal(await stop(app), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
