// Applying configuration at scale (issue 14): a gateway of 10,000 SSL objects applied from scratch,
// then one changed object applied among them, through the library (createGateway, gateway.apply)
// and through the file the command reads (loadConfigFile + apply), with RSS after each step.
//
//   npm run bench:apply [-- --objects=10000]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { GatewayConfig } from '../src/index.js';

// The build (npm run bench:apply builds it), as users run it; a non-literal specifier keeps
// type-checking independent of the build, the types come from the source.
const dist = (name: string) => new URL(`../dist/${name}`, import.meta.url).href;
const { createGateway, loadConfigFile } = (await import(dist('index.js'))) as typeof import('../src/index.js');
const { createTestPki } = (await import(dist('testing/index.js'))) as typeof import('../src/testing/index.js');

const N = Number(process.argv.find((a) => a.startsWith('--objects='))?.slice(10) ?? 10_000);
const mb = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const rows: [string, string, string][] = [];
const row = (what: string, ms: number) => {
  rows.push([what, ms >= 100 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`, `${mb()} MB`]);
  console.log(`${what}: ${rows.at(-1)![1]}, RSS ${rows.at(-1)![2]}`);
};

const pki = await createTestPki({ serverNames: ['*.bench.test'] });
const ssl = (i: number, desc?: string) => ({
  id: `t${i}`,
  cert: pki.server.chain,
  key: pki.server.key,
  snis: [`t${i}.bench.test`],
  client: { ca: pki.root.cert },
  ...(desc ? { desc } : {}),
});
const services = [{ name: 'all', upstream: 'http://127.0.0.1:9', routes: [{ name: 'all', path: '/*' }] }];
const config = (changed?: number): GatewayConfig => ({
  listen: [{ port: 0 }],
  ssls: Array.from({ length: N }, (_, i) => ssl(i, i === changed ? 'changed' : undefined)),
  services,
});
console.log(`bare Node RSS: ${mb()} MB (certificates minted)`);

let t = performance.now();
const gateway = await createGateway(config());
row(`createGateway with ${N.toLocaleString('en')} SSL objects, from scratch`, performance.now() - t);
t = performance.now();
gateway.apply(config());
row('apply the same configuration again (unchanged: nothing touched)', performance.now() - t);
for (const i of [7, 8]) {
  t = performance.now();
  gateway.apply(config(i));
  row(`apply with one object changed among ${N.toLocaleString('en')} (object ${i})`, performance.now() - t);
}

// The file the command reads: PEM by { file } reference (each file read once).
const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-apply-'));
writeFileSync(join(dir, 'server.crt'), pki.server.chain);
writeFileSync(join(dir, 'server.key'), pki.server.key);
writeFileSync(join(dir, 'ca.crt'), pki.root.cert);
const yaml = (changed?: number) =>
  [
    'listen: [{ port: 0 }]',
    'services: [{ name: all, upstream: "http://127.0.0.1:9", routes: [{ name: all, path: "/*" }] }]',
    'ssls:',
    ...Array.from(
      { length: N },
      (_, i) =>
        `  - { id: t${i}, cert: { file: server.crt }, key: { file: server.key }, snis: [t${i}.bench.test], client: { ca: { file: ca.crt } }${i === changed ? ', desc: file-changed' : ''} }`,
    ),
  ].join('\n');
writeFileSync(join(dir, 'gateway.yaml'), yaml(9));
t = performance.now();
const loaded = await loadConfigFile(join(dir, 'gateway.yaml'));
const loadMs = performance.now() - t;
gateway.apply(loaded.config as GatewayConfig);
row(
  `reload from a ${N.toLocaleString('en')}-object YAML file, one object changed (load ${loadMs.toFixed(0)} ms + apply)`,
  performance.now() - t,
);
await gateway.close();
rmSync(dir, { recursive: true, force: true });

console.log('\n| step | time | RSS after |\n|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
