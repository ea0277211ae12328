// zod is loaded on the first call that validates something, not at import (internal/schema.ts): an
// application importing the store and the guard pays for the schema library when it configures one.
// Runs the build (npm test builds it first), in a child, so that nothing loaded here counts.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

test('no entry point loads zod at import; createSslStore() does', async () => {
  assert.ok(existsSync(`${root}dist/index.js`), 'dist/ is missing: run `npm run build` (npm test does it in pretest)');
  const { stdout } = await run(process.execPath, [fileURLToPath(new URL('fixtures/lazy-zod.mjs', import.meta.url))], {
    cwd: root,
    timeout: 30_000,
  });
  const seen = JSON.parse(stdout) as Record<
    'atImport' | 'afterStore' | 'afterImportingZod',
    { esm: number; cjs: number }
  >;
  assert.deepEqual(seen.atImport, { esm: 0, cjs: 0 }, 'zod was loaded by importing mtls-gate');
  assert.equal(seen.afterStore.esm, 0, 'zod is required (CommonJS, synchronous), not imported');
  assert.ok(seen.afterStore.cjs > 0, 'createSslStore() validates its options with zod: it must have loaded it');
  assert.ok(seen.afterImportingZod.esm > 0, 'the hooks see an ESM import of zod');
});
