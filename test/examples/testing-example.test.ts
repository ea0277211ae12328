// examples/testing: an application's own test suite built on mtls-gate/testing, run as its
// README says, with node:test and with vitest. Both must run every test and pass.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
// A test run inside this one must report for itself, not to our runner.
const { NODE_TEST_CONTEXT: _, ...env } = process.env;

test('node:test runs the orders tests: 3 pass, 0 fail', async () => {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=tap', 'examples/testing/orders.test.ts'],
    { timeout: 60_000, env },
  );
  assert.match(stdout, /^# pass 3$/m);
  assert.match(stdout, /^# fail 0$/m);
});

test('vitest runs the same tests: 5 passed', async () => {
  const vitest = 'node_modules/vitest/vitest.mjs';
  const { stdout } = await run(
    process.execPath,
    [vitest, 'run', '--config', 'examples/testing/vitest.config.ts', '--reporter=json'],
    { timeout: 120_000, env: { ...env, NO_COLOR: '1' } },
  );
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
    numTotalTests: number;
    numPassedTests: number;
    success: boolean;
  };
  assert.equal(report.numTotalTests, 5);
  assert.equal(report.numPassedTests, 5);
  assert.equal(report.success, true);
});
