// The guide's scenario end to end: certificates made by the guide's own openssl commands, a server
// built from the store's TLS options and the guard, and curl as the client, as in the guide.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { createSslStore, getClientIdentity, mtlsGuard } from '../../src/index.js';
import { guideOpensslCerts } from '../guide-openssl.js';

const HOST = 'mtls.httpbin.org';
let dir: string;
let server: http2.Http2SecureServer;
let port: number;
const rejects: string[] = [];
const seen: { subject: string; serial: string; sslId: string }[] = [];

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mtls-gate-guide-'));
  guideOpensslCerts(dir, HOST);

  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  const store = createSslStore();
  // No snis: derived from the v1 server certificate's CN, as API7 Cloud does.
  const view = store.set({
    id: 'mtls-auth-app',
    cert: read('server.crt'),
    key: read('server.key'),
    client: { ca: read('ca.crt') },
  });
  assert.deepEqual(view.snis, [HOST]);
  const guard = mtlsGuard({ store, page: 'apisix', onReject: (i) => rejects.push(i.reason) });
  server = http2.createSecureServer(store.tlsOptions(), (req, res) =>
    guard(req, res, () => {
      const id = getClientIdentity(req)!;
      seen.push({ subject: id.subject, serial: id.serialNumber, sslId: id.sslId });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ slideshow: { author: 'Yours Truly', title: 'Sample Slide Show' } }));
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

// Asynchronous: the server runs in this process, so a synchronous child would deadlock it.
async function curl(...extra: string[]): Promise<{ status: string; headers: string; body: string }> {
  const { stdout: out } = await promisify(execFile)(
    'curl',
    [
      '-sS',
      '-i',
      `https://${HOST}:${port}/v1/json`,
      '--resolve',
      `${HOST}:${port}:127.0.0.1`,
      '--cacert',
      'ca.crt',
      ...extra,
    ],
    { cwd: dir, encoding: 'latin1' },
  );
  const split = out.indexOf('\r\n\r\n');
  const headers = out.slice(0, split);
  return { status: headers.split('\r\n')[0]!, headers: headers.toLowerCase(), body: out.slice(split + 4) };
}

const PAGE =
  '<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n';

test('guide: no client certificate gives HTTP/2 400 with the HTML page (the handshake succeeds)', async () => {
  const r = await curl();
  assert.equal(r.status.trim(), 'HTTP/2 400');
  assert.match(r.headers, /content-type: text\/html; charset=utf-8/);
  assert.match(r.headers, /content-length: 154/);
  assert.equal(r.body, PAGE);
  assert.equal(rejects.at(-1), 'missing');
});

test('guide: no client certificate over HTTP/1.1 gives 400 and Connection: close', async () => {
  const r = await curl('--http1.1');
  assert.equal(r.status.trim(), 'HTTP/1.1 400 Bad Request');
  assert.match(r.headers, /connection: close/);
  assert.equal(r.body, PAGE);
});

test('guide: with client.crt/client.key the request passes (v1 leaf, subject OU=web only, serial 01)', async () => {
  const r = await curl('--cert', 'client.crt', '--key', 'client.key');
  assert.equal(r.status.trim(), 'HTTP/2 200');
  assert.equal(JSON.parse(r.body).slideshow.author, 'Yours Truly');
  assert.deepEqual(seen.at(-1), { subject: 'OU=web', serial: '01', sslId: 'mtls-auth-app' });
  const h1 = await curl('--http1.1', '--cert', 'client.crt', '--key', 'client.key');
  assert.equal(h1.status.trim(), 'HTTP/1.1 200 OK');
});

test('guide: the server certificate presented as a client certificate is accepted, as OpenSSL does (no EKU = no restriction)', async () => {
  // Both leaves carry serial 01 from the same CA: identities must differ by fingerprint.
  const r = await curl('--cert', 'server.crt', '--key', 'server.key');
  assert.equal(r.status.trim(), 'HTTP/2 200');
  assert.equal(seen.at(-1)!.serial, '01');
  assert.equal(seen.at(-1)!.subject, `CN=${HOST}`);
});

test('guide: a certificate from another CA gets 400', async () => {
  openssl(
    'req',
    '-x509',
    '-nodes',
    '-newkey',
    'rsa:2048',
    '-keyout',
    'other.key',
    '-out',
    'other.crt',
    '-days',
    '1',
    '-subj',
    '/OU=web/CN=private_ca',
  );
  // Same subject as the real CA, but a different key: anchoring is by certificate, not by name.
  const r = await curl('--cert', 'other.crt', '--key', 'other.key');
  assert.equal(r.status.trim(), 'HTTP/2 400');
  assert.ok(['untrusted', 'bad_signature'].includes(rejects.at(-1)!), rejects.at(-1));
});

test("the CertificateRequest advertises the CA names of the SNI object's client.ca", async () => {
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', HOST, '-tls1_3'],
      { encoding: 'latin1', timeout: 10_000 },
      (err, stdout) => (err && !stdout ? reject(err) : resolve(stdout)),
    );
    child.stdin?.end();
  });
  assert.match(out, /Acceptable client certificate CA names\s*\n\s*OU = web, CN = private_ca/);
});
