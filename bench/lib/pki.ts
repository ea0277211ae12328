// The benchmark's certificates, ECDSA P-256 throughout: a root CA, the server certificate for the
// bench host, one client certificate (reused), a fleet of distinct client certificates from the
// same CA (and a second set for its warm-up), and server certificates for the 10,000-object store.
// Minting ~4,100 certificates takes ~25 s, so they are kept in a temporary directory (PEM files for
// nginx and wrk too) and reused for three days (they are valid for eight).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestPki, type TestCert } from '../../src/testing/index.js';

export const SERVERNAME = 'mtls.httpbin.org';
export const FLEET_SIZE = 2000;
/** Distinct client certificates for the fleet run's warm-up, none of them in the measured fleet. */
export const FLEET_WARMUP_SIZE = 2000;
/** Distinct server certificates spread over the large store's objects (each object still gets its own TLS context). */
export const STORE_CERTS = 100;
const VERSION = 3;

export interface BenchPki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  /** A file holding the fleet as a JSON array of { cert, key }. */
  fleetFile: string;
  /** The warm-up fleet, in the same form. */
  fleetWarmupFile: string;
  storeCerts: { cert: string; key: string }[];
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
}

const pair = (c: TestCert) => ({ cert: c.cert, key: c.key });

export async function benchPki(log: (s: string) => void): Promise<BenchPki> {
  const dir = join(tmpdir(), 'mtls-gate-bench');
  mkdirSync(dir, { recursive: true });
  const meta = join(dir, 'pki.json');
  const files = {
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
  const fleetFile = join(dir, 'fleet.json');
  const fleetWarmupFile = join(dir, 'fleet-warmup.json');
  if (existsSync(meta) && existsSync(fleetFile) && existsSync(fleetWarmupFile)) {
    const m = JSON.parse(readFileSync(meta, 'utf8'));
    if (m.version === VERSION && Date.now() - m.created < 3 * 86400_000) {
      return { dir, ca: m.ca, server: m.server, client: m.client, fleetFile, fleetWarmupFile, storeCerts: m.storeCerts, files };
    }
  }
  const t = performance.now();
  log(`minting certificates (root, server, client, ${FLEET_SIZE} + ${FLEET_WARMUP_SIZE} fleet clients, ${STORE_CERTS} store servers) into ${dir} ...`);
  const pki = await createTestPki({ keyType: 'ec', serverNames: [SERVERNAME], name: 'mtls-gate bench' });
  const notAfter = new Date(Date.now() + 8 * 86400_000);
  const root = await pki.createRoot({ subject: 'O=mtls-gate bench, CN=private_ca', keyType: 'ec', notAfter });
  const server = await root.issue({ subject: `CN=${SERVERNAME}`, san: { dns: [SERVERNAME] }, notAfter });
  const client = await root.issue({ subject: 'O=mtls-gate bench, CN=client', notAfter });
  const many = async (n: number, make: (i: number) => Promise<TestCert>) => {
    const out: TestCert[] = [];
    for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => make(i + j)))));
    return out;
  };
  const fleet = await many(FLEET_SIZE, (i) => root.issue({ subject: `O=mtls-gate bench, CN=device-${i}`, notAfter }));
  const fleetWarmup = await many(FLEET_WARMUP_SIZE, (i) => root.issue({ subject: `O=mtls-gate bench, CN=warm-up-device-${i}`, notAfter }));
  const storeCerts = await many(STORE_CERTS, (i) => root.issue({ subject: `CN=store-${i}.bench.test`, san: { dns: [`store-${i}.bench.test`] }, notAfter }));
  writeFileSync(files.ca, root.cert);
  writeFileSync(files.serverCert, server.cert);
  writeFileSync(files.serverKey, server.key, { mode: 0o600 });
  writeFileSync(files.clientCert, client.cert);
  writeFileSync(files.clientKey, client.key, { mode: 0o600 });
  writeFileSync(fleetFile, JSON.stringify(fleet.map(pair)));
  writeFileSync(fleetWarmupFile, JSON.stringify(fleetWarmup.map(pair)));
  const out = { dir, ca: root.cert, server: pair(server), client: pair(client), fleetFile, fleetWarmupFile, storeCerts: storeCerts.map(pair), files };
  writeFileSync(meta, JSON.stringify({ version: VERSION, created: Date.now(), ca: out.ca, server: out.server, client: out.client, storeCerts: out.storeCerts }));
  log(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return out;
}
