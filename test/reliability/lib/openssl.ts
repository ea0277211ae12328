// `openssl verify` over many leaves in one process: one CAfile and one -untrusted file shared by
// every case (their names never chain across cases), one invocation per depth.
import { execFile } from 'node:child_process';

/** What `openssl verify` said about one leaf file: OK, or the error codes it reported in order. */
export interface OpenSslVerdict {
  ok: boolean;
  errors: number[];
}

export function opensslVerify(args: string[], files: string[]): Promise<Map<string, OpenSslVerdict>> {
  return new Promise((resolve, reject) => {
    execFile('openssl', ['verify', ...args, ...files], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      // openssl exits 2 when any leaf fails: that is an answer, not an error.
      if (err && typeof (err as { code?: unknown }).code !== 'number') return reject(err);
      const out = new Map<string, OpenSslVerdict>();
      for (const line of stdout.split('\n')) {
        const m = /^(.*): OK$/.exec(line);
        if (m) out.set(m[1]!, { ok: true, errors: [] });
      }
      let pending: number[] = [];
      for (const line of stderr.split('\n')) {
        const e = /^error (\d+) at \d+ depth lookup:/.exec(line);
        if (e) {
          pending.push(Number(e[1]));
          continue;
        }
        const f = /^error (.*): verification failed$/.exec(line);
        if (f) {
          out.set(f[1]!, { ok: false, errors: pending });
          pending = [];
        }
      }
      for (const f of files)
        if (!out.has(f)) return reject(new Error(`openssl gave no verdict for ${f}:\n${stderr.slice(0, 2000)}`));
      resolve(out);
    });
  });
}

/** OpenSSL's X509_V_ERR_* numbers (include/openssl/x509_vfy.h, 3.0) as mtls-gate reject reasons. */
export const OPENSSL_REASON: Record<number, string> = {
  2: 'untrusted', // UNABLE_TO_GET_ISSUER_CERT
  7: 'bad_signature', // CERT_SIGNATURE_FAILURE
  9: 'not_yet_valid', // CERT_NOT_YET_VALID
  10: 'expired', // CERT_HAS_EXPIRED
  18: 'untrusted', // DEPTH_ZERO_SELF_SIGNED_CERT
  19: 'untrusted', // SELF_SIGNED_CERT_IN_CHAIN
  20: 'untrusted', // UNABLE_TO_GET_ISSUER_CERT_LOCALLY
  21: 'untrusted', // UNABLE_TO_VERIFY_LEAF_SIGNATURE
  22: 'chain_too_long', // CERT_CHAIN_TOO_LONG
  24: 'not_a_ca', // INVALID_CA
  25: 'chain_too_long', // PATH_LENGTH_EXCEEDED
  26: 'bad_purpose', // INVALID_PURPOSE
  32: 'not_a_ca', // KEYUSAGE_NO_CERTSIGN
  34: 'bad_extension', // UNHANDLED_CRITICAL_EXTENSION
};

export const OPENSSL_NAME: Record<number, string> = {
  2: 'UNABLE_TO_GET_ISSUER_CERT',
  7: 'CERT_SIGNATURE_FAILURE',
  9: 'CERT_NOT_YET_VALID',
  10: 'CERT_HAS_EXPIRED',
  13: 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  14: 'ERROR_IN_CERT_NOT_AFTER_FIELD',
  18: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  19: 'SELF_SIGNED_CERT_IN_CHAIN',
  20: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  21: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  22: 'CERT_CHAIN_TOO_LONG',
  24: 'INVALID_CA',
  25: 'PATH_LENGTH_EXCEEDED',
  26: 'INVALID_PURPOSE',
  30: 'AKID_SKID_MISMATCH',
  32: 'KEYUSAGE_NO_CERTSIGN',
  34: 'UNHANDLED_CRITICAL_EXTENSION',
  41: 'INVALID_NON_CA',
  79: 'INVALID_EXTENSION',
};
