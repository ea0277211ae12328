// The house's floors (../shared/STYLE.md, "The house as it grows"): a module may import from its own
// floor and the floors below, never from above, and the imports of src/ form no cycle. Type-only
// imports count: a type reached from above is a dependency on that floor all the same.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Floors, lowest first. `errors.ts` is the base every floor may use; `index.ts` the roof. */
const FLOORS: Record<string, number> = {
  'errors.ts': 0,
  internal: 1,
  http: 2,
  server: 3,
  observe: 3,
  verify: 4,
  ssl: 5,
  policy: 6,
  guard: 6,
  proxy: 7,
  router: 8,
  config: 9,
  gateway: 9,
  sources: 9,
  adapters: 10,
  cli: 10,
  testing: 10,
  'index.ts': 11,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const floorOf = (file: string): number => {
  const top = relative(SRC, file).split(/[\\/]/)[0]!;
  const floor = FLOORS[top];
  assert.ok(floor !== undefined, `${relative(SRC, file)} is in no floor of the house: add its folder to FLOORS`);
  return floor;
};

/** Relative imports of a module, resolved to .ts files (`from '...'`, `import '...'`, `export ... from`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'|(?:^|\n)\s*import\s+'(\.[^']+)'/g,
  )) {
    const spec = (m[1] ?? m[2])!;
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

const all = files(SRC);
const graph = new Map(all.map((f) => [f, importsOf(f)]));

test('every import of src/ resolves to a module of src/', () => {
  for (const [file, deps] of graph)
    for (const d of deps)
      assert.ok(graph.has(d), `${relative(SRC, file)} imports ${relative(SRC, d)}, which does not exist`);
});

test('no module imports from a floor above its own', () => {
  const wrong: string[] = [];
  for (const [file, deps] of graph) {
    for (const d of deps) if (floorOf(d) > floorOf(file)) wrong.push(`${relative(SRC, file)} -> ${relative(SRC, d)}`);
  }
  assert.deepEqual(wrong, []);
});

test('the imports of src/ have no cycle', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of all) visit(f, []);
  assert.deepEqual(cycles, []);
});
