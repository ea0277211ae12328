// Self-signed certificates and their keys in the forms openssl writes them, for the tests of the
// store's validation (ssl/material.ts against node:crypto).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslPair {
  readonly kind: string;
  readonly cert: string;
  readonly key: string;
}

/** `genpkey` / `ecparam` / `genrsa` arguments per kind; the key file is `key.pem`. */
const KINDS: Record<string, string[][]> = {
  'ec-p256-pkcs8': [['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'key.pem']],
  'ec-p384-pkcs8': [['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', 'key.pem']],
  'ec-p521-pkcs8': [['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521', '-out', 'key.pem']],
  // `ecparam -genkey` writes an EC PARAMETERS block before the SEC1 key.
  'ec-p256-sec1-params': [['ecparam', '-name', 'prime256v1', '-genkey', '-out', 'key.pem']],
  'ec-p256-sec1': [['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'key.pem']],
  'ec-k256-sec1': [['ecparam', '-name', 'secp256k1', '-genkey', '-noout', '-out', 'key.pem']],
  // A SEC1 key without its public point: node:crypto has to compute it.
  'ec-p256-sec1-nopub': [
    ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'full.pem'],
    ['ec', '-in', 'full.pem', '-no_public', '-out', 'key.pem'],
  ],
  // Certificates with a compressed point.
  'ec-p256-compressed': [
    ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'full.pem'],
    ['ec', '-in', 'full.pem', '-conv_form', 'compressed', '-out', 'key.pem'],
  ],
  'rsa-2048-pkcs8': [['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'key.pem']],
  'rsa-2048-pkcs1': [
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'p8.pem'],
    ['rsa', '-in', 'p8.pem', '-traditional', '-out', 'key.pem'],
  ],
  'rsa-512': [['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:512', '-out', 'key.pem']],
  'rsa-pss': [['genpkey', '-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'key.pem']],
  ed25519: [['genpkey', '-algorithm', 'ed25519', '-out', 'key.pem']],
  ed448: [['genpkey', '-algorithm', 'ed448', '-out', 'key.pem']],
};

export const PAIR_KINDS = Object.keys(KINDS);

/** A self-signed certificate (CN and DNS SAN `name`) and its key, of `kind`, made by the openssl command. */
export function opensslPair(kind: string, name = 'pair.test'): OpensslPair {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-pair-'));
  try {
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const step of KINDS[kind]!) run(step);
    run([
      'req',
      '-x509',
      '-key',
      'key.pem',
      '-out',
      'cert.pem',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ]);
    return { kind, cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
