// docs/api is generated from the TSDoc by `npm run docs:api`; a stale copy fails here.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

test('docs/api matches what typedoc generates from the source', async () => {
  const out = mkdtempSync(join(tmpdir(), 'mtls-gate-api-'));
  try {
    await run(
      process.execPath,
      [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out, '--treatWarningsAsErrors'],
      { cwd: root, timeout: 120_000 },
    );
    const fresh = files(out);
    const committed = files(join(root, 'docs/api'));
    assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), 'the same pages (run `npm run docs:api`)');
    for (const [name, text] of fresh)
      assert.equal(committed.get(name), text, `docs/api/${name} is stale: run \`npm run docs:api\``);
    assert.ok(fresh.get('mtls-gate/express.md')?.includes('### mtlsRouter()'), 'the adapters are documented');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
