// Reading a configuration file into data: YAML and JSON alike, ${VAR} substitution, { file } references,
// the digest a watcher compares, and the refusals (hostile YAML, prototype keys, oversized files).

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import { ErrorCodes } from '../../src/errors.js';

const MiB = 1024 * 1024;
let dir: string;

/** Writes `name` under the test directory and returns its absolute path. */
async function put(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** The data as ordinary objects, to compare with literals (the loader builds null-prototype ones). */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

const error = (code: string, field: string) => ({ code, field });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mtls-gate-load-'));
  await mkdir(join(dir, 'pki'));
  await put('pki/cert.pem', '-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n');
  await put('pki/ca.pem', '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('formats', () => {
  test('YAML and JSON equivalents give equal data with null prototypes', async () => {
    const yaml = await put(
      'eq.yaml',
      [
        'ssls:',
        '  - id: one',
        '    snis: [a.example, "*.b.example"]',
        '    cert: { file: pki/cert.pem }',
        '    client: { depth: 2, ca: { file: pki/ca.pem } }',
        'services:',
        '  - name: api',
        '    upstream: http://127.0.0.1:8080',
        '    enabled: true',
        '    weight: 1.5',
        '    tags: null',
      ].join('\n'),
    );
    const json = await put(
      'eq.json',
      JSON.stringify({
        ssls: [
          {
            id: 'one',
            snis: ['a.example', '*.b.example'],
            cert: { file: 'pki/cert.pem' },
            client: { depth: 2, ca: { file: 'pki/ca.pem' } },
          },
        ],
        services: [{ name: 'api', upstream: 'http://127.0.0.1:8080', enabled: true, weight: 1.5, tags: null }],
      }),
    );
    const a = await loadConfigFile(yaml);
    const b = await loadConfigFile(json);
    assert.deepEqual(a.config, b.config);
    const config = a.config as { ssls: { cert: string; client: object }[] };
    assert.equal(Object.getPrototypeOf(config), null);
    assert.equal(Object.getPrototypeOf(config.ssls[0]!.client), null);
    assert.match(config.ssls[0]!.cert, /BEGIN CERTIFICATE-----\nCERT/);
  });

  test('YAML uses the core schema: on/yes stay strings, numbers and booleans are typed', async () => {
    const { config } = await loadConfigText('a: on\nb: yes\nc: 8080\nd: true\ne: "8080"\n', 'yaml', dir);
    assert.deepEqual(plain(config), { a: 'on', b: 'yes', c: 8080, d: true, e: '8080' });
  });

  test('YAML tags beyond the core schema are refused', async () => {
    for (const text of ['a: !!binary aGVsbG8=', 'a: !!set {x}', 'a: !custom x', 'a: !!timestamp 2001-12-14']) {
      await assert.rejects(loadConfigText(text, 'yaml', dir), error(ErrorCodes.CONFIG_FILE, '(file)'), text);
    }
  });

  test('an unknown extension is refused', async () => {
    const path = await put('gateway.toml', 'a = 1\n');
    await assert.rejects(loadConfigFile(path), error(ErrorCodes.CONFIG_FILE, '(file)'));
  });

  test('a duplicate key is refused, naming its line', async () => {
    const path = await put('dup.yaml', 'ssls: []\nservices: []\nssls: []\n');
    await assert.rejects(loadConfigFile(path), (err: { code: string; message: string }) => {
      assert.equal(err.code, ErrorCodes.CONFIG_FILE);
      assert.match(err.message, /line 3\b/);
      return true;
    });
  });

  test('a JSON syntax error names its line', async () => {
    const path = await put('bad.json', '{\n  "ssls": [],\n}\n');
    await assert.rejects(loadConfigFile(path), (err: { code: string; message: string }) => {
      assert.equal(err.code, ErrorCodes.CONFIG_FILE);
      assert.match(err.message, /line 3\b/);
      return true;
    });
  });

  test('more than one YAML document is refused', async () => {
    const path = await put('multi.yaml', 'ssls: []\n---\nservices: []\n');
    await assert.rejects(loadConfigFile(path), error(ErrorCodes.CONFIG_FILE, '(file)'));
  });

  test('a billion-laughs document fails fast', async () => {
    const lines = [`a: &a [${Array(10).fill('"lol"').join(', ')}]`];
    for (let i = 1; i < 10; i++) {
      const [prev, name] = [String.fromCharCode(96 + i), String.fromCharCode(97 + i)];
      lines.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
    }
    const path = await put('laughs.yaml', lines.join('\n'));
    const start = performance.now();
    await assert.rejects(loadConfigFile(path), error(ErrorCodes.CONFIG_FILE, '(file)'));
    assert.ok(performance.now() - start < 1000, 'took more than a second');
  });

  test('a config file over 16 MiB is refused', async () => {
    const path = await put('huge.json', Buffer.alloc(16 * MiB + 1, 0x20));
    await assert.rejects(loadConfigFile(path), error(ErrorCodes.CONFIG_FILE, '(file)'));
  });
});

describe('{ file } references', () => {
  test('relative paths resolve against the config file; absolute paths are used as they are', async () => {
    const path = await put(
      'refs.yaml',
      `a: { file: pki/cert.pem }\nb: { file: ${JSON.stringify(join(dir, 'pki/ca.pem'))} }\n`,
    );
    const { config, files } = await loadConfigFile(path);
    assert.deepEqual(plain(config), {
      a: '-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n',
      b: '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
    });
    assert.deepEqual(files, [path, join(dir, 'pki/cert.pem'), join(dir, 'pki/ca.pem')]);
  });

  test('files lists the config file first and each referenced file once', async () => {
    const path = await put(
      'twice.yaml',
      'ssls:\n  - { cert: { file: pki/ca.pem }, ca: { file: pki/cert.pem } }\n  - { cert: { file: ./pki/ca.pem } }\n',
    );
    const { config, files } = await loadConfigFile(path);
    assert.deepEqual(files, [path, join(dir, 'pki/ca.pem'), join(dir, 'pki/cert.pem')]);
    const ssls = (config as { ssls: { cert: string }[] }).ssls;
    assert.equal(ssls[0]!.cert, ssls[1]!.cert);
  });

  test('loadConfigText resolves against baseDir and lists only referenced files', async () => {
    const { files } = await loadConfigText('{"cert": {"file": "cert.pem"}}', 'json', join(dir, 'pki'));
    assert.deepEqual(files, [join(dir, 'pki/cert.pem')]);
  });

  test('an object with file and other keys is left alone', async () => {
    const { config } = await loadConfigText('cert: { file: pki/cert.pem, mode: strict }', 'yaml', dir);
    assert.deepEqual(plain(config), { cert: { file: 'pki/cert.pem', mode: 'strict' } });
  });

  test('a missing referenced file names the file key', async () => {
    const path = await put('missing.yaml', 'ssls:\n  - cert: { file: pki/nope.pem }\n');
    await assert.rejects(loadConfigFile(path), error(ErrorCodes.CONFIG_FILE, 'ssls[0].cert.file'));
  });

  test('a referenced file over 16 MiB is refused; exactly 16 MiB is read', async () => {
    await put('pki/big.pem', Buffer.alloc(16 * MiB + 1, 0x41));
    await put('pki/limit.pem', Buffer.alloc(16 * MiB, 0x41));
    await assert.rejects(
      loadConfigText('ssls: [{ key: { file: pki/big.pem } }]', 'yaml', dir),
      error(ErrorCodes.CONFIG_FILE, 'ssls[0].key.file'),
    );
    const { config } = await loadConfigText('key: { file: pki/limit.pem }', 'yaml', dir);
    assert.equal((config as { key: string }).key.length, 16 * MiB);
  });

  test('a directory is not a file', async () => {
    await assert.rejects(loadConfigText('key: { file: pki }', 'yaml', dir), error(ErrorCodes.CONFIG_FILE, 'key.file'));
  });

  test('the digest changes when a referenced file changes, and not otherwise', async () => {
    const pem = await put('pki/rotating.pem', 'one\n');
    const path = await put('digest.yaml', 'ssls: [{ cert: { file: pki/rotating.pem } }]\n');
    const first = await loadConfigFile(path);
    assert.match(first.digest, /^[0-9a-f]{64}$/);
    await put('pki/unrelated.pem', 'noise\n');
    assert.equal((await loadConfigFile(path)).digest, first.digest);
    await writeFile(pem, 'two\n');
    const second = await loadConfigFile(path);
    assert.notEqual(second.digest, first.digest);
    await writeFile(pem, 'one\n');
    assert.equal((await loadConfigFile(path)).digest, first.digest);
  });
});

describe('${VAR} substitution', () => {
  const env = { HOST: 'api.example', PORT: '8443', EMPTY: '', NESTED: '${HOST}', DIR: 'pki' };

  test('values are replaced; keys, numbers and booleans are left alone', async () => {
    const text = 'url: "https://${HOST}:${PORT}/"\nport: ${PORT}\n${HOST}: key\nn: 1\nb: false\n';
    const { config } = await loadConfigText(text, 'yaml', dir, { env });
    assert.deepEqual(plain(config), {
      url: 'https://api.example:8443/',
      port: '8443',
      '${HOST}': 'key',
      n: 1,
      b: false,
    });
  });

  test('${VAR:=default} applies when the variable is unset or empty', async () => {
    const { config } = await loadConfigText(
      '{"a": "${UNSET:=x}", "b": "${EMPTY:=y}", "c": "${HOST:=z}", "d": "${UNSET:=}"}',
      'json',
      dir,
      { env },
    );
    assert.deepEqual(plain(config), { a: 'x', b: 'y', c: 'api.example', d: '' });
  });

  test('$${ is a literal ${, and a value is not expanded again', async () => {
    const { config } = await loadConfigText('a: "$${HOST}"\nb: "${NESTED}"\nc: "cost: $$5"\n', 'yaml', dir, { env });
    assert.deepEqual(plain(config), { a: '${HOST}', b: '${HOST}', c: 'cost: $$5' });
  });

  test('an unset variable names the field', async () => {
    await assert.rejects(
      loadConfigText('services:\n  - name: a\n  - upstream: "http://${UPSTREAM}"\n', 'yaml', dir, { env }),
      error(ErrorCodes.CONFIG_VARIABLE, 'services[1].upstream'),
    );
    // Only own properties of env count: `constructor` is not a variable of a plain object.
    await assert.rejects(
      loadConfigText('a: ${constructor}', 'yaml', dir, { env }),
      error(ErrorCodes.CONFIG_VARIABLE, 'a'),
    );
  });

  test('a malformed reference is refused', async () => {
    for (const bad of ['${}', '${1X}', '${X', '${X:-d}', '${ X }', '${X:=a${Y}}']) {
      await assert.rejects(
        loadConfigText(JSON.stringify({ a: { 'b c': bad } }), 'json', dir, { env }),
        error(ErrorCodes.CONFIG_VARIABLE, 'a["b c"]'),
        bad,
      );
    }
  });

  test('a variable in a file path is replaced first', async () => {
    const { config, files } = await loadConfigText('cert: { file: "${DIR}/cert.pem" }', 'yaml', dir, { env });
    assert.match((config as { cert: string }).cert, /CERT/);
    assert.deepEqual(files, [join(dir, 'pki/cert.pem')]);
    await assert.rejects(
      loadConfigText('cert: { file: "${NODIR}/cert.pem" }', 'yaml', dir, { env }),
      error(ErrorCodes.CONFIG_VARIABLE, 'cert.file'),
    );
  });

  test('process.env is the default', async () => {
    process.env.MTLS_GATE_LOAD_TEST = 'from-process';
    try {
      const { config } = await loadConfigText('a: ${MTLS_GATE_LOAD_TEST}', 'yaml', dir);
      assert.deepEqual(plain(config), { a: 'from-process' });
    } finally {
      delete process.env.MTLS_GATE_LOAD_TEST;
    }
  });

  test('the digest follows the substituted values', async () => {
    const a = await loadConfigText('a: ${HOST}', 'yaml', dir, { env });
    const b = await loadConfigText('a: ${HOST}', 'yaml', dir, { env: { ...env, HOST: 'other.example' } });
    assert.notEqual(a.digest, b.digest);
  });
});

describe('refused shapes', () => {
  test('__proto__, constructor and prototype keys are refused in YAML and JSON', async () => {
    await assert.rejects(
      loadConfigText('ssls:\n  - __proto__: { admin: true }\n', 'yaml', dir),
      error(ErrorCodes.UNKNOWN_FIELD, 'ssls[0].__proto__'),
    );
    await assert.rejects(
      loadConfigText('{"ssls": [{"__proto__": {"admin": true}}]}', 'json', dir),
      error(ErrorCodes.UNKNOWN_FIELD, 'ssls[0].__proto__'),
    );
    await assert.rejects(loadConfigText('{"__proto__": 1}', 'json', dir), error(ErrorCodes.UNKNOWN_FIELD, '__proto__'));
    await assert.rejects(
      loadConfigText('a: { constructor: { prototype: 1 } }', 'yaml', dir),
      error(ErrorCodes.UNKNOWN_FIELD, 'a.constructor'),
    );
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });

  test('nesting deeper than 32 levels below the root is refused, as plainCopy refuses it', async () => {
    const nest = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    await loadConfigText(nest(33), 'json', dir);
    await assert.rejects(
      loadConfigText(nest(34), 'json', dir),
      error(ErrorCodes.INVALID_OPTION, Array(33).fill('a').join('.')),
    );
  });

  test('a self-referencing YAML alias ends at the nesting limit', async () => {
    await assert.rejects(loadConfigText('a: &a [*a]', 'yaml', dir), { code: ErrorCodes.INVALID_OPTION });
  });
});
