import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorCodes, RejectReasons } from '../../src/index.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = (prefix: RegExp) => [...doc.matchAll(prefix)].map((m) => m[1]!);

test('docs/errors.md lists every error code, and only those', () => {
  const documented = rows(/^\| `(ERR_MTLS_[A-Z_]+)` \|/gm).sort();
  assert.deepEqual(documented, Object.values(ErrorCodes).sort());
});

test('docs/errors.md lists every reject reason, and only those', () => {
  const documented = rows(/^\| `([a-z_]+)` \|/gm).sort();
  assert.deepEqual(documented, [...RejectReasons].sort());
});
