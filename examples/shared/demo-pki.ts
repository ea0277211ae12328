// Certificates for the adapter examples: a client CA, a server certificate for the example's host
// and one client certificate, minted in-process and written where curl can read them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestPki, type TestPki } from 'mtls-gate/testing';

export interface DemoPki {
  pki: TestPki;
  /** Files for curl: ca.crt (trust the server), client.crt and client.key. */
  dir: string;
}

export async function writeDemoPki(dir: string, host: string): Promise<DemoPki> {
  const pki = await createTestPki({ serverNames: [host], name: host });
  const client = await pki.client('valid', { subject: 'O=example, CN=demo client' });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ca.crt'), pki.root.cert);
  writeFileSync(join(dir, 'client.crt'), client.chain);
  writeFileSync(join(dir, 'client.key'), client.key, { mode: 0o600 });
  return { pki, dir };
}

/** The lines an example prints once it listens; tests wait for "listening on https://127.0.0.1:PORT". */
export function banner(name: string, host: string, port: number, dir: string, path: string): string {
  const curl = `curl https://${host}:${port}${path} --resolve '${host}:${port}:127.0.0.1' --cacert ${dir}/ca.crt`;
  return `${name} listening on https://127.0.0.1:${port}

Without a client certificate (HTTP 400):
  ${curl} -i

With the client certificate:
  ${curl} --cert ${dir}/client.crt --key ${dir}/client.key
`;
}
