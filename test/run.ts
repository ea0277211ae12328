// `npm test`: every test file, independent files two at a time (this machine has two cores), then the
// ones whose assertions are time windows, alone, so that a busy machine cannot make them fail. Exits
// non-zero when either run fails.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Files whose assertions are about time windows (a limit enforced within its timeout plus slack): run
 * with the machine to themselves. Memory checks (heap after GC, RSS of a child) do not depend on the
 * load and run with the others.
 */
const ALONE = new Set(['test/reliability/limits.test.ts']);

const files = readdirSync('test', { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(join('test', d.name))
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => `test/${d.name}/${f}`),
  )
  .sort();
const together = files.filter((f) => !ALONE.has(f));
const alone = files.filter((f) => ALONE.has(f));
const run = (concurrency: number, list: string[]) =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...process.argv.slice(2), ...list],
    { stdio: 'inherit' },
  ).status ?? 1;
const first = run(2, together);
const second = run(1, alone);
process.exitCode = first === 0 && second === 0 ? 0 : 1;
