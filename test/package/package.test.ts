// The package as users get it: the build behind `exports`, loaded from ESM and CommonJS, and its
// declarations checked by the type tests in test/types. Needs `npm run build` (npm test runs it first).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, string | Record<string, string>> };

before(() => {
  assert.ok(existsSync(`${root}dist/index.js`), 'dist/ is missing: run `npm run build` (npm test does it in pretest)');
});

test('every export points at built files', () => {
  const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json');
  assert.deepEqual(subpaths, ['.', './express', './koa', './testing']);
  for (const k of subpaths) {
    const entry = pkg.exports[k] as Record<string, string>;
    assert.deepEqual(Object.keys(entry), ['types', 'default'], `${k}: types first, then default`);
    for (const file of Object.values(entry)) assert.ok(existsSync(`${root}${file}`), `${k} → ${file}`);
  }
});

test('a CommonJS application requires every entry point and guards a request through Express', async () => {
  const { stdout, stderr } = await run(process.execPath, [fixture('require.cjs')], { cwd: root, timeout: 30_000 });
  assert.deepEqual(JSON.parse(stdout), { ok: 200, subject: stdout.match(/"subject":"(CN=client-valid-\d+,O=mtls-gate)"/)?.[1], refused: 400, koa: 'function' });
  assert.doesNotMatch(stdout, /"subject":null/);
  assert.equal(stderr, '', 'no warnings from require() of the ESM build');
});

test('no entry point loads Express or Koa (the adapters import types only)', async () => {
  const { stdout } = await run(process.execPath, [fixture('no-framework.mjs')], { cwd: root, timeout: 30_000 });
  const exported = JSON.parse(stdout) as Record<string, string[]>;
  assert.deepEqual(exported['mtls-gate/express'], ['mtlsGuard', 'mtlsRouter']);
  assert.deepEqual(exported['mtls-gate/koa'], ['mtlsGuard', 'mtlsRouter']);
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

test('type tests: req.mtls and ctx.state.mtls are typed, unknown options do not compile (ESM and CommonJS)', async () => {
  const tsc = `${root}node_modules/typescript/bin/tsc`;
  // Each `@ts-expect-error` in the type tests fails compilation when its line stops being an error.
  const r = await run(process.execPath, [tsc, '-p', 'test/types', '--listFiles'], { cwd: root, timeout: 60_000 }).catch((e: { stdout?: string }) => {
    assert.fail(`type tests failed:\n${e.stdout}`);
  });
  for (const f of ['test/types/express.ts', 'test/types/koa.ts', 'test/types/require.cts', 'dist/adapters/express.d.ts', 'dist/adapters/koa.d.ts']) {
    assert.ok(r.stdout.includes(`${root}${f}`), `${f} is part of the type tests`);
  }
});
