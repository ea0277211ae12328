// The benchmark's certificates, ECDSA P-256 throughout: a root CA, the server certificate for the
// bench host, one client certificate (reused), fleets of distinct client certificates from the
// same CA (one per measured window, so every certificate a server sees in a window is new to it,
// and a larger set for the warm-up), and server certificates for the 10,000-object store.
// Minting takes ~6 ms a certificate, so they are kept in a temporary directory (PEM files for nginx
// and wrk too) and reused for three days (they are valid for eight); a run that needs more fleet
// windows than are kept mints the missing ones.
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { x509 } from '../../src/internal/x509.js';
import { createTestPki } from '../../src/testing/index.js';
import { pemBlocks } from '../../src/verify/cert.js';

export const SERVERNAME = 'mtls.httpbin.org';
export const FLEET_SIZE = 2000;
/** Distinct client certificates for the fleet run's warm-up, none of them in a measured fleet. */
export const FLEET_WARMUP_SIZE = 4000;
/** Distinct server certificates spread over the large store's objects (each object still gets its own TLS context). */
export const STORE_CERTS = 100;
const VERSION = 4;

export interface BenchPki {
  dir: string;
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
  /**
   * The file of measured window `i`'s fleet (FLEET_SIZE certificates as a JSON array of { cert, key }), minted on first
   * use.
   */
  fleetFile(window: number): Promise<string>;
  /** The warm-up fleet, in the same form. */
  fleetWarmupFile: string;
  storeCerts: { cert: string; key: string }[];
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
}

const pair = (c: { cert: string; key: string }) => ({ cert: c.cert, key: c.key });
const EC = { name: 'ECDSA', namedCurve: 'P-256' };

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
  const fleetWarmupFile = join(dir, 'fleet-warmup.json');
  if (existsSync(meta) && existsSync(fleetWarmupFile)) {
    const m = JSON.parse(readFileSync(meta, 'utf8'));
    if (m.version === VERSION && Date.now() - m.created < 3 * 86400_000) {
      const root = { cert: m.ca, key: readFileSync(join(dir, 'ca.key'), 'utf8') };
      return {
        dir,
        ca: m.ca,
        server: m.server,
        client: m.client,
        fleetFile: fleetFiles(dir, root, new Date(m.notAfter), log),
        fleetWarmupFile,
        storeCerts: m.storeCerts,
        files,
      };
    }
  }
  const t = performance.now();
  log(
    `minting certificates (root, server, client, ${FLEET_WARMUP_SIZE} warm-up fleet clients, ${STORE_CERTS} store servers) into ${dir} ...`,
  );
  const pki = await createTestPki({ keyType: 'ec', serverNames: [SERVERNAME], name: 'mtls-gate bench' });
  const notAfter = new Date(Date.now() + 8 * 86400_000);
  const root = await pki.createRoot({ subject: 'O=mtls-gate bench, CN=private_ca', keyType: 'ec', notAfter });
  const server = await root.issue({ subject: `CN=${SERVERNAME}`, san: { dns: [SERVERNAME] }, notAfter });
  const client = await root.issue({ subject: 'O=mtls-gate bench, CN=client', notAfter });
  const fleetWarmup = await many(FLEET_WARMUP_SIZE, (i) =>
    root.issue({ subject: `O=mtls-gate bench, CN=warm-up-device-${i}`, notAfter }),
  );
  const storeCerts = await many(STORE_CERTS, (i) =>
    root.issue({ subject: `CN=store-${i}.bench.test`, san: { dns: [`store-${i}.bench.test`] }, notAfter }),
  );
  for (const f of readdirSync(dir)) if (/^fleet-\d+\.json$/.test(f)) rmSync(join(dir, f));
  writeFileSync(files.ca, root.cert);
  writeFileSync(join(dir, 'ca.key'), root.key, { mode: 0o600 });
  writeFileSync(files.serverCert, server.cert);
  writeFileSync(files.serverKey, server.key, { mode: 0o600 });
  writeFileSync(files.clientCert, client.cert);
  writeFileSync(files.clientKey, client.key, { mode: 0o600 });
  writeFileSync(fleetWarmupFile, JSON.stringify(fleetWarmup.map(pair)));
  const out = {
    dir,
    ca: root.cert,
    server: pair(server),
    client: pair(client),
    fleetFile: fleetFiles(dir, root, notAfter, log),
    fleetWarmupFile,
    storeCerts: storeCerts.map(pair),
    files,
  };
  writeFileSync(
    meta,
    JSON.stringify({
      version: VERSION,
      created: Date.now(),
      notAfter: notAfter.getTime(),
      ca: out.ca,
      server: out.server,
      client: out.client,
      storeCerts: out.storeCerts,
    }),
  );
  log(`  done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return out;
}

async function many(n: number, make: (i: number) => Promise<{ cert: string; key: string }>) {
  const out: { cert: string; key: string }[] = [];
  for (let i = 0; i < n; i += 50)
    out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => make(i + j)))));
  return out;
}

/** Window i's fleet file, minted (by the kept root CA) the first time a run asks for it. */
function fleetFiles(dir: string, root: { cert: string; key: string }, notAfter: Date, log: (s: string) => void) {
  return async (window: number): Promise<string> => {
    const file = join(dir, `fleet-${window}.json`);
    if (existsSync(file)) return file;
    const t = performance.now();
    const ca = new x509.X509Certificate(root.cert);
    const signingKey = await webcrypto.subtle.importKey('pkcs8', pemBlocks(root.key, 'PRIVATE KEY')[0]!, EC, false, [
      'sign',
    ]);
    const aki = await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
    const fleet = await many(FLEET_SIZE, async (i) => {
      const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomBytes(16).toString('hex').replace(/^./, '1'),
        subject: `O=mtls-gate bench, CN=device-${window}-${i}`,
        issuer: ca.subject,
        notBefore: new Date(Date.now() - 3600_000),
        notAfter,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        publicKey: keys.publicKey,
        signingKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
          aki,
        ],
      });
      return {
        cert: `${cert.toString('pem')}\n`,
        key: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
      };
    });
    writeFileSync(file, JSON.stringify(fleet));
    log(
      `minted fleet ${window} (${FLEET_SIZE} client certificates) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    return file;
  };
}
