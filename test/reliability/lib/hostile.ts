// Hostile client certificates from the security review, minted with node:crypto and the DER writer
// (der.ts / mint.ts), for test/reliability/hostile.test.ts and bench/hostile.ts.
//
// Finding 2 (CPU): a leaf with serverAuth-only extendedKeyUsage, "issued" by a name shared by nine
// self-issued CA certificates, whose RSA keys have a 3071-bit public exponent (3072-bit modulus, so
// e < n and OpenSSL's RSA code accepts the key: its 64-bit exponent cap applies only above 3072
// modulus bits). Every signature check against such a key is a full-size modular exponentiation,
// about 9-10 ms on the bench machine. Nobody can sign with those keys (they are not RSA keys at
// all: n is a random odd number), so a verifier trying every same-name candidate pays for each.
// A signature is only worth an exponentiation if it has the modulus' length (384 bytes) and is
// below n: the leaf's and the decoy's signatures are RSA-3072 ones (a 256-byte RSA-2048 signature,
// or an ECDSA one, fails at once, before any arithmetic).
//
// Measured on Node 20.20 / OpenSSL 3.0.19: Node's verify callback lets OpenSSL go on after every
// error, so `authorizationError` is the LAST error. With nine hostile CAs only, OpenSSL builds
// [leaf, first hostile CA], checks the leaf's signature with that key itself (one expensive check
// in the handshake) and reports CERT_SIGNATURE_FAILURE, a code decide.ts never re-verified. The
// review's INVALID_PURPOSE (an "ambiguous" code, for which the old guard ran its own verifier) is
// what a decoy gives: a genuine same-name CA sent first, which OpenSSL picks (find_issuer takes
// the first time-valid candidate and looks at names, key identifiers and the signature algorithm,
// never at the signature) and whose signatures verify. See HostileChainOptions.decoy.
//
// Finding 3 (memory): a leaf whose subject is 60 KB of control characters (Node escapes each one as
// three characters in X509Certificate.subject, so the printed name is 180 KB), with a fresh serial,
// and so a fresh fingerprint, on every call.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { bits, int, nul, OID, oid, pem, seq } from './der.js';
import { type CertSpec, KU, type PoolKey, poolKey, type Rdns, signTbs, tbsOf } from './mint.js';

const DAY = 86_400_000;
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';

/** Same-name CA certificates in a finding-2 chain (leaf + 9 = 10, the verifier's MAX_CHAIN_CERTS). */
export const HOSTILE_CA_COUNT = 9;
/** Modulus size of the hostile keys, and the size of every RSA signature they would check. */
export const HOSTILE_MODULUS_BITS = 3072;
export const HOSTILE_EXPONENT_BITS = 3071;

/** A random odd integer of exactly `bitCount` bits (top bit set). */
function randomOdd(bitCount: number): bigint {
  const bytes = randomBytes(Math.ceil(bitCount / 8));
  const extra = bytes.length * 8 - bitCount;
  bytes[0]! &= 0xff >> extra;
  bytes[0]! |= 0x80 >> extra;
  bytes[bytes.length - 1]! |= 1;
  return BigInt(`0x${bytes.toString('hex')}`);
}

/**
 * A SubjectPublicKeyInfo for rsaEncryption holding RSAPublicKey { n, e } with a random odd
 * `HOSTILE_MODULUS_BITS`-bit n and a random odd `HOSTILE_EXPONENT_BITS`-bit e (< n).
 */
export function hostileRsaSpki(): { spki: Buffer; publicKey: KeyObject; n: bigint; e: bigint } {
  const n = randomOdd(HOSTILE_MODULUS_BITS);
  const e = randomOdd(HOSTILE_EXPONENT_BITS);
  const spki = seq(seq(oid(OID_RSA_ENCRYPTION), nul()), bits(seq(int(n), int(e))));
  const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  return { spki, publicKey, n, e };
}

/**
 * A PoolKey-shaped holder for a public key nobody has the private half of. Only `spki` and `keyId`
 * are read by tbsOf when it is the certified key; `privateKey` is a placeholder that is never used
 * (a hostile key is never a `signer`).
 */
function publicOnly(spki: Buffer, publicKey: KeyObject, placeholder: PoolKey): PoolKey {
  return Object.freeze({
    type: 'rsa' as const,
    privateKey: placeholder.privateKey,
    publicKey,
    spki,
    keyId: createHash('sha1').update(spki).digest(),
    keyPem: '',
  });
}

/** Keys shared by every call of this module (generation is the cost; signing is cheap). */
interface SharedKeys {
  /** Signs the hostile CA certificates (an ordinary key: their own keys cannot sign). */
  caSigner: PoolKey;
  /** The key of every leaf: a normal key, so the TLS client can prove possession in CertificateVerify. */
  leafKey: PoolKey;
  /** Key of the finding-3 "unknown CA". */
  unknownCa: PoolKey;
}
let shared: SharedKeys | undefined;
function sharedKeys(): SharedKeys {
  return (shared ??= { caSigner: poolKey('rsa'), leafKey: poolKey('ec'), unknownCa: poolKey('ec') });
}
/**
 * RSA-3072 key of the decoy CA (made on first use, about 1.6 s): its signatures are 384 bytes, the size the hostile
 * keys check.
 */
let decoyKey: PoolKey | undefined;
function rsa3072(): PoolKey {
  if (!decoyKey) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: HOSTILE_MODULUS_BITS });
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    decoyKey = Object.freeze({
      type: 'rsa' as const,
      privateKey,
      publicKey,
      spki,
      keyId: createHash('sha1').update(spki).digest(),
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    });
  }
  return decoyKey;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = randomBytes(1)[0]! % (i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Wraps a TBSCertificate with sha256WithRSAEncryption and a given signature value. */
function withSignature(tbs: Buffer, signature: Buffer): Buffer {
  return seq(tbs, seq(oid(OID.rsaSha256), nul()), bits(signature));
}

/**
 * An RSA signature value that is the right size for a 3072-bit key (OpenSSL refuses a signature
 * whose length differs from the modulus' before any arithmetic) and smaller than every hostile
 * modulus (top bit clear; the moduli have theirs set), so each check runs the full exponentiation
 * and only then finds the padding wrong.
 */
function forgedRsaSignature(): Buffer {
  const sig = randomBytes(HOSTILE_MODULUS_BITS / 8);
  sig[0] = 0x01 + (sig[0]! % 0x7f);
  return sig;
}

const NODE_NAME_TYPES: Record<string, string> = { CN: OID.cn, O: OID.o, OU: OID.ou };

/**
 * The Name of a Node multi-line subject/issuer string (`O=x\nCN=y`, encoding order), for names made
 * of CN / O / OU with plain values. Re-encoded as UTF8String: OpenSSL compares canonical forms and
 * Node's printed form is the same, so the copy names the same CA for both verifiers.
 */
export function rdnsOfNodeName(printed: string): Rdns {
  return printed.split('\n').map((line) => {
    const at = line.indexOf('=');
    const type = NODE_NAME_TYPES[line.slice(0, at)];
    if (at < 0 || !type || /\\/.test(line))
      throw new Error(`rdnsOfNodeName: unsupported name line ${JSON.stringify(line)}`);
    return [type, line.slice(at + 1)] as const;
  });
}

/**
 * `count` self-issued CA certificates named `caName` (cA true, keyCertSign unless `keyCertSign`
 * is false, no SKI/AKI: each is a candidate issuer of anything naming `caName`, themselves
 * included), each holding a different hostile RSA key, signed by an ordinary RSA-2048 key. PEM.
 */
export function hostileCas(caName: Rdns, count: number, options: { keyCertSign?: boolean } = {}): string[] {
  const { caSigner } = sharedKeys();
  const now = Date.now();
  const keyUsage = options.keyCertSign === false ? KU.digitalSignature : KU.keyCertSign | KU.cRLSign;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const h = hostileRsaSpki();
    const spec: CertSpec = {
      serial: randomBytes(16),
      subject: caName,
      issuer: caName,
      notBefore: now - DAY,
      notAfter: now + 30 * DAY,
      key: publicOnly(h.spki, h.publicKey, caSigner),
      signer: caSigner,
      basicConstraints: { ca: true, critical: true },
      keyUsage: { mask: keyUsage, critical: true },
    };
    out.push(signTbs(tbsOf(spec), caSigner).pem);
  }
  return out;
}

export interface HostileChainOptions {
  /**
   * true (default): the first of the nine same-name CAs is a genuine self-signed RSA-3072 CA that
   * really signs the leaf, the other eight hold hostile keys. OpenSSL takes the first time-valid
   * candidate it is sent (find_issuer; it checks names, key identifiers and the signature
   * algorithm, not the signature), so the chain it builds is [leaf, decoy]: every signature on it
   * verifies and its only complaint is the leaf's purpose, INVALID_PURPOSE, one of decide.ts's
   * "ambiguous" codes. Our verifier then runs and tries every same-name candidate, for the leaf
   * and for the decoy: 16 hostile-key checks.
   *
   * false: the chain the brief describes literally, nine hostile CAs and a leaf with a forged
   * signature. OpenSSL then checks the leaf's signature with the first hostile key itself (one
   * expensive check in the handshake) and reports CERT_SIGNATURE_FAILURE, which is not ambiguous:
   * our verifier does not run.
   */
  decoy?: boolean;
  /** extendedKeyUsage of the leaf. Default serverAuth only. `null` leaves the extension out. */
  leafEku?: readonly string[] | null;
  /** Hostile CAs with keyCertSign (default true); false gives them keyUsage digitalSignature only. */
  keyCertSign?: boolean;
  /** Name shared by the CAs (and the leaf's issuer). Default a fresh name per call. */
  caName?: Rdns;
}

export interface HostileChain {
  /** The leaf alone (PEM). */
  cert: string;
  /** PKCS#8 key of the leaf (a normal EC P-256 key: the client proves possession in CertificateVerify). */
  key: string;
  /** The leaf followed by the CAs (PEM bundle, what the client sends). */
  chain: string;
  /** Number of certificates in `chain`. */
  certificates: number;
}

let chainCounter = 0;

/**
 * Finding 2: a leaf with serverAuth-only extendedKeyUsage (normal EC key) and nine same-name
 * self-issued CA certificates with 3071-bit public exponents (see {@link HostileChainOptions.decoy}
 * for the genuine first one), the hostile ones in shuffled order; ten certificates, the most the
 * verifier takes (MAX_CHAIN_CERTS).
 */
export function hostileExponentChain(options: HostileChainOptions = {}): HostileChain {
  const { leafKey } = sharedKeys();
  const decoy = options.decoy ?? true;
  const now = Date.now();
  const n = ++chainCounter;
  const caName: Rdns = options.caName ?? [
    [OID.o, 'hostile'],
    [OID.cn, `Hostile Exponent CA ${process.pid}-${n}-${randomBytes(4).toString('hex')}`],
  ];
  const cas = shuffle(
    hostileCas(
      caName,
      decoy ? HOSTILE_CA_COUNT - 1 : HOSTILE_CA_COUNT,
      options.keyCertSign === undefined ? {} : { keyCertSign: options.keyCertSign },
    ),
  );
  const leafEku = options.leafEku === undefined ? [OID.serverAuth] : options.leafEku;
  const leafSpec = (signer: PoolKey): CertSpec => ({
    serial: randomBytes(16),
    subject: [
      [OID.o, 'hostile'],
      [OID.cn, `hostile-exponent-leaf-${process.pid}-${n}`],
    ],
    issuer: caName,
    notBefore: now - DAY,
    notAfter: now + 30 * DAY,
    key: leafKey,
    // tbsOf takes the signature algorithm from the signer's type: RSA gives sha256WithRSAEncryption,
    // the algorithm the hostile keys are tried with (OpenSSL skips a candidate whose key type does
    // not match the signature algorithm).
    signer,
    basicConstraints: { ca: false },
    keyUsage: { mask: KU.digitalSignature, critical: true },
    ...(leafEku ? { extKeyUsage: leafEku } : {}),
  });
  let leaf: string;
  if (decoy) {
    const g = rsa3072();
    const genuine = signTbs(
      tbsOf({
        serial: randomBytes(16),
        subject: caName,
        issuer: caName,
        notBefore: now - DAY,
        notAfter: now + 30 * DAY,
        key: g,
        signer: g,
        basicConstraints: { ca: true, critical: true },
        keyUsage: { mask: KU.keyCertSign | KU.cRLSign, critical: true },
      }),
      g,
    ).pem;
    leaf = signTbs(tbsOf(leafSpec(g)), g).pem;
    cas.unshift(genuine);
  } else {
    leaf = pem(withSignature(tbsOf(leafSpec(sharedKeys().caSigner)), forgedRsaSignature()));
  }
  return { cert: leaf, key: leafKey.keyPem, chain: leaf + cas.join(''), certificates: 1 + cas.length };
}

/** Length of the finding-3 subject, in control characters (one byte each in UTF-8). */
export const HUGE_SUBJECT_CHARS = 60_000;

export interface HugeSubjectOptions {
  /** extendedKeyUsage of the leaf; default serverAuth only (see below). `null` leaves it out. */
  eku?: readonly string[] | null;
  /** Send the unknown CA after the leaf (default true). */
  sendCa?: boolean;
}

const unknownCaName: Rdns = [
  [OID.o, 'hostile'],
  [OID.cn, 'Unknown Hostile CA'],
];
let unknownCaPem: string | undefined;
let hugeSubject: Rdns | undefined;
const processNonce = randomBytes(8).toString('hex');

/**
 * Finding 3: a leaf whose subject is one UTF8String CN of 60,000 U+0001 characters, issued by an
 * unknown self-signed CA that the client sends along. The serial comes from `serialSeed` and a
 * per-process nonce: every seed gives a fresh certificate and fingerprint. One key for every leaf.
 *
 * Why this shape (measured on Node 20.20 / OpenSSL 3.0.19): Node's verify callback lets OpenSSL go
 * on after every error, so the code the guard sees is the last one. With the CA sent, OpenSSL's
 * chain [leaf, CA] has good signatures and its last complaint is the leaf's serverAuth-only
 * purpose, INVALID_PURPOSE, an "ambiguous" code for which the guard runs its own verifier, whose
 * cached verdict names the subject. Without the CA (`sendCa: false`) the last code is
 * UNABLE_TO_VERIFY_LEAF_SIGNATURE; without the EKU it is SELF_SIGNED_CERT_IN_CHAIN: neither runs
 * our verifier. A self-signed leaf would carry the 60 KB name twice, and a 120 KB Certificate
 * message exceeds OpenSSL's 100 KB max_cert_list (the handshake fails with an alert).
 */
export function hugeSubjectLeaf(
  serialSeed: number | bigint | string,
  options: HugeSubjectOptions = {},
): { cert: string; key: string; chain: string } {
  const { leafKey, unknownCa } = sharedKeys();
  const now = Date.now();
  hugeSubject ??= [[OID.cn, '\u0001'.repeat(HUGE_SUBJECT_CHARS)]];
  unknownCaPem ??= signTbs(
    tbsOf({
      serial: randomBytes(16),
      subject: unknownCaName,
      issuer: unknownCaName,
      notBefore: now - DAY,
      notAfter: now + 365 * DAY,
      key: unknownCa,
      signer: unknownCa,
      basicConstraints: { ca: true, critical: true },
      keyUsage: { mask: KU.keyCertSign | KU.cRLSign, critical: true },
    }),
    unknownCa,
  ).pem;
  const serial = createHash('sha256').update(`${processNonce}:${serialSeed}`).digest().subarray(0, 16);
  serial[0]! &= 0x7f;
  serial[0]! |= 0x40;
  const eku = options.eku === undefined ? [OID.serverAuth] : options.eku;
  const spec: CertSpec = {
    serial,
    subject: hugeSubject,
    issuer: unknownCaName,
    notBefore: now - DAY,
    notAfter: now + 30 * DAY,
    key: leafKey,
    signer: unknownCa,
    basicConstraints: { ca: false },
    keyUsage: { mask: KU.digitalSignature, critical: true },
    ...(eku ? { extKeyUsage: eku } : {}),
  };
  const cert = signTbs(tbsOf(spec), unknownCa).pem;
  return { cert, key: leafKey.keyPem, chain: options.sendCa === false ? cert : cert + unknownCaPem };
}
