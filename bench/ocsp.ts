import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compileCaSet } from '../src/verify/ca-set.js';
import { OcspClient } from '../src/verify/ocsp.js';
import { checkRevocation, type RevocationPolicy } from '../src/verify/revocation.js';
import { Verifier } from '../src/verify/verifier.js';
import { opensslCa } from '../test/verify/openssl-ca.js';
import { startOcspResponder } from '../test/verify/openssl-ocsp.js';

const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-bench-ocsp-'));
const pki = opensslCa(dir);
pki.ca('ca');
pki.issue('ca', 'leaf', 'leaf');
pki.issue('ca', 'signer', 'signer');
const responder = await startOcspResponder(dir);
const url = responder.url;

const caSet = compileCaSet(readFileSync(join(dir, 'ca/cert.pem'), 'utf8'), 'ca');
const v = new Verifier(100, 1 << 20).verify(
  caSet,
  0,
  new X509Certificate(readFileSync(join(dir, 'leaf.pem'))),
  Date.now(),
);
if (!v.ok) throw new Error(v.detail);
const client = new OcspClient();
const policy: RevocationPolicy = { mode: 'strict', scope: 'leaf', crls: new Map(), ocsp: { responder: url, client } };
const first = checkRevocation(policy, v.chain, Date.now());
await first.pending;
const now = Date.now();
const N = 200_000;
let t = performance.now();
for (let i = 0; i < N; i++) if (checkRevocation(policy, v.chain, now).status !== 'good') throw new Error('not good');
const cachedNs = ((performance.now() - t) * 1e6) / N;
console.log(`per new connection, OCSP answer cached: ${(cachedNs / 1000).toFixed(2)} µs (the whole revocation check)`);

const fresh: number[] = [];
for (let i = 0; i < 50; i++) {
  const c = new OcspClient();
  t = performance.now();
  const a = await c.status(
    Buffer.from(new X509Certificate(readFileSync(join(dir, 'leaf.pem'))).raw),
    caSet.anchors[0]!,
    url,
  );
  fresh.push(performance.now() - t);
  if (a.status !== 'good') throw new Error(a.detail);
}
fresh.sort((a, b) => a - b);
console.log(
  `a fresh fetch from openssl ocsp on loopback (50): p50 ${fresh[25]!.toFixed(1)} ms, max ${fresh[49]!.toFixed(1)} ms (request, answer, signature check)`,
);
responder.stop();
rmSync(dir, { recursive: true, force: true });
