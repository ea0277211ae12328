// examples/express-app and examples/koa-app, started as their README lines start them and driven by curl.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { curl, type Running, startExample, stopExample } from './run.js';

const examples = [
  {
    name: 'express-app',
    host: 'express.example.test',
    protocols: [
      ['--http1.1', 'HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request'],
      // curl offers h2 first; a node:https server must not accept an h2 it cannot speak.
      ['--http2', 'HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request'],
    ],
  },
  {
    name: 'koa-app',
    host: 'koa.example.test',
    protocols: [
      ['--http2', 'HTTP/2 200', 'HTTP/2 400'],
      ['--http1.1', 'HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request'],
    ],
  },
] as const;

for (const ex of examples) {
  describe(ex.name, () => {
    let dir: string;
    let app: Running;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), `${ex.name}-`));
      app = await startExample(`examples/${ex.name}/main.ts`, ['--port', '0', '--certs', dir]);
    });
    after(async () => {
      if (app) assert.equal(await stopExample(app), 0, 'stops cleanly on SIGINT');
      rmSync(dir, { recursive: true, force: true });
    });
    const cert = () => ['--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key')];

    for (const [flag, ok, refused] of ex.protocols) {
      test(`${flag}: /whoami with the client certificate returns the verified identity`, async () => {
        const r = await curl(dir, ex.host, app.port, '/whoami', flag, ...cert());
        assert.equal(r.status, ok, r.body);
        const body = JSON.parse(r.body);
        assert.equal(body.subject, 'CN=demo client,O=example');
        assert.match(body.issuer, /CN=koa\.example\.test Root|CN=express\.example\.test Root/);
        assert.match(body.fingerprint256, /^[0-9a-f]{64}$/);
      });
      test(`${flag}: /whoami without a certificate is 400`, async () => {
        const r = await curl(dir, ex.host, app.port, '/whoami', flag);
        assert.equal(r.status, refused);
        assert.match(r.body, /<title>400 Bad Request<\/title>/);
        assert.ok(
          app.output.some((l) => l.startsWith('400 missing')),
          'onReject logged the reason',
        );
      });
      test(`${flag}: /health is on the skip-list and sees no client`, async () => {
        const r = await curl(dir, ex.host, app.port, '/health', flag);
        assert.equal(r.status, ok);
        assert.deepEqual(JSON.parse(r.body), { ok: true, client: null });
      });
    }
    test('prints the curl commands it was tested with', () => {
      const text = app.output.join('\n');
      assert.ok(
        text.includes(
          `curl https://${ex.host}:${app.port}/whoami --resolve '${ex.host}:${app.port}:127.0.0.1' --cacert ${dir}/ca.crt`,
        ),
      );
      assert.ok(text.includes(`--cert ${dir}/client.crt --key ${dir}/client.key`));
    });
  });
}
