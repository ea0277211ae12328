// Every code block in README.md and docs/ (the generated API reference included) is compiled, run
// or checked here:
// - ts blocks are type-checked, each as its own module, against the package's types;
// - json blocks are parsed;
// - sh blocks marked `<!-- doc-test: run -->` run in order in an empty directory (a `text` block right
//   after one holds lines its output must contain); `<!-- doc-test: start -->` starts a server that
//   must print "listening on"; a ts block marked `<!-- doc-test: file NAME -->` is written there first;
// - any other sh block may only hold npm commands naming existing scripts, or node/npx commands
//   naming files that exist: those are run by CI itself or by the example tests.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { join, relative } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const scripts = Object.keys(
  (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts,
);

interface Block {
  doc: string;
  line: number;
  lang: string;
  code: string;
  directive: string | undefined;
}

function markdownFiles(): string[] {
  const out = [join(root, 'README.md')];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.md')) out.push(join(d, e.name));
    }
  };
  walk(join(root, 'docs'));
  return out;
}

function blocksOf(file: string): Block[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const blocks: Block[] = [];
  let directive: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const d = /^<!-- doc-test: (.+?) -->$/.exec(line.trim());
    if (d) {
      directive = d[1];
      continue;
    }
    const fence = /^(\s*)(```+)(\S*)/.exec(line);
    if (!fence) {
      if (line.trim() !== '') directive = undefined;
      continue;
    }
    const [, indent, ticks, lang] = fence;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith(`${indent}${ticks}`); i++)
      body.push(lines[i]!.slice(indent!.length));
    blocks.push({
      doc: relative(root, file),
      line: start + 1,
      lang: lang!.toLowerCase(),
      code: body.join('\n'),
      directive,
    });
    directive = undefined;
  }
  return blocks;
}

const all = markdownFiles().flatMap(blocksOf);
const where = (b: Block) => `${b.doc}:${b.line}`;
const CLI_FLAGS = new Set([
  '--config',
  '--workers',
  '--listen',
  '--status',
  '--log-format',
  '--access-log',
  '--help',
  '--version',
  '--etcd',
  '--prefix',
  '--snapshot',
  '--etcd-timeout',
  '--prune',
  '--if-revision',
]);
const KNOWN = new Set(['ts', 'typescript', 'json', 'sh', 'text', 'yaml']);

test('the docs have code blocks, each in a language this test knows', () => {
  assert.ok(all.length > 20, `found ${all.length} blocks`);
  for (const b of all)
    assert.ok(KNOWN.has(b.lang), `${where(b)}: fence language "${b.lang}" (use ts, json, sh, yaml or text)`);
});

test('every ts block type-checks', async () => {
  const dir = mkdtempSync(join(root, '.doc-test-ts-'));
  try {
    const names = new Map<string, Block>();
    all
      .filter((b) => b.lang === 'ts' || b.lang === 'typescript')
      .forEach((b, n) => {
        const name = `${b.doc.replace(/[^a-z0-9]+/gi, '_')}_${b.line}_${n}.ts`;
        names.set(name, b);
        // `export {}` keeps every block a module of its own (top-level await, no shared names).
        writeFileSync(join(dir, name), `${b.code}\nexport {};\n`);
      });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../tsconfig.json',
        compilerOptions: { rootDir: '..', noEmit: true, noUnusedLocals: false },
        include: ['*.ts'],
        exclude: [],
      }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], {
      cwd: root,
      timeout: 120_000,
    }).then(
      () => '',
      (e: { stdout?: string }) => e.stdout ?? String(e),
    );
    const errors = result
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const m = /([^/\\]+\.ts)\((\d+),\d+\): (.*)$/.exec(l);
        const b = m && names.get(m[1]!);
        return b ? `${b.doc}:${b.line + Number(m![2])}: ${m![3]}` : l;
      });
    assert.deepEqual(errors, [], `${names.size} blocks compiled`);
    assert.ok(names.size >= 15, `${names.size} ts blocks`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every json block parses', () => {
  for (const b of all.filter((x) => x.lang === 'json')) assert.doesNotThrow(() => JSON.parse(b.code), where(b));
});

test('sh blocks that are not run name only npm scripts and files that exist', () => {
  for (const b of all.filter((x) => x.lang === 'sh' && x.directive === undefined)) {
    for (const raw of b.code.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (!line) continue;
      for (const cmd of line.split(/\s*&&\s*/)) {
        const words = cmd.split(/\s+/);
        if (words[0] === 'npm') {
          const [, verb, arg] = words;
          if (verb === 'run') assert.ok(scripts.includes(arg!), `${where(b)}: npm run ${arg}: no such script`);
          else if (verb === 'start' || verb === 'test') assert.ok(scripts.includes(verb), `${where(b)}: npm ${verb}`);
          else assert.ok(verb === 'ci' || verb === 'install', `${where(b)}: npm ${verb}`);
        } else if (words[0] === 'mtls-gate' || (words[0] === 'npx' && words[1] === 'mtls-gate')) {
          // The command as users run it in their own project: a known subcommand and known flags.
          const args = words.slice(words[0] === 'npx' ? 2 : 1);
          assert.ok(
            ['serve', 'validate', 'schema', 'etcd'].includes(args[0]!),
            `${where(b)}: mtls-gate ${args[0]}: no such command`,
          );
          for (const flag of args.filter((w) => w.replace(/^\[/, '').startsWith('--'))) {
            assert.ok(
              CLI_FLAGS.has(flag.replace(/^\[/, '').replace(/[\]=].*$/, '')),
              `${where(b)}: mtls-gate ${flag}: no such flag`,
            );
          }
        } else if (words[0] === 'node' || words[0] === 'npx') {
          const files = words.filter((w) => /\.(ts|js|mjs|cjs)$/.test(w));
          assert.ok(files.length > 0, `${where(b)}: ${cmd} names no file`);
          for (const f of files) assert.ok(existsSync(join(root, f)), `${where(b)}: ${f} does not exist`);
        } else {
          assert.fail(
            `${where(b)}: "${cmd}" is neither run by this test nor an npm/node command (mark the block <!-- doc-test: run -->)`,
          );
        }
      }
    }
  }
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const runnableDocs = [...new Set(all.filter((b) => b.directive !== undefined).map((b) => b.doc))];

for (const doc of runnableDocs) {
  describe(`${doc}, run step by step`, () => {
    const children: ChildProcess[] = [];
    const dir = (mkdirSync(join(root, '.doc-test'), { recursive: true }), mkdtempSync(join(root, '.doc-test', 'run-')));
    after(() => {
      for (const c of children) {
        // The whole group: bash, npx and the server it started.
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
        c.stdout?.destroy();
        c.stderr?.destroy();
      }
      rmSync(dir, { recursive: true, force: true });
    });
    const blocks = all.filter((b) => b.doc === doc);
    let port = 0;
    test('every step', async () => {
      port = await freePort();
      const env = { ...process.env, PORT: String(port) };
      const withPort = (s: string) => s.replaceAll(':9443', `:${port}`);
      for (let i = 0; i < blocks.length; i++) {
        const b = blocks[i]!;
        const file = /^file (\S+)$/.exec(b.directive ?? '');
        if (file) {
          writeFileSync(join(dir, file[1]!), b.code);
        } else if (b.directive === 'start') {
          const child = spawn('bash', ['-c', `exec ${b.code.trim()}`], {
            cwd: dir,
            env,
            stdio: ['ignore', 'pipe', 'pipe'],
            detached: true,
          });
          children.push(child);
          let out = '';
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`${where(b)}: no "listening on" in 60 s:\n${out}`)),
              60_000,
            );
            const seen = (c: Buffer) => {
              out += c.toString();
              if (/listening on/.test(out)) {
                clearTimeout(timer);
                resolve();
              }
            };
            child.stdout!.on('data', seen);
            child.stderr!.on('data', seen);
            child.once('exit', (code) => reject(new Error(`${where(b)}: exited ${code}:\n${out}`)));
          });
        } else if (b.directive === 'run') {
          const { stdout } = await run('bash', ['-e', '-c', withPort(b.code)], {
            cwd: dir,
            env,
            timeout: 60_000,
          }).catch((e: { stderr?: string; stdout?: string }) => {
            throw new Error(`${where(b)} failed:\n${e.stderr}\n${e.stdout}`);
          });
          const next = blocks[i + 1];
          if (next?.lang === 'text' && next.directive === undefined) {
            const got = stdout.replace(/\r/g, '');
            for (const want of next.code.split('\n').filter((l) => l.trim() && l.trim() !== '...')) {
              assert.ok(
                got.includes(withPort(want)),
                `${where(next)}: "${want}" not in the output of ${where(b)}:\n${got}`,
              );
            }
            i++;
          }
        } else if (b.directive !== undefined) {
          assert.fail(`${where(b)}: unknown directive "${b.directive}"`);
        }
      }
    });
  });
}

test('every yaml block with a listen: key is a valid config file (the shape of mtls-gate/schema.json)', async () => {
  const { parse } = await import('yaml');
  const { gatewayFileSchema } = await import('../../src/config/schema.js');
  const configs = all.filter((b) => b.lang === 'yaml' && /^listen:/m.test(b.code));
  assert.ok(configs.length >= 2, `found ${configs.length} config blocks`);
  for (const b of configs) {
    const r = gatewayFileSchema().safeParse(parse(b.code));
    assert.ok(r.success, `${where(b)}: ${JSON.stringify(r.error?.issues.slice(0, 3))}`);
  }
});
