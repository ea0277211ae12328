// The JSON Schema shipped as mtls-gate/schema.json, used as an editor uses it (ajv, draft 2020-12),
// and the one schema's error paths.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema, ErrorCodes, MtlsGateConfigError, validateConfig } from '../../src/index.js';

const require = createRequire(import.meta.url);
type Loose = {
  ssls: Record<string, unknown>[];
  services: (Record<string, unknown> & { routes: Record<string, unknown>[] })[];
};
const example = () =>
  parseYaml(readFileSync(new URL('../../examples/mtls-auth-app/gateway.yaml', import.meta.url), 'utf8')) as Loose;

describe('mtls-gate/schema.json', () => {
  const shipped = require('mtls-gate/schema.json') as Record<string, unknown>;
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(shipped);

  test('the package exports the schema the source defines', () => {
    assert.deepEqual(shipped, JSON.parse(JSON.stringify(configJsonSchema())));
  });
  test('validates the bundled example file', () => {
    assert.equal(validate(example()), true, JSON.stringify(validate.errors));
  });
  test('an editor-style check rejects a typo with its path', () => {
    const bad = example();
    bad.ssls[0]!.sni = bad.ssls[0]!.snis;
    delete bad.ssls[0]!.snis;
    bad.services[0]!.routes[0]!.methods = ['GET', 'FETCH'];
    assert.equal(validate(bad), false);
    const errors = validate.errors!.map((e) => `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`);
    assert.ok(
      errors.some((e) => e.startsWith('/ssls/0 additionalProperties') && e.includes('"sni"')),
      errors.join('\n'),
    );
    assert.ok(
      errors.some((e) => e.startsWith('/services/0/routes/0/methods/1 enum')),
      errors.join('\n'),
    );
  });
  test('{ file } is accepted where PEM goes, and only there', () => {
    const bad = example();
    bad.services[0]!.pathPrefix = { file: 'x' };
    assert.equal(validate(bad), false);
    assert.ok(validate.errors!.some((e) => e.instancePath === '/services/0/pathPrefix'));
  });
});

describe('validateConfig: every problem, each with its full path as data', () => {
  test('shape problems in several entries are all listed', () => {
    const config = {
      listen: [{ port: 70000 }],
      ssls: [
        { id: 'a', cert: 'x', key: 'y', client: { ca: 'z', dept: 1 } },
        { id: 'bad id!', cert: 1, key: 'y' },
      ],
      services: [
        { name: 's', upstream: 'http://127.0.0.1:1', routes: [{ name: 'r', path: '/', methods: ['GET', 'get'] }] },
      ],
      colour: 'blue',
    };
    const err = (() => {
      try {
        validateConfig(config);
      } catch (e) {
        return e;
      }
      assert.fail('accepted');
    })();
    assert.ok(err instanceof MtlsGateConfigError);
    const fields = err.issues.map((i) => `${i.field} ${i.code}`);
    for (const want of [
      `listen[0].port ${ErrorCodes.INVALID_OPTION}`,
      `ssls[0].client.dept ${ErrorCodes.UNKNOWN_FIELD}`,
      `ssls[1].id ${ErrorCodes.INVALID_OPTION}`,
      `ssls[1].cert ${ErrorCodes.INVALID_OPTION}`,
      `services[0].routes[0].methods[1] ${ErrorCodes.INVALID_OPTION}`,
      `colour ${ErrorCodes.UNKNOWN_FIELD}`,
    ]) {
      assert.ok(fields.includes(want), `${want} in\n${fields.join('\n')}`);
    }
    assert.equal(err.field, err.issues[0]!.field);
  });
  test('a missing required field is ERR_MTLS_MISSING_FIELD with its path', () => {
    assert.throws(() => validateConfig({ listen: [{ port: 1 }], services: [{ name: 's', routes: [] }] }), {
      code: ErrorCodes.MISSING_FIELD,
      field: 'services[0].upstream',
    });
    assert.throws(() => validateConfig({ ssls: [] }), { code: ErrorCodes.MISSING_FIELD, field: 'listen' });
  });
  test('ids and names given twice', () => {
    assert.throws(
      () =>
        validateConfig({
          listen: [{ port: 1 }],
          services: [1, 2].map(() => ({ name: 's', upstream: 'http://127.0.0.1:1', routes: [] })),
        }),
      (e: unknown) => e instanceof MtlsGateConfigError && e.issues.some((i) => i.field === 'services[1].name'),
    );
  });
});
