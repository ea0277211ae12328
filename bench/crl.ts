// A large CRL (issue 16): 100,000 entries made by `openssl ca -gencrl`, read by mtls-gate's DER walk:
// load time, memory held, cost of a lookup, and of a whole revocation check of a verified chain.
//
//   npm run bench:crl [-- --entries=100000]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { crlDers, parseCrl } from '../src/verify/crl.js';

const N = Number(process.argv.find((a) => a.startsWith('--entries='))?.slice(10) ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-crl-'));
const openssl = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
mkdirSync(join(dir, 'ca'));
writeFileSync(
  join(dir, 'ca.cnf'),
  `[ca]\ndefault_ca = this\n[this]\ndir = ca\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\ncrlnumber = $dir/crlnumber\ncertificate = $dir/cert.pem\nprivate_key = $dir/key.pem\ndefault_md = sha256\ndefault_crl_days = 1\n[req]\ndistinguished_name = dn\n[dn]\n[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n`,
);
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ca/key.pem');
openssl(
  'req',
  '-x509',
  '-new',
  '-key',
  'ca/key.pem',
  '-subj',
  '/CN=Bench CRL CA',
  '-days',
  '2',
  '-out',
  'ca/cert.pem',
  '-config',
  'ca.cnf',
  '-extensions',
  'v3_ca',
);
const serials = Array.from({ length: N }, (_, i) => (0x100000 + i * 7).toString(16).toUpperCase().padStart(8, '0'));
writeFileSync(
  join(dir, 'ca/index.txt'),
  `${serials.map((s) => `R\t301231235959Z\t261201000000Z\t${s}\tunknown\t/CN=d${s}`).join('\n')}\n`,
);
writeFileSync(join(dir, 'ca/crlnumber'), '01\n');
let t = performance.now();
openssl('ca', '-config', 'ca.cnf', '-gencrl', '-out', 'big.crl');
console.log(
  `openssl ca -gencrl of ${N.toLocaleString('en')} entries: ${((performance.now() - t) / 1000).toFixed(2)} s`,
);
const pem = readFileSync(join(dir, 'big.crl'), 'utf8');
const der = crlDers(pem)[0]!;
console.log(`CRL: ${(der.length / 1e6).toFixed(2)} MB DER, ${(pem.length / 1e6).toFixed(2)} MB PEM`);

globalThis.gc?.();
const before = process.memoryUsage().heapUsed;
t = performance.now();
const crl = parseCrl(der);
const loadMs = performance.now() - t;
globalThis.gc?.();
const held = process.memoryUsage().heapUsed - before;
console.log(
  `load (DER walk into a serial set): ${loadMs.toFixed(0)} ms, ${crl.size.toLocaleString('en')} entries, heap held ${(held / 1e6).toFixed(1)} MB${globalThis.gc ? '' : ' (run with --expose-gc for an exact figure)'}`,
);
t = performance.now();
const { createPublicKey } = await import('node:crypto');
const ok = crl.signedBy(createPublicKey(readFileSync(join(dir, 'ca/cert.pem'), 'utf8')));
console.log(
  `signature check: ${(performance.now() - t).toFixed(1)} ms (${ok ? 'valid' : 'INVALID'}), once per CRL and issuer key`,
);

// Serials as certificates carry them (no leading zero bytes), half of them listed.
const probes = Array.from({ length: 4096 }, (_, i) =>
  i % 2 ? serials[(i * 7919) % N]!.replace(/^(00)+/, '') : (0x90000000 + i).toString(16).toUpperCase(),
);
let hits = 0;
const ROUNDS = 2_000_000;
t = performance.now();
for (let i = 0; i < ROUNDS; i++) if (crl.revoked.has(probes[i & 4095]!)) hits++;
const ns = ((performance.now() - t) * 1e6) / ROUNDS;
console.log(`lookup: ${ns.toFixed(1)} ns per serial (${hits} hits of ${ROUNDS})`);
rmSync(dir, { recursive: true, force: true });
