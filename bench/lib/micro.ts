// Micro figures, in-process through the source modules: the first verification of a client chain
// (2 and 3 levels, RSA 2048 and P-256; a CA set compiled once, as at configuration time, the
// client's chain parsed and verified from scratch), what a connection with an already verified
// chain pays (the verifier's cache), and what a new leaf under known issuers costs.
//   node --import tsx bench/lib/micro.ts [--quick]   -> one JSON line { name: µs }
import { X509Certificate } from 'node:crypto';
import { createTestPki, type KeyType } from '../../src/testing/index.js';
import { compileCaSet } from '../../src/verify/ca-set.js';
import { parseCert } from '../../src/verify/cert.js';
import { verifyChain } from '../../src/verify/chain.js';
import { Verifier } from '../../src/verify/verifier.js';

const quick = process.argv.includes('--quick');
const n = quick ? 12 : 40;
// Every round parses the certificates again and uses a new verifier, so each sample is a first
// verification; the first round (cold code) is left out except in --quick, and the median of the
// rest is reported, which keeps one slow moment of a shared machine out of the figure.
const rounds = quick ? 1 : 6;
const kept = <T>(perRound: T[][]): T[] => (perRound.length > 1 ? perRound.slice(1) : perRound).flat();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out: Record<string, number> = {};

for (const keyType of ['rsa', 'ec'] as KeyType[]) {
  const label = keyType === 'rsa' ? 'RSA 2048' : 'P-256';
  const p = await createTestPki({ keyType });
  const ca = compileCaSet(p.root.cert, 'ca');
  for (const [levels, shape] of [
    ['2-level', 'valid'],
    ['3-level', 'viaIntermediate'],
  ] as const) {
    // RSA key generation is slow: the leaves share the shape's key type, minted up front.
    const certs = await Promise.all(Array.from({ length: n }, () => p.client(shape, { keyType })));
    const cold: number[][] = [];
    for (let round = 0; round < rounds; round++) {
      const samples: number[] = [];
      for (const c of certs) {
        const ders = c.chain.split(/(?=-----BEGIN CERTIFICATE-----)/).map((b) => new X509Certificate(b));
        const t = performance.now();
        const v = verifyChain(
          ca,
          ders.map((d) => parseCert(d)),
          1,
          Date.now(),
        );
        samples.push(performance.now() - t);
        if (!v.ok) throw new Error(`verification failed: ${JSON.stringify(v)}`);
      }
      cold.push(rounds > 1 ? samples : samples.slice(2));
    }
    out[`first verification, ${label} ${levels} (parse + verify, µs)`] = median(kept(cold)) * 1000;

    // Through the verifier as the guard uses it: a fleet of new leaves under issuers it has seen.
    // Node's X509Certificate for a peer has issuerCertificate; for a parsed PEM it has not, so the
    // verifier sees the leaf alone: fine for 2 levels (root in the CA set); 3-level chains are
    // verified above with the intermediate sent.
    if (levels === '2-level') {
      const fresh: number[][] = [];
      let v = new Verifier();
      let leaves: X509Certificate[] = [];
      for (let round = 0; round < rounds; round++) {
        v = new Verifier();
        leaves = certs.map((c) => new X509Certificate(c.chain.split(/(?=-----BEGIN CERTIFICATE-----)/)[0]!));
        v.verify(ca, 1, leaves[0]!);
        const samples: number[] = [];
        for (const leaf of leaves.slice(1)) {
          const t = performance.now();
          const r = v.verify(ca, 1, leaf);
          samples.push(performance.now() - t);
          if (!r.ok) throw new Error('verifier refused a valid leaf');
        }
        fresh.push(samples);
      }
      out[`new leaf through the verifier (known issuer), ${label} (µs)`] = median(kept(fresh)) * 1000;
      const leaf = leaves[0]!;
      const reps = 20_000;
      const t = performance.now();
      for (let i = 0; i < reps; i++) v.verify(ca, 1, leaf);
      out[`cached verification (same chain again), ${label} (µs)`] = ((performance.now() - t) / reps) * 1000;
    }
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
