// Per-route policy and identity forwarding (issue 17): keep-alive requests per second through one
// gateway (createGateway from the build, pinned to core 0) on a plain route and on a route with an
// mtls policy (a CA restriction and a SAN allow-list) and forwardClientCert (XFCC sanitize-set with
// subject, uri, dns, and RFC 9440), alternating A B A B in the same run; the load generator and the
// upstream share core 1.
//
//   npm run bench:policy [-- --seconds=4 --rounds=3]

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadConfig } from './lib/loadgen.js';
import { cpuSeconds, lines, median, run } from './lib/run.js';

const dist = (name: string) => new URL(`../dist/${name}`, import.meta.url).href;
const { createTestPki } = (await import(dist('testing/index.js'))) as typeof import('../src/testing/index.js');
const arg = (name: string, d: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? d);
const SECONDS = arg('seconds', 4);
const ROUNDS = arg('rounds', 3);

const pki = await createTestPki({ serverNames: ['bench.test'] });
const client = await pki.client('valid');
const body = JSON.stringify({ slideshow: { author: 'mtls-gate', title: 'bench', slides: [1, 2, 3] } });
const upstream = http.createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
});
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-policy-'));
const config = {
  listen: [{ port: 0 }],
  ssls: [
    { id: 'bench', cert: pki.server.chain, key: pki.server.key, snis: ['bench.test'], client: { ca: pki.root.cert } },
  ],
  services: [
    {
      name: 'plain',
      hosts: ['bench.test'],
      pathPrefix: '/plain',
      upstream: url,
      routes: [{ name: 'json', path: '/json' }],
    },
    {
      name: 'policy',
      hosts: ['bench.test'],
      pathPrefix: '/policy',
      upstream: url,
      mtls: { ca: pki.root.cert, allow: { san: [{ type: 'email', suffix: '@example.test' }] } },
      forwardClientCert: { xfcc: 'sanitize-set', details: ['subject', 'uri', 'dns'], rfc9440: true },
      routes: [{ name: 'json', path: '/json' }],
    },
  ],
};
writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
// The gateway in its own process, as a user runs it from the library.
writeFileSync(
  join(dir, 'gateway.mjs'),
  `import { readFileSync } from 'node:fs';
const { createGateway } = await import(${JSON.stringify(dist('index.js'))});
const g = await createGateway(JSON.parse(readFileSync(${JSON.stringify(join(dir, 'config.json'))}, 'utf8')));
console.log(JSON.stringify({ port: g.addresses[0].port }));
process.on('SIGTERM', () => g.close().then(() => process.exit(0)));`,
);
const gw = run(0, [join(dir, 'gateway.mjs')]);
const { port } = JSON.parse(await lines(gw).next()) as { port: number };

async function load(
  path: string,
): Promise<{ rps: number; p99: number; statuses: Record<string, number>; cpuUs: number }> {
  const cfg: LoadConfig = {
    mode: 'ka',
    port,
    servername: 'bench.test',
    path,
    connections: 50,
    durationMs: SECONDS * 1000,
    warmupMs: 1000,
    cert: client.cert,
    key: client.key,
  };
  const file = join(dir, `load-${path.replace(/\W/g, '')}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  const out = lines(run(1, ['bench/lib/loadgen.ts', file]));
  // The gateway's CPU over the measured window (after the warm-up line), per response.
  let line = await out.next();
  while (!line.includes('"measuring"')) line = await out.next();
  const cpu0 = cpuSeconds(gw.pid!);
  const r = JSON.parse(await out.next()) as {
    rps: number;
    p99: number;
    statuses: Record<string, number>;
    requests: number;
  };
  const cpuUs = ((cpuSeconds(gw.pid!) - cpu0) * 1e6) / r.requests;
  return { ...r, cpuUs };
}

// Check once that both routes answer 200 and the policy route forwards the identity.
const ratios: number[] = [];
const cpuRatios: number[] = [];
const rows: string[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const plain = await load('/plain/json');
  const policy = await load('/policy/json');
  for (const r of [plain, policy])
    if (Object.keys(r.statuses).some((s) => s !== '200'))
      throw new Error(`non-200 answers: ${JSON.stringify(r.statuses)}`);
  ratios.push(policy.rps / plain.rps);
  cpuRatios.push(plain.cpuUs / policy.cpuUs);
  rows.push(
    `| ${i + 1} | ${Math.round(plain.rps)} | ${Math.round(policy.rps)} | ${(policy.rps / plain.rps).toFixed(3)} | ${plain.cpuUs.toFixed(0)} / ${policy.cpuUs.toFixed(0)} | ${(plain.cpuUs / policy.cpuUs).toFixed(3)} | ${plain.p99.toFixed(2)} / ${policy.p99.toFixed(2)} |`,
  );
  console.log(rows.at(-1));
}
console.log(
  `\n| round | plain req/s | policy + XFCC + RFC 9440 req/s | throughput ratio | gateway CPU µs/response (plain / policy) | CPU ratio | p99 ms (plain / policy) |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n\n` +
    `median throughput ratio ${median(ratios).toFixed(3)}, median CPU ratio ${median(cpuRatios).toFixed(3)} (target >= 0.95)`,
);
gw.kill('SIGTERM');
upstream.close();
rmSync(dir, { recursive: true, force: true });
