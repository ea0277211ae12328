// A small `openssl ca` PKI for tests that need revocation data made by openssl itself: CAs with an
// index, leaves issued with named extension sections (`leaf`, `signer` for an OCSP responder, and the
// caller's), revocations and CRLs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface OpensslCa {
  readonly dir: string;
  openssl(...args: string[]): string;
  read(file: string): string;
  /** A self-signed CA `name` (files under `name/`); `sections`: extra config sections (`[name]` lines included). */
  ca(name: string, sections?: string): void;
  /** A P-256 leaf `cn.pem` / `cn.key` issued by `ca` with the extension section `ext`. */
  issue(ca: string, cn: string, ext: string): void;
  revoke(ca: string, cn: string): void;
  gencrl(ca: string, out: string, ...extra: string[]): void;
}

export function opensslCa(dir: string): OpensslCa {
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const key = (out: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out);
  return {
    dir,
    openssl,
    read: (f) => readFileSync(join(dir, f), 'utf8'),
    ca(name, sections = '') {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'index.txt'), '');
      writeFileSync(join(dir, name, 'serial'), '1000\n');
      writeFileSync(join(dir, name, 'crlnumber'), '01\n');
      writeFileSync(
        join(dir, `${name}.cnf`),
        [
          '[ca]',
          'default_ca = this',
          '[this]',
          `dir = ${name}`,
          'database = $dir/index.txt',
          'new_certs_dir = $dir',
          'serial = $dir/serial',
          'crlnumber = $dir/crlnumber',
          'certificate = $dir/cert.pem',
          'private_key = $dir/key.pem',
          'default_md = sha256',
          'default_days = 2',
          'default_crl_days = 1',
          'policy = any',
          'unique_subject = no',
          '[any]',
          'commonName = supplied',
          '[req]',
          'distinguished_name = dn',
          '[dn]',
          '[v3_ca]',
          'basicConstraints = critical,CA:TRUE',
          'keyUsage = critical,keyCertSign,cRLSign',
          '[leaf]',
          'basicConstraints = CA:FALSE',
          'keyUsage = critical,digitalSignature',
          'extendedKeyUsage = clientAuth',
          // A delegated OCSP responder's certificate (openssl ocsp -rsigner).
          '[signer]',
          'basicConstraints = CA:FALSE',
          'keyUsage = critical,digitalSignature',
          'extendedKeyUsage = OCSPSigning',
          sections,
        ].join('\n'),
      );
      key(`${name}/key.pem`);
      openssl(
        'req',
        '-x509',
        '-new',
        '-key',
        `${name}/key.pem`,
        '-subj',
        `/CN=${name}`,
        '-days',
        '2',
        '-out',
        `${name}/cert.pem`,
        '-config',
        `${name}.cnf`,
        '-extensions',
        'v3_ca',
      );
    },
    issue(ca, cn, ext) {
      key(`${cn}.key`);
      openssl('req', '-new', '-key', `${cn}.key`, '-subj', `/CN=${cn}`, '-out', `${cn}.csr`, '-config', `${ca}.cnf`);
      openssl(
        'ca',
        '-batch',
        '-notext',
        '-config',
        `${ca}.cnf`,
        '-in',
        `${cn}.csr`,
        '-out',
        `${cn}.pem`,
        '-extensions',
        ext,
      );
    },
    revoke: (ca, cn) => void openssl('ca', '-config', `${ca}.cnf`, '-revoke', `${cn}.pem`),
    gencrl: (ca, out, ...extra) => void openssl('ca', '-config', `${ca}.cnf`, '-gencrl', '-out', out, ...extra),
  };
}
