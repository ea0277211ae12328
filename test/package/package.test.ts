// The package as users get it: the build behind `exports`, loaded from ESM and CommonJS, and its
// declarations checked by the type tests in test/types. Needs `npm run build` (npm test runs it first).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  exports: Record<string, string | Record<string, string>>;
};

before(() => {
  assert.ok(existsSync(`${root}dist/index.js`), 'dist/ is missing: run `npm run build` (npm test does it in pretest)');
});

test('every export points at built files', () => {
  const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json' && k !== './schema.json');
  assert.deepEqual(subpaths, ['.', './express', './koa', './fastify', './hono', './otel', './testing']);
  // The JSON Schema of config files, for editors.
  assert.equal(pkg.exports['./schema.json'], './dist/schema.json');
  assert.ok(existsSync(`${root}dist/schema.json`));
  for (const k of subpaths) {
    const entry = pkg.exports[k] as Record<string, string>;
    assert.deepEqual(Object.keys(entry), ['types', 'default'], `${k}: types first, then default`);
    for (const file of Object.values(entry)) assert.ok(existsSync(`${root}${file}`), `${k} → ${file}`);
  }
});

test('a CommonJS application requires every entry point and guards a request through Express', async () => {
  const { stdout, stderr } = await run(process.execPath, [fixture('require.cjs')], { cwd: root, timeout: 30_000 });
  assert.deepEqual(JSON.parse(stdout), {
    ok: 200,
    subject: stdout.match(/"subject":"(CN=client-valid-\d+,O=mtls-gate)"/)?.[1],
    refused: 400,
    koa: 'function',
    fastify: 'function',
    hono: 'function',
    otel: 'function',
  });
  assert.doesNotMatch(stdout, /"subject":null/);
  assert.equal(stderr, '', 'no warnings from require() of the ESM build');
});

test('no entry point loads Express, Koa, Fastify or Hono (the adapters import types only)', async () => {
  const { stdout } = await run(process.execPath, [fixture('no-framework.mjs')], { cwd: root, timeout: 30_000 });
  const exported = JSON.parse(stdout) as Record<string, string[]>;
  assert.deepEqual(exported['mtls-gate/express'], ['mtlsGuard', 'mtlsRouter']);
  assert.deepEqual(exported['mtls-gate/koa'], ['mtlsGuard', 'mtlsRouter']);
  assert.deepEqual(exported['mtls-gate/fastify'], ['default', 'fastifyMtlsGate', 'mtlsGuard']);
  assert.deepEqual(exported['mtls-gate/hono'], ['mtlsGuard']);
  assert.deepEqual(exported['mtls-gate/testing'], ['createTestPki', 'startTestServer', 'testRequest']);
  assert.ok(exported['mtls-gate']!.includes('createSslStore'));
});

test('the framework hook does refuse a framework (so the test above can fail)', async () => {
  const probe = `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(fixture('no-framework-hooks.mjs')).href)}); await import('koa');`;
  await assert.rejects(
    run(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, timeout: 30_000 }),
    (e: { stderr?: string }) => /a framework was loaded: koa/.test(e.stderr ?? ''),
  );
});

test('type tests: req.mtls, ctx.state.mtls, request.mtls and c.var.mtls are typed, unknown options do not compile (ESM and CommonJS)', async () => {
  const tsc = `${root}node_modules/typescript/bin/tsc`;
  // Each `@ts-expect-error` in the type tests fails compilation when its line stops being an error.
  const r = await run(process.execPath, [tsc, '-p', 'test/types', '--listFiles'], { cwd: root, timeout: 60_000 }).catch(
    (e: { stdout?: string }) => {
      assert.fail(`type tests failed:\n${e.stdout}`);
    },
  );
  for (const f of [
    'test/types/express.ts',
    'test/types/koa.ts',
    'test/types/fastify.ts',
    'test/types/hono.ts',
    'test/types/require.cts',
    'dist/adapters/express.d.ts',
    'dist/adapters/koa.d.ts',
    'dist/adapters/fastify.d.ts',
    'dist/adapters/hono.d.ts',
  ]) {
    assert.ok(r.stdout.includes(`${root}${f}`), `${f} is part of the type tests`);
  }
});

test('the packed tarball installs, and `npx mtls-gate` runs from it (validate, serve, SIGTERM)', {
  timeout: 120_000,
}, async () => {
  const { mkdtempSync, rmSync, writeFileSync, cpSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { spawn } = await import('node:child_process');
  const { createTestPki } = await import('../../src/testing/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-pack-'));
  try {
    const packed = await run('npm', ['pack', '--pack-destination', dir], { cwd: root, timeout: 60_000 });
    const tarball = join(dir, packed.stdout.trim().split('\n').at(-1)!);
    const app = join(dir, 'app');
    cpSync(join(root, 'examples/mtls-auth-app/gateway.yaml'), join(app, 'gateway.yaml'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module' }));
    // Dependencies from npm's cache where it has them (npm ci filled it).
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: app,
      timeout: 90_000,
    });
    const pki = await createTestPki({ serverNames: ['mtls.httpbin.org'] });
    const certs = join(app, 'certs');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(certs);
    writeFileSync(join(certs, 'server.crt'), pki.server.chain);
    writeFileSync(join(certs, 'server.key'), pki.server.key);
    writeFileSync(join(certs, 'ca.crt'), pki.root.cert);
    // ESM import and CommonJS require (Node's require(esm)) of the installed package.
    const esm = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const t = performance.now(); const m = await import('mtls-gate'); console.log(typeof m.createSslStore, typeof m.mtlsGuard, Math.round(performance.now() - t))",
      ],
      { cwd: app, timeout: 30_000 },
    );
    assert.match(esm.stdout, /^function function \d+/);
    console.log(
      `# import { createSslStore, mtlsGuard } from the installed package: ${esm.stdout.trim().split(' ')[2]} ms`,
    );
    const cjs = await run(
      process.execPath,
      [
        '-e',
        "const m = require('mtls-gate'); const t = require('mtls-gate/testing'); console.log(typeof m.createGateway, typeof t.createTestPki, require('mtls-gate/schema.json').title)",
      ],
      { cwd: app, timeout: 30_000 },
    );
    assert.equal(cjs.stdout.trim(), 'function function mtls-gate gateway configuration');
    // TypeScript under every resolution mode an application may use.
    writeFileSync(
      join(app, 'check.ts'),
      "import { createSslStore, mtlsGuard, type ClientIdentity } from 'mtls-gate';\nimport { createTestPki } from 'mtls-gate/testing';\nconst store = createSslStore();\nconst guard = mtlsGuard({ store });\nconst id: ClientIdentity | null = null;\nexport { guard, id, createTestPki };\n",
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    for (const [module, resolution] of [
      ['node16', 'node16'],
      ['nodenext', 'nodenext'],
      ['esnext', 'bundler'],
      ['commonjs', 'node10'],
    ] as const) {
      const r = await run(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--skipLibCheck',
          '--types',
          'node',
          '--typeRoots',
          join(root, 'node_modules/@types'),
          '--module',
          module,
          '--moduleResolution',
          resolution,
          'check.ts',
        ],
        { cwd: app, timeout: 60_000 },
      ).catch((e: { stdout?: string }) => ({ stdout: `failed: ${e.stdout}` }));
      assert.equal(r.stdout.trim(), '', `${module}/${resolution}: ${r.stdout}`);
    }
    const ok = await run('npx', ['mtls-gate', 'validate', '--config', 'gateway.yaml'], { cwd: app, timeout: 30_000 });
    assert.match(ok.stdout, /valid \(1 SSL object, 1 service, 1 route\)/);
    // The bin npx runs, started directly: npx itself does not pass SIGTERM on.
    const child = spawn(
      join(app, 'node_modules/.bin/mtls-gate'),
      ['serve', '--config', 'gateway.yaml', '--listen', '127.0.0.1:0'],
      { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on https:\/\/127\.0\.0\.1:\d+/.exec(out);
        if (m) resolve(m[0]);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    assert.match(line, /listening on/);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
