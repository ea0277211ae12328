// The guide's certificates for the mtls-auth-app example (gateway.yaml holds the rest: the SSL
// object with the client CA, the mtls-auth-app service with prefix /v1, host mtls.httpbin.org,
// HTTPS only, route json = GET /json exact, prefix stripped).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki } from '../../src/testing/index.js';

/**
 * Writes ca.crt, server.crt/key and client.crt/key into `dir` (the guide's file names) unless ca.crt, server.crt and
 * server.key exist.
 */
export async function ensureCertificates(dir: string, host: string): Promise<boolean> {
  if (['ca.crt', 'server.crt', 'server.key'].every((f) => existsSync(join(dir, f)))) return false;
  mkdirSync(dir, { recursive: true });
  // The guide's shape (an RSA CA "OU=web, CN=private_ca", server CN = the host, client OU=web),
  // minted in-process; v3 certificates valid for a year.
  const pki = await createTestPki({ keyType: 'rsa', serverNames: [host], name: 'mtls-auth-app' });
  const year = new Date(Date.now() + 365 * 86400_000);
  const ca = await pki.createRoot({ subject: 'OU=web, CN=private_ca', keyType: 'rsa', notAfter: year });
  const server = await ca.issue({ subject: `CN=${host}`, san: { dns: [host] }, notAfter: year });
  const client = await ca.issue({ subject: 'OU=web, CN=mtls-auth-app client', notAfter: year });
  writeFileSync(join(dir, 'ca.crt'), ca.cert);
  writeFileSync(join(dir, 'server.crt'), server.cert);
  writeFileSync(join(dir, 'server.key'), server.key, { mode: 0o600 });
  writeFileSync(join(dir, 'client.crt'), client.cert);
  writeFileSync(join(dir, 'client.key'), client.key, { mode: 0o600 });
  return true;
}
