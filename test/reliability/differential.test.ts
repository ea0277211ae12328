// Differential verification: mtls-gate's chain verifier against `openssl verify` on random chains.
//
// Each case is a client chain minted at random (1 to 4 issuing levels, RSA and EC keys, v1 and v3,
// random validity windows at every level, basicConstraints/keyUsage/EKU present or absent,
// pathLen, missing or extra intermediates, wrong issuer names, damaged signatures, forged roots,
// other tenants' roots). Our verdict is `verifyChain` over the CA set compiled exactly as
// `store.set` compiles `client.ca`; OpenSSL's is
//
//   openssl verify -attime T -purpose sslclient -verify_depth N -CAfile ca.pem -untrusted sent.pem leaf.pem
//
// (`-purpose sslclient` is what a TLS server checking a client applies, nginx's `ssl_verify_depth N`
// is `-verify_depth N`, and -attime pins the clock so the run is reproducible). Every verdict must
// agree, except the differences docs/reliability.md explains (see `explained` below).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MAX_DEPTH } from '../../src/ssl/object.js';
import { type CaSet, compileCaSet } from '../../src/verify/ca-set.js';
import { OID_CLIENT_AUTH, type ParsedCert, parseCert } from '../../src/verify/cert.js';
import { verifyChain } from '../../src/verify/chain.js';
import { type ChainCase, generateCases } from './lib/chains.js';
import { OID as DN } from './lib/der.js';
import { keyPool, mint } from './lib/mint.js';
import { OPENSSL_NAME, OPENSSL_REASON, type OpenSslVerdict, opensslVerify } from './lib/openssl.js';

const SEED = Number(process.env.MTLS_DIFF_SEED ?? 20261126);
const CASES = Number(process.env.MTLS_DIFF_CASES ?? 1200);
const DEPTHS = [0, 1, 2, 4];
/** 2030-01-01T00:00:00Z: a whole second, so notBefore/notAfter can equal it exactly. */
const NOW_S = 1_893_456_000;
const NOW = NOW_S * 1000;

type Ours = { ok: true } | { ok: false; reason: string; detail: string };

function ours(caSet: CaSet, c: ChainCase, depth: number, now = NOW): Ours {
  let sent: ParsedCert[];
  try {
    // As the Verifier does: an unparsable certificate from the client is `untrusted`.
    sent = [c.leaf, ...c.sent].map((m) => parseCert(m.der));
  } catch (err) {
    return { ok: false, reason: 'untrusted', detail: `unparsable: ${(err as Error).message}` };
  }
  const v = verifyChain(caSet, sent, depth, now);
  return v.ok ? { ok: true } : { ok: false, reason: v.reason, detail: v.detail };
}

/**
 * The differences docs/reliability.md explains ("Differential verification"), each checked, not
 * assumed: returns the explanation's name, or undefined for a difference nobody has explained (a
 * bug, in mtls-gate or in this test). `second` is OpenSSL's verdict on the case's control variant:
 * the chain without its twin intermediate, or the same chain with -partial_chain.
 */
function explained(
  c: ChainCase,
  caSet: CaSet,
  depth: number,
  mine: Ours,
  theirs: OpenSslVerdict,
  second: OpenSslVerdict | undefined,
): string | undefined {
  if (!mine.ok || theirs.ok) return undefined;
  const reasons = new Set<string>();
  let errors = theirs.errors;
  // Path building: we try every candidate issuer the client sent (by signature, RFC 4158); OpenSSL
  // takes the first one whose name matches and fails there. Checked: without the twin OpenSSL
  // accepts, or fails only for reasons explained below.
  if (c.withoutTwin && second) {
    reasons.add('path building around a same-name twin');
    errors = second.errors;
  }
  // Partial chains: an intermediate in client.ca anchors for us. Checked: OpenSSL with
  // -partial_chain (X509_V_FLAG_PARTIAL_CHAIN) accepts, or fails only for reasons explained below.
  if (c.tags.includes('intermediateAnchor') && second) {
    reasons.add('intermediate in client.ca anchors (as -partial_chain)');
    errors = second.errors;
  }
  // A self-signed leaf whose key is an anchor's own key (only the CA key holder can make one): its
  // issuer name and signature chain to the anchor, which is a valid path (RFC 5280 6.1); OpenSSL
  // never looks for an issuer above a self-signed leaf that is not itself trusted.
  if (errors.length === 1 && errors[0] === 18) {
    const leaf = new X509Certificate(c.leaf.der);
    if (caSet.anchors.some((a) => a.subject === leaf.subject && a.publicKey.equals(leaf.publicKey)))
      return 'self-issued leaf signed with the anchor key';
  }
  for (const e of errors) {
    if (e === 10 && c.tags.some((t) => t.startsWith('edgeAfter@'))) {
      // RFC 5280 4.1.2.5: valid "from notBefore through notAfter, inclusive"; OpenSSL expires a
      // certificate at its notAfter second. Checked: one second later we say expired too.
      const later = ours(caSet, c, depth, NOW + 1000);
      if (!later.ok && later.reason === 'expired') {
        reasons.add('notAfter is inclusive (RFC 5280 4.1.2.5)');
        continue;
      }
    }
    // Known bug, regression test 'an anchor whose extendedKeyUsage lacks clientAuth verifies no client' below:
    // OpenSSL's sslclient purpose applies to the trust anchor's EKU too; verifyChain skips the anchor.
    if (
      e === 26 &&
      caSet.anchors.some((a) => a.extKeyUsage !== undefined && !a.extKeyUsage.includes(OID_CLIENT_AUTH))
    ) {
      reasons.add('BUG: anchor extendedKeyUsage without clientAuth not checked');
      continue;
    }
    return undefined;
  }
  return [...reasons].join(' + ') || undefined;
}

test(`differential: ${CASES} random chains, verifyChain vs openssl verify at depths ${DEPTHS.join(', ')}`, {
  timeout: 120_000,
}, async () => {
  assert.ok(DEPTHS.every((d) => d <= MAX_DEPTH));
  const t0 = performance.now();
  const keys = keyPool(16, 3);
  const tKeys = performance.now();
  const cases = generateCases(CASES, SEED, NOW, keys);
  const tMint = performance.now();

  // Compile each case's client.ca as store.set would; a refused bundle is a config error, not a verdict.
  const compiled = new Map<number, CaSet>();
  const refusedConfig: { id: number; code: string; tags: readonly string[] }[] = [];
  for (const c of cases) {
    try {
      compiled.set(c.id, compileCaSet(c.anchors.map((a) => a.pem).join(''), 'client.ca'));
    } catch (err) {
      refusedConfig.push({ id: c.id, code: (err as { code: string }).code, tags: c.tags });
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'mtls-diff-'));
  try {
    const live = cases.filter((c) => compiled.has(c.id));
    writeFileSync(join(dir, 'ca.pem'), live.flatMap((c) => c.anchors.map((a) => a.pem)).join(''));
    writeFileSync(join(dir, 'sent.pem'), live.flatMap((c) => c.sent.map((s) => s.pem)).join(''));
    const files = live.map((c) => {
      const f = join(dir, `leaf-${c.id}.pem`);
      writeFileSync(f, c.leaf.pem);
      return f;
    });
    const base = [
      '-attime',
      String(NOW_S),
      '-purpose',
      'sslclient',
      '-CAfile',
      join(dir, 'ca.pem'),
      '-untrusted',
      join(dir, 'sent.pem'),
    ];
    // Two openssl processes at a time (the machine has two cores).
    const theirs = new Map<number, Map<string, OpenSslVerdict>>();
    for (let i = 0; i < DEPTHS.length; i += 2) {
      const batch = DEPTHS.slice(i, i + 2);
      const results = await Promise.all(batch.map((d) => opensslVerify([...base, '-verify_depth', String(d)], files)));
      for (const [j, d] of batch.entries()) theirs.set(d, results[j]!);
    }
    // Control variants, one more openssl run per depth: twin cases without their twin, and
    // intermediate-anchor cases with -partial_chain (both are roots-only otherwise, so
    // -partial_chain changes nothing for the twin cases).
    const controls = live.filter((c) => c.withoutTwin || c.tags.includes('intermediateAnchor'));
    writeFileSync(join(dir, 'ca2.pem'), controls.flatMap((c) => c.anchors.map((a) => a.pem)).join(''));
    writeFileSync(
      join(dir, 'sent2.pem'),
      controls.flatMap((c) => (c.withoutTwin ?? c.sent).map((s) => s.pem)).join('') || live[0]!.leaf.pem,
    );
    const controlFiles = controls.map((c) => join(dir, `leaf-${c.id}.pem`));
    const second = new Map<number, Map<string, OpenSslVerdict>>();
    if (controls.length > 0) {
      const base2 = [
        '-attime',
        String(NOW_S),
        '-purpose',
        'sslclient',
        '-partial_chain',
        '-CAfile',
        join(dir, 'ca2.pem'),
        '-untrusted',
        join(dir, 'sent2.pem'),
      ];
      for (let i = 0; i < DEPTHS.length; i += 2) {
        const batch = DEPTHS.slice(i, i + 2);
        const results = await Promise.all(
          batch.map((d) => opensslVerify([...base2, '-verify_depth', String(d)], controlFiles)),
        );
        for (const [j, d] of batch.entries()) second.set(d, results[j]!);
      }
    }
    const tOpenssl = performance.now();

    let compared = 0;
    let agree = 0;
    let reasonAgree = 0;
    const byVerdict = new Map<string, number>();
    const explainedCount = new Map<string, number>();
    const unexplained: string[] = [];
    const reasonMismatch = new Map<string, number>();
    let oursMs = 0;
    for (const c of live) {
      const caSet = compiled.get(c.id)!;
      for (const depth of DEPTHS) {
        const s = performance.now();
        const mine = ours(caSet, c, depth);
        oursMs += performance.now() - s;
        const v = theirs.get(depth)!.get(join(dir, `leaf-${c.id}.pem`))!;
        compared++;
        const key = mine.ok ? 'ok' : mine.reason;
        byVerdict.set(key, (byVerdict.get(key) ?? 0) + 1);
        if (mine.ok === v.ok) {
          agree++;
          if (mine.ok || v.errors.some((e) => OPENSSL_REASON[e] === mine.reason)) reasonAgree++;
          else {
            const k = `${mine.reason} vs ${v.errors.map((e) => OPENSSL_NAME[e] ?? e).join('+')}`;
            reasonMismatch.set(k, (reasonMismatch.get(k) ?? 0) + 1);
          }
          continue;
        }
        const why = explained(c, caSet, depth, mine, v, second.get(depth)?.get(join(dir, `leaf-${c.id}.pem`)));
        if (why) {
          explainedCount.set(why, (explainedCount.get(why) ?? 0) + 1);
          continue;
        }
        unexplained.push(
          `case ${c.id} depth ${depth} [${c.tags.join(' ')}]: ours ${mine.ok ? 'ok' : `${mine.reason} (${mine.detail})`}, openssl ${v.ok ? 'OK' : v.errors.map((e) => OPENSSL_NAME[e] ?? e).join('+')}`,
        );
      }
    }
    const tEnd = performance.now();

    const pct = (n: number) => ((100 * n) / compared).toFixed(2);
    const lines = [
      `differential verification, seed ${SEED}: ${cases.length} chains, ${refusedConfig.length} refused at configuration (client.ca not a CA), ${live.length} x ${DEPTHS.length} depths = ${compared} verdicts`,
      `  accept/reject agree: ${agree} (${pct(agree)} %); explained differences: ${[...explainedCount].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; unexplained: ${unexplained.length}`,
      `  same reason among OpenSSL's errors: ${reasonAgree} of ${agree} agreeing verdicts`,
      `  our verdicts: ${[...byVerdict]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
      `  reason differences (both reject): ${
        [...reasonMismatch]
          .sort((a, b) => b[1] - a[1])
          .map(([k, n]) => `${k} ${n}`)
          .join('; ') || 'none'
      }`,
      `  refused configurations: ${[...new Set(refusedConfig.map((r) => r.code))].join(', ') || 'none'}`,
      `  time: keys ${(tKeys - t0).toFixed(0)} ms, minting ${(tMint - tKeys).toFixed(0)} ms, openssl ${(tOpenssl - tMint).toFixed(0)} ms, ours ${oursMs.toFixed(0)} ms, total ${(tEnd - t0).toFixed(0)} ms`,
    ];
    console.log(lines.join('\n'));
    if (unexplained.length) console.log(unexplained.slice(0, 60).join('\n'));
    assert.ok(cases.length >= 1000);
    assert.deepEqual(unexplained, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('regressions found by the differential run', () => {
  // Found by the differential run (seed 20261126): OpenSSL's sslclient purpose (check_purpose_ssl_client
  // with require_ca) applies the extendedKeyUsage check to every CA on the path, the trust anchor
  // included; verifyChain checks it on intermediates only. In the guard the handshake's own OpenSSL
  // verdict (INVALID_PURPOSE) still refuses such clients, so this is not a bypass; verifyChain alone
  // disagrees with its stated reference.
  test('an anchor whose extendedKeyUsage lacks clientAuth verifies no client (OpenSSL sslclient purpose)', () => {
    const [rootKey, leafKey] = [keyPool(2, 0).ec[0]!, keyPool(1, 0).ec[0]!];
    const rootName = [
      [DN.o, 'eku'],
      [DN.cn, 'Server-only Root'],
    ] as const;
    const root = mint({
      subject: rootName,
      issuer: rootName,
      key: rootKey,
      signer: rootKey,
      notBefore: NOW - 86_400_000,
      notAfter: NOW + 86_400_000,
      basicConstraints: { ca: true, critical: true },
      extKeyUsage: [DN.serverAuth],
    });
    const leaf = mint({
      subject: [[DN.cn, 'client']],
      issuer: rootName,
      key: leafKey,
      signer: rootKey,
      notBefore: NOW - 86_400_000,
      notAfter: NOW + 86_400_000,
    });
    const dir = mkdtempSync(join(tmpdir(), 'mtls-eku-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), root.pem);
      writeFileSync(join(dir, 'leaf.pem'), leaf.pem);
      const openssl = spawnSync(
        'openssl',
        [
          'verify',
          '-attime',
          String(NOW_S),
          '-purpose',
          'sslclient',
          '-CAfile',
          join(dir, 'ca.pem'),
          join(dir, 'leaf.pem'),
        ],
        { encoding: 'utf8' },
      );
      assert.match(openssl.stderr, /error 26 at 1 depth lookup: unsuitable certificate purpose/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const v = verifyChain(compileCaSet(root.pem, 'client.ca'), [parseCert(leaf.der)], 1, NOW);
    assert.equal(v.ok ? 'ok' : v.reason, 'bad_purpose');
  });
});
