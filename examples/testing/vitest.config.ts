import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// In an application, 'mtls-gate' resolves from node_modules; inside this repository it is the source.
const src = (p: string) => fileURLToPath(new URL(`../../src/${p}`, import.meta.url));

export default defineConfig({
  resolve: { alias: { 'mtls-gate/testing': src('testing/index.ts'), 'mtls-gate': src('index.ts') } },
  test: { include: ['examples/testing/*.vitest.ts'], root: fileURLToPath(new URL('../../', import.meta.url)) },
});
