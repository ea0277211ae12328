// `mtls-gate serve` and `mtls-gate validate` as real processes: start, serve, reload on edit,
// refuse a broken edit, drain on SIGTERM, workers that resume each other's TLS sessions.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { testRequest } from '../../src/testing/index.js';
import { BIN, type Cli, fixture, gatewayYaml, startCli, stopCli } from './run.js';

const run = promisify(execFile);
type Fixture = Awaited<ReturnType<typeof fixture>>;

async function listening(cli: Cli): Promise<{ port: number; status: number | undefined }> {
  const port = Number((await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]);
  return { port, status: undefined };
}

const statusOf = async (port: number) =>
  (await fetch(`http://127.0.0.1:${port}/status`)).json() as Promise<Record<string, unknown>>;

describe('mtls-gate serve', () => {
  let fx: Fixture;
  let cli: Cli;
  let port: number;
  let statusPort: number;
  let config: string;
  before(async () => {
    fx = await fixture();
    config = fx.write('gateway.yaml', gatewayYaml(['a'], fx.upstreamUrl));
    cli = startCli(['serve', '--config', config, '--status', '127.0.0.1:0']);
    ({ port } = await listening(cli));
    statusPort = Number((await cli.waitFor(/status on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  });
  after(async () => {
    await stopCli(cli);
    await fx.cleanup();
  });

  test("prints what it serves and where; the guide's two curls: 400 without a certificate, 200 with one", async () => {
    await cli.waitFor(/revision 1: 1 SSL object, 1 service, 1 route/);
    const curl = async (...extra: string[]) =>
      run('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code} %{http_version}',
        '--resolve',
        `a.test:${port}:127.0.0.1`,
        '--cacert',
        join(fx.dir, 'a-ca.crt'),
        `https://a.test:${port}/t/json`,
        ...extra,
      ]);
    assert.equal((await curl()).stdout, '400 2');
    const certFile = fx.write('client.crt', fx.a.client.cert);
    const keyFile = fx.write('client.key', fx.a.client.key);
    assert.equal((await curl('--cert', certFile, '--key', keyFile)).stdout, '200 2');
    assert.equal((await curl('--cert', certFile, '--key', keyFile, '--http1.1')).stdout, '200 1.1');
    assert.equal((await fetch(`http://127.0.0.1:${statusPort}/ready`)).status, 200);
    const st = await statusOf(statusPort);
    assert.equal(st.revision, 1);
    assert.equal(st.ssls, 1);
  });

  test('an edit adding a second tenant (another CA, another SNI) takes effect within 2 s; an open keep-alive HTTP/2 session keeps working', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      servername: 'a.test',
      rejectUnauthorized: false,
      cert: fx.a.client.cert,
      key: fx.a.client.key,
    });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': path, ':authority': 'a.test' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
        req.end();
      });
    try {
      assert.equal(await get('/t/before'), 200);
      assert.notEqual(
        await testRequest({ port, servername: 'b.test', client: fx.b.client }).then(
          (r) => r.status,
          () => 0,
        ),
        200,
        'b.test is not served yet',
      );
      const t0 = Date.now();
      fx.write('gateway.yaml', gatewayYaml(['a', 'b'], fx.upstreamUrl));
      let status = 0;
      while (Date.now() - t0 < 2000) {
        status = await testRequest({ port, servername: 'b.test', path: '/t/x', client: fx.b.client }).then(
          (r) => r.status,
          () => 0,
        );
        if (status === 200) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 200, `b.test served within 2 s (after ${Date.now() - t0} ms)`);
      // The other tenant's CA does not open the first tenant's host.
      assert.equal((await testRequest({ port, servername: 'a.test', path: '/t/x', client: fx.b.client })).status, 400);
      assert.equal(await get('/t/after'), 200, 'the keep-alive session opened before the reload still serves');
      assert.equal(session.closed || session.destroyed, false);
      await cli.waitFor(/revision 2: 2 SSL objects, 2 services, 2 routes/);
    } finally {
      session.close();
    }
  });

  test('a broken edit is not applied: the running configuration keeps serving, the error and its path are logged and shown by /status', async () => {
    const before = (await statusOf(statusPort)).revision;
    fx.write(
      'gateway.yaml',
      gatewayYaml(['a', 'b'], fx.upstreamUrl)
        .replace('snis: [b.test]', 'snis: [b.test]\n    depth: 3')
        .replace('path: "/*"', 'path: "/*", methods: [get]'),
    );
    await cli.waitFor(/ssls\[1\]\.depth: unknown field/);
    const st = await statusOf(statusPort);
    assert.equal(st.revision, before);
    const issues = (st.lastError as { issues: { field: string; code: string }[] }).issues;
    assert.deepEqual(
      issues.map((i) => [i.field, i.code]),
      [
        ['ssls[1].depth', 'ERR_MTLS_UNKNOWN_FIELD'],
        ['services[0].routes[0].methods[0]', 'ERR_MTLS_INVALID_OPTION'],
      ],
    );
    assert.equal((await testRequest({ port, servername: 'b.test', path: '/t/x', client: fx.b.client })).status, 200);
    // A file that is not YAML at all: also refused, also reported.
    fx.write('gateway.yaml', 'listen: [\n');
    await cli.waitFor(/ERR_MTLS_CONFIG_FILE|line \d+/);
    assert.equal((await testRequest({ port, servername: 'a.test', path: '/t/x', client: fx.a.client })).status, 200);
    // Fixed again: applied on SIGHUP as well as on change.
    fx.write('gateway.yaml', gatewayYaml(['a'], fx.upstreamUrl));
    await cli.waitFor(/revision 3: 1 SSL object/);
    cli.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await statusOf(statusPort)).revision, 3, 'an unchanged file is not applied again');
    assert.equal((await statusOf(statusPort)).lastError, undefined);
  });

  test('SIGTERM drains: a slow request in flight completes, new connections are refused, exit code 0', async () => {
    const slow = testRequest({ port, servername: 'a.test', path: '/slow/800', client: fx.a.client });
    await new Promise((r) => setTimeout(r, 200));
    cli.child.kill('SIGTERM');
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).path, '/slow/800');
    assert.equal(await cli.exited, 0);
    assert.ok(
      cli.output.some((l) => /draining inFlight=1/.test(l)),
      cli.output.join('\n'),
    );
    await assert.rejects(testRequest({ port, servername: 'a.test', client: fx.a.client, timeoutMs: 2000 }));
  });
});

describe('mtls-gate validate', () => {
  let fx: Fixture;
  before(async () => {
    fx = await fixture();
  });
  after(() => fx.cleanup());

  test('exit 0 for a valid file; exit 1 with every problem and its path', async () => {
    const good = fx.write('good.yaml', gatewayYaml(['a', 'b'], fx.upstreamUrl));
    const ok = await run(process.execPath, [BIN, 'validate', '--config', good]);
    assert.match(ok.stdout, /valid \(2 SSL objects, 2 services, 2 routes\)/);
    const bad = fx.write(
      'bad.yaml',
      gatewayYaml(['a', 'b'], fx.upstreamUrl)
        .replace('client: { ca: { file: a-ca.crt } }', 'client: { ca: { file: a-ca.crt }, dept: 2 }')
        .replace('cert: { file: b-server.crt }', 'cert: { file: a-server.crt }')
        .replace('path: "/*" }', 'path: "/*", methods: [GET, FETCH] }'),
    );
    const r = await run(process.execPath, [BIN, 'validate', '--config', bad]).then(
      () => assert.fail('validate accepted a bad file'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ssls\[0\]\.client\.dept: unknown field \[ERR_MTLS_UNKNOWN_FIELD\]/);
    assert.match(
      r.stderr,
      /services\[0\]\.routes\[0\]\.methods\[1\]: expected .*received "FETCH" \[ERR_MTLS_INVALID_OPTION\]/,
    );
    assert.match(r.stderr, /ssls\[1\]\.key: private key does not match .*\[ERR_MTLS_KEY_MISMATCH\]/);
    assert.match(r.stderr, /^3 problems:/m);
  });

  test('a missing ${VAR} and a missing referenced file are named', async () => {
    const file = fx.write('env.yaml', gatewayYaml(['a'], '${UPSTREAM_URL}').replace('a-ca.crt', 'missing-ca.crt'));
    const r = await run(process.execPath, [BIN, 'validate', '--config', file], {
      env: { ...process.env, UPSTREAM_URL: '' },
    }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /UPSTREAM_URL|missing-ca\.crt/);
  });

  test('bad command lines exit 2 with the usage', async () => {
    for (const args of [
      ['serve'],
      ['frobnicate', '--config', 'x'],
      ['serve', '--config', 'x', '--workers', '0'],
      ['serve', '--config', 'x', '--listen', 'nohost'],
    ]) {
      const r = await run(process.execPath, [BIN, ...args]).catch((e: { code: number; stderr: string }) => e);
      assert.equal((r as { code: number }).code, 2, args.join(' '));
      assert.match((r as { stderr: string }).stderr, /usage:/);
    }
  });
});

describe('mtls-gate serve --workers 2', () => {
  let fx: Fixture;
  let cli: Cli;
  before(async () => {
    fx = await fixture();
  });
  after(async () => {
    if (cli) await stopCli(cli);
    await fx.cleanup();
  });

  test('serves from both workers, and a TLS session made with one resumes with the other', async () => {
    const config = fx.write('gateway.yaml', gatewayYaml(['a'], fx.upstreamUrl));
    cli = startCli(['serve', '--config', config, '--workers', '2', '--status', '127.0.0.1:0']);
    const port = Number((await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const statusPort = Number((await cli.waitFor(/status on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    // Both workers listen on the one port the primary holds.
    await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/);
    let session: Buffer | undefined;
    let resumed = 0;
    const rounds = 8;
    for (let i = 0; i < rounds; i++) {
      const r = await testRequest({
        port,
        servername: 'a.test',
        path: `/t/${i}`,
        client: fx.a.client,
        session,
        maxVersion: 'TLSv1.2',
      });
      assert.equal(r.status, 200);
      if (i > 0 && r.reused) resumed++;
      session = r.session ?? session;
    }
    // Connections are handed to the workers in turn: every one after the first resumed, so
    // sessions made by one worker were resumed by the other.
    assert.equal(resumed, rounds - 1);
    let workers: { pid: number; requests: number }[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      workers = ((await statusOf(statusPort)).workers as { pid: number; requests: number }[]) ?? [];
      if (workers.length === 2 && workers.reduce((n, w) => n + w.requests, 0) >= rounds) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(workers.length, 2);
    assert.ok(
      workers.every((w) => w.requests > 0),
      `both workers served: ${JSON.stringify(workers.map((w) => w.requests))}`,
    );
    assert.equal(await stopCli(cli), 0);
  });
});
