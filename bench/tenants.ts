// Many tenants (issue 19, first part): a store of N SSL objects built with every TLS context kept
// (contextCacheSize = N, the behaviour before) and with a cache of 1,000, each in its own process:
// build time and RSS at rest (after GC). Then handshakes on random SNIs against the 1,000-context store.
//
//   npm run bench:tenants [-- --objects=10000]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv.find((a) => a.startsWith('--objects='))?.slice(10) ?? 10_000);
const dist = (name: string) => new URL(`../dist/${name}`, import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-tenants-'));
const script = join(dir, 'build.mjs');
writeFileSync(
  script,
  `const { createSslStore } = await import(${JSON.stringify(dist('index.js'))});
const { createTestPki } = await import(${JSON.stringify(dist('testing/index.js'))});
const [n, cap] = process.argv.slice(2).map(Number);
const pki = await createTestPki({ serverNames: ['*.bench.test'] });
globalThis.gc?.();
const bare = process.memoryUsage().rss;
const store = createSslStore({ contextCacheSize: cap });
const t = performance.now();
for (let i = 0; i < n; i++) store.set({ id: 't' + i, cert: pki.server.chain, key: pki.server.key, snis: ['t' + i + '.bench.test'], client: { ca: pki.root.cert } });
const ms = performance.now() - t;
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 200));
globalThis.gc?.();
const pem = (pki.server.chain.length + pki.server.key.length + pki.root.cert.length) * n;
console.log(JSON.stringify({ n, cap, ms, rssMb: process.memoryUsage().rss / 2 ** 20, bareMb: bare / 2 ** 20, pemMb: pem / 2 ** 20, contexts: store.contextStats().cached }));`,
);
const rows: string[] = [];
for (const cap of [N, 1000]) {
  const r = spawnSync(process.execPath, ['--expose-gc', script, String(N), String(cap)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    ms: number;
    rssMb: number;
    bareMb: number;
    pemMb: number;
    contexts: number;
  };
  rows.push(
    `| ${N.toLocaleString('en')} | ${cap.toLocaleString('en')} | ${(o.ms / 1000).toFixed(2)} s | ${o.rssMb.toFixed(0)} MB | ${o.bareMb.toFixed(0)} MB | ${o.pemMb.toFixed(1)} MB | ${o.contexts} |`,
  );
  console.log(rows.at(-1));
}
console.log(
  `\n| objects | contextCacheSize | build | RSS at rest | bare Node + PKI | PEM held (input) | contexts kept |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}`,
);
rmSync(dir, { recursive: true, force: true });
