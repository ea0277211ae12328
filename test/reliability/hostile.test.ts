// Hostile client certificates from the security review, over real sockets (test/reliability/lib/hostile.ts
// mints them; bench/hostile.ts measures their cost). No timing assertions: what is asserted is the
// work the guard does, counted, and the memory it keeps.
//
// Finding 2 (CPU): nine same-name CA certificates whose RSA keys have 3071-bit public exponents (one
// signature check with such a key costs 9-25 ms). When OpenSSL has refused the chain in the
// handshake, the guard must not verify it again in JavaScript (no verification, no signature
// check), and must still name the reason (bad_purpose for a serverAuth-only leaf). Appended to a
// valid chain, the same certificates must not stop it being accepted nor buy more signature checks
// than the path needs.
//
// Finding 3 (memory): a fresh leaf per connection with a 60 KB control-character subject must not
// leave anything behind (< 2 KB per connection after full GCs), and no failure detail may carry
// the subject (<= 200 characters).
//
// Signature checks are counted from outside the library by wrapping X509Certificate#verify, which
// is how the verifier checks signatures (src/verify/cert.ts signedBy). OpenSSL's own checks in the
// handshake are not counted (they cannot be seen from JavaScript).

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createTestPki, type TestPki } from '../../src/testing/index.js';
import { compileCaSet } from '../../src/verify/ca-set.js';
import { Verifier } from '../../src/verify/verifier.js';
import { createSslStore, request1, startGuarded, type TestServer } from '../helpers.js';
import { OID } from './lib/der.js';
import {
  type HostileChain,
  HUGE_SUBJECT_CHARS,
  hostileCas,
  hostileExponentChain,
  hugeSubjectLeaf,
  rdnsOfNodeName,
} from './lib/hostile.js';

const SNI = 'hostile.test';
/** Longest failure detail the guard may hand to onReject or keep in its cache. */
const MAX_DETAIL = 200;
/** Retained heap per finding-3 connection, after full GCs. */
const MAX_RETAINED_BYTES = 2048;

interface Seen {
  reason: string;
  detail: string;
  /** OpenSSL's verdict of the handshake, as Node reports it. */
  openssl: string | null;
}

let pki: TestPki;
let server: TestServer;
const seen: Seen[] = [];
/** Where onReject reports go: kept whole by default, only tallied while heap is being measured. */
let record = (x: Seen) => void seen.push(x);

let signatureChecks = 0;
const originalVerify = X509Certificate.prototype.verify;

before(async () => {
  X509Certificate.prototype.verify = function (this: X509Certificate, key) {
    signatureChecks++;
    return originalVerify.call(this, key);
  };
  pki = await createTestPki({ serverNames: [SNI], name: 'hostile test' });
  const store = createSslStore();
  store.set({ id: 'hostile', cert: pki.server.chain, key: pki.server.key, snis: [SNI], client: { ca: pki.root.cert } });
  server = await startGuarded(store, {
    onReject: (i) => {
      const socket = i.req.socket as TLSSocket;
      record({
        reason: i.reason,
        detail: i.detail,
        openssl: socket.authorizationError === undefined ? null : String(socket.authorizationError),
      });
    },
  });
});

after(async () => {
  X509Certificate.prototype.verify = originalVerify;
  await server?.close();
});

/** One HTTP/1.1 request on a fresh TLS connection presenting `client`. */
const send = (client: { cert: string; key: string; chain?: string }) =>
  request1({ port: server.port, servername: SNI, client, timeoutMs: 30_000 });

/** Runs `clients` through the guard; returns what the server did and what it cost in JS verification. */
async function run(clients: readonly { cert: string; key: string; chain?: string }[]) {
  const stats0 = server.store.verifierStats();
  const sig0 = signatureChecks;
  const from = seen.length;
  const statuses: number[] = [];
  for (const c of clients) statuses.push((await send(c)).status);
  const stats1 = server.store.verifierStats();
  return {
    statuses,
    verifications: stats1.verifications - stats0.verifications,
    signatureChecks: signatureChecks - sig0,
    rejects: seen.slice(from),
  };
}

const count = (xs: readonly string[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

describe('finding 2: CA certificates with 3071-bit RSA exponents', () => {
  test('decoy chain refused by OpenSSL (INVALID_PURPOSE): 400 and bad_purpose with no verification in JS', async (t) => {
    // Fresh chains: the same one again would be a cache hit and hide the cost.
    const chains = Array.from({ length: 4 }, () => hostileExponentChain());
    const r = await run(chains);
    t.diagnostic(
      `4 connections: ${r.verifications} JS verifications, ${r.signatureChecks} JS signature checks, reasons ${JSON.stringify(count(r.rejects.map((x) => x.reason)))}`,
    );
    assert.deepEqual(r.statuses, [400, 400, 400, 400]);
    // The premise: OpenSSL refused these chains in the handshake, with the code the review saw.
    assert.deepEqual(
      count(r.rejects.map((x) => String(x.openssl))),
      { INVALID_PURPOSE: 4 },
      'OpenSSL verdicts of the decoy chains',
    );
    assert.equal(
      r.verifications,
      0,
      `JS chain verifications after OpenSSL refused (${r.signatureChecks} signature checks for 4 connections)`,
    );
    assert.equal(r.signatureChecks, 0, 'JS signature checks after OpenSSL refused');
    // bad_purpose: what OpenSSL's code says and a cheap look at the leaf (serverAuth-only EKU) confirms.
    // (untrusted would be true as well: no chain of names from these certificates reaches client.ca.)
    // Named by structural checks of the leaf alone (its serverAuth-only extendedKeyUsage), read from
    // the TLS session: not even the chain is built.
    assert.deepEqual(count(r.rejects.map((x) => x.reason)), { bad_purpose: 4 }, 'reasons given to onReject');
    for (const x of r.rejects) assert.ok(x.detail.length <= MAX_DETAIL, `detail of ${x.detail.length} characters`);
  });

  test('chain as the review describes it (OpenSSL: CERT_SIGNATURE_FAILURE): 400 with no verification in JS', async () => {
    // Nine hostile CAs and a forged leaf signature: OpenSSL itself checks the leaf against the first
    // hostile key in the handshake (Node lets verification go on after each error, so the code is
    // the last one, the signature failure), and the guard's verifier never needed to run.
    const r = await run([hostileExponentChain({ decoy: false }), hostileExponentChain({ decoy: false })]);
    assert.deepEqual(r.statuses, [400, 400]);
    assert.deepEqual(count(r.rejects.map((x) => String(x.openssl))), { CERT_SIGNATURE_FAILURE: 2 }, 'OpenSSL verdicts');
    assert.equal(r.verifications, 0, 'JS chain verifications');
    assert.equal(r.signatureChecks, 0, 'JS signature checks');
    // bad_signature is OpenSSL's name for it; bad_purpose would name the leaf's own defect.
    for (const x of r.rejects)
      assert.ok(x.reason === 'bad_signature' || x.reason === 'bad_purpose', `reason ${x.reason}`);
  });

  test('variants (clientAuth leaf, CAs without keyCertSign): refused with no verification in JS', async () => {
    // [what, chain, OpenSSL's verdict, reasons that describe the chain truthfully]. chain_too_long
    // never does: no chain of these reaches a CA of client.ca at all.
    const variants: [string, HostileChain, string, string[]][] = [
      [
        'decoy, CAs without keyCertSign',
        hostileExponentChain({ keyCertSign: false }),
        'INVALID_PURPOSE',
        ['bad_purpose', 'not_a_ca', 'untrusted'],
      ],
      [
        'decoy, clientAuth leaf',
        hostileExponentChain({ leafEku: [OID.clientAuth] }),
        'SELF_SIGNED_CERT_IN_CHAIN',
        ['untrusted'],
      ],
      [
        'literal, CAs without keyCertSign',
        hostileExponentChain({ decoy: false, keyCertSign: false }),
        'CERT_SIGNATURE_FAILURE',
        ['bad_signature', 'not_a_ca', 'bad_purpose'],
      ],
      [
        'literal, clientAuth leaf',
        hostileExponentChain({ decoy: false, leafEku: [OID.clientAuth] }),
        'CERT_SIGNATURE_FAILURE',
        ['bad_signature'],
      ],
    ];
    for (const [what, chain, openssl, reasons] of variants) {
      const r = await run([chain]);
      assert.deepEqual(r.statuses, [400], what);
      assert.equal(r.rejects[0]?.openssl, openssl, `${what}: OpenSSL verdict`);
      assert.equal(r.verifications, 0, `${what}: JS chain verifications`);
      assert.equal(r.signatureChecks, 0, `${what}: JS signature checks`);
      assert.ok(
        reasons.includes(String(r.rejects[0]?.reason)),
        `${what}: reason ${r.rejects[0]?.reason}, expected one of ${reasons.join(', ')}`,
      );
    }
  });

  test('valid leaf + the 9 hostile CAs named as the client CA: accepted, one verification, at most depth + 2 signature checks', async () => {
    const rootName = rdnsOfNodeName(new X509Certificate(pki.root.cert).subject);
    const cas = hostileCas(rootName, 9);
    assert.equal(
      new X509Certificate(cas[0]!).subject,
      new X509Certificate(pki.root.cert).subject,
      'the hostile CAs carry the client CA name',
    );
    for (let i = 0; i < 3; i++) {
      const leaf = await pki.client('valid');
      const r = await run([{ cert: leaf.cert, key: leaf.key, chain: leaf.cert + hostileCas(rootName, 9).join('') }]);
      assert.deepEqual(r.statuses, [200], 'a valid chain with junk appended is still valid');
      assert.equal(r.verifications, 1, 'one JS verification for a fresh chain');
      assert.ok(r.signatureChecks <= 3, `${r.signatureChecks} JS signature checks (client.depth 1: at most 3)`);
    }
  });

  test('valid leaf via the intermediate, 8 hostile CAs named as the intermediate sent before it: accepted, at most depth + 2 signature checks', async () => {
    const intName = rdnsOfNodeName(new X509Certificate(pki.intermediate.cert).subject);
    const leaf = await pki.client('viaIntermediate');
    const r = await run([
      { cert: leaf.cert, key: leaf.key, chain: leaf.cert + hostileCas(intName, 8).join('') + pki.intermediate.cert },
    ]);
    assert.deepEqual(r.statuses, [200], 'OpenSSL skips the RSA candidates for an ECDSA signature; so must the verdict');
    assert.equal(r.verifications, 1);
    assert.ok(
      r.signatureChecks <= 3,
      `${r.signatureChecks} JS signature checks for a 2-step path (client.depth 1: at most 3)`,
    );
  });
});

describe('finding 3: 60 KB control-character subjects, a fresh leaf per connection', () => {
  test('the verifier names such a leaf in at most 200 characters', () => {
    // What gets cached, and what onReject receives when OpenSSL accepted but our verifier did not.
    const leaf = new X509Certificate(hugeSubjectLeaf('unit', { sendCa: false }).cert);
    assert.ok(
      leaf.subject.length > 3 * HUGE_SUBJECT_CHARS,
      `Node prints the subject in ${leaf.subject.length} characters`,
    );
    const v = new Verifier().verify(compileCaSet(pki.root.cert, 'client.ca'), 1, leaf);
    assert.equal(v.ok, false);
    if (!v.ok) assert.ok(v.detail.length <= MAX_DETAIL, `verdict detail of ${v.detail.length} characters`);
  });

  test(`retained heap per connection < ${MAX_RETAINED_BYTES} bytes after full GCs, detail <= ${MAX_DETAIL} characters`, async (t) => {
    v8.setFlagsFromString('--expose-gc');
    // Keep V8's code out of the figure: it drops the bytecode of functions idle over a few GCs and
    // compiles it again on next use, and its optimising tiers keep compiling hot functions for
    // thousands of connections (measured: ~650 B per connection, all of it code, after 100 warm-up
    // connections). From here on this process runs interpreted only; this is the file's last test.
    for (const flag of ['--no-flush-bytecode', '--no-opt', '--no-maglev', '--no-sparkplug'])
      v8.setFlagsFromString(flag);
    const gc = vm.runInNewContext('gc') as () => void;
    // Closing sockets and their timers let go within a few hundred ms; measured noise after 500 ms of
    // settling is a few hundred bytes per connection over 300 connections.
    const settle = async () => {
      await sleep(500);
      let last = Infinity;
      for (let i = 0; i < 8; i++) {
        gc();
        await sleep(10);
        const h = process.memoryUsage().heapUsed;
        if (Math.abs(h - last) < 8 * 1024) return h;
        last = h;
      }
      return process.memoryUsage().heapUsed;
    };
    const CONNECTIONS = 250;
    const ROUNDS = 2;
    const connect = async (prefix: string, n: number) => {
      // Four at a time; every leaf is new (fresh serial, so a fresh fingerprint and cache key).
      let i = 0;
      const statuses: number[] = [];
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (i < n) statuses.push((await send(hugeSubjectLeaf(`${prefix}-${i++}`))).status);
        }),
      );
      return statuses;
    };
    await connect('warm', 100);
    // Two rounds; the assertion takes the smaller figure, so one round disturbed by something else
    // in the process (a cache of Node's turning over) does not fail the test. A leak of the kind the
    // review found (about 180 KB per connection) shows in both.
    const perRound: number[] = [];
    // Tallies, not a list: what the test keeps must not count as what the guard keeps.
    const openssl = new Map<string, number>();
    let longest = 0;
    record = (x) => {
      openssl.set(String(x.openssl), (openssl.get(String(x.openssl)) ?? 0) + 1);
      longest = Math.max(longest, x.detail.length);
    };
    t.after(() => {
      record = (x) => void seen.push(x);
    });
    for (let round = 0; round < ROUNDS; round++) {
      openssl.clear();
      longest = 0;
      const stats0 = server.store.verifierStats();
      const before = await settle();
      const statuses = await connect(`measure-${round}`, CONNECTIONS);
      const afterHeap = await settle();
      const stats1 = server.store.verifierStats();
      const perConnection = (afterHeap - before) / CONNECTIONS;
      perRound.push(perConnection);
      t.diagnostic(
        `round ${round}: retained ${Math.round(perConnection)} B per connection over ${CONNECTIONS} (heapUsed ${before} -> ${afterHeap}); ` +
          `verifications +${stats1.verifications - stats0.verifications}; cache ${stats0.cached} -> ${stats1.cached} entries`,
      );

      assert.deepEqual(count(statuses.map(String)), { 400: CONNECTIONS });
      // The premise: OpenSSL's verdict is one the old decide.ts re-verified (and cached) in JS.
      assert.deepEqual(Object.fromEntries(openssl), { INVALID_PURPOSE: CONNECTIONS }, 'OpenSSL verdicts');
      assert.ok(longest <= MAX_DETAIL, `onReject detail of ${longest} characters`);
    }
    const retained = Math.min(...perRound);
    assert.ok(
      retained < MAX_RETAINED_BYTES,
      `${perRound.map((x) => Math.round(x)).join(' and ')} bytes retained per connection (${ROUNDS} rounds of ${CONNECTIONS} connections, verifier stats ${JSON.stringify(server.store.verifierStats())})`,
    );
  });
});
