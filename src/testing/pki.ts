import { createHash, KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { type X509, x509 } from '../internal/x509.js';

/** Key algorithm of a minted certificate: ECDSA P-256 (fast) or RSA 2048. */
export type KeyType = 'ec' | 'rsa';

/** A minted certificate with its key, as PEM strings ready for Node's TLS options. */
export interface TestCert {
  /** The certificate alone. */
  readonly cert: string;
  /** PKCS#8 private key. */
  readonly key: string;
  /** The certificate followed by the intermediates above it (what a client or server sends). */
  readonly chain: string;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint256: string;
  /**
   * The subject in Node's `X509Certificate.subject` form: one RDN per line, most general first
   * (`O=Example\nCN=alice`). The guard's `ClientIdentity.subject` is RFC 2253 (`CN=alice,O=Example`,
   * most specific first): compare fingerprints, or reverse the lines and join them with commas.
   */
  readonly subject: string;
}

/** A minted CA that can issue further certificates. */
export interface TestCa extends TestCert {
  issue(options: IssueOptions): Promise<TestCert>;
  /** A subordinate CA (an intermediate). */
  createCa(options: Omit<IssueOptions, 'ca'> & { pathLen?: number }): Promise<TestCa>;
}

/** Options for one minted certificate. Defaults make a valid client-auth leaf valid for a day. */
export interface IssueOptions {
  /** Distinguished name, e.g. `CN=alice, O=Example`. */
  subject: string;
  keyType?: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  /** Serial number in hex. Default random. */
  serial?: string;
  /** basicConstraints: true = CA, false = explicit CA:FALSE, undefined = leaf default (CA:FALSE). */
  ca?: boolean;
  pathLen?: number;
  /** keyUsage bits (KeyUsageFlags), or null to omit the extension. */
  keyUsage?: number | null;
  /** extendedKeyUsage OIDs, or null to omit. Default for leaves: clientAuth and serverAuth. */
  extKeyUsage?: string[] | null;
  san?: { dns?: string[]; email?: string[]; ip?: string[]; uri?: string[] };
  /** Extra raw extensions, e.g. an unknown critical one: `{ oid: '1.2.3.4', critical: true }`. */
  extraExtensions?: { oid: string; critical: boolean; value?: Uint8Array }[];
}

/** The client-certificate shapes the guard's tests (and yours) need. */
export type ClientShape =
  | 'valid'
  | 'rsa'
  | 'ec'
  | 'viaIntermediate'
  | 'expired'
  | 'notYetValid'
  | 'otherCa'
  | 'tooDeep'
  | 'nonCaIssuer'
  | 'serverAuthOnly'
  | 'selfSigned'
  | 'unknownCriticalExtension';

/** Options of {@link createTestPki}. */
export interface TestPkiOptions {
  /** Key type of CAs and certificates unless a call says otherwise. Default `ec`. */
  keyType?: KeyType;
  /** Names of the server certificate (DNS SANs; the first is also its CN). Default `['localhost']`. */
  serverNames?: string[];
  /** Prefix of every subject's CN, to tell PKIs apart. Default `mtls-gate test`. */
  name?: string;
}

/** A complete PKI minted in-process. */
export interface TestPki {
  /** Root CA that signs the server certificate, the intermediate and the `valid` clients. */
  readonly root: TestCa;
  /** Intermediate CA under `root` (pathLen 0). */
  readonly intermediate: TestCa;
  /** An unrelated root: clients it signs are `otherCa` (another tenant). */
  readonly otherRoot: TestCa;
  /** Server certificate for `serverNames`, signed by `root`. */
  readonly server: TestCert;
  /** A client certificate of the given shape (a new key and certificate on every call). */
  client(shape?: ClientShape, options?: { subject?: string; keyType?: KeyType }): Promise<TestCert>;
  /** Another self-signed root CA. */
  createRoot(options?: { subject?: string; keyType?: KeyType; notBefore?: Date; notAfter?: Date }): Promise<TestCa>;
}

const subtle = webcrypto.subtle;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface KeyPair {
  keys: CryptoKeyPair;
  type: KeyType;
}

async function generate(type: KeyType): Promise<KeyPair> {
  const alg =
    type === 'ec'
      ? { name: 'ECDSA', namedCurve: 'P-256' }
      : { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  return { keys: (await subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair, type };
}

function signingAlgorithm(type: KeyType): Algorithm | EcdsaParams {
  return type === 'ec'
    ? ({ name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams)
    : ({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm);
}

function keyPem(pair: KeyPair): string {
  return KeyObject.from(pair.keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string;
}

async function extensionsFor(
  opts: IssueOptions,
  publicKey: CryptoKey,
  issuer: X509.X509Certificate | undefined,
): Promise<X509.Extension[]> {
  const isCa = opts.ca === true;
  const exts: X509.Extension[] = [new x509.BasicConstraintsExtension(isCa, isCa ? opts.pathLen : undefined, true)];
  const ku =
    opts.keyUsage === undefined
      ? isCa
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : opts.keyUsage;
  if (ku !== null) exts.push(new x509.KeyUsagesExtension(ku, true));
  const eku =
    opts.extKeyUsage === undefined
      ? isCa
        ? null
        : [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]
      : opts.extKeyUsage;
  if (eku !== null) exts.push(new x509.ExtendedKeyUsageExtension(eku as X509.ExtendedKeyUsageType[], false));
  if (opts.san) {
    const names: X509.JsonGeneralNames = [];
    for (const v of opts.san.dns ?? []) names.push({ type: 'dns', value: v });
    for (const v of opts.san.email ?? []) names.push({ type: 'email', value: v });
    for (const v of opts.san.ip ?? []) names.push({ type: 'ip', value: v });
    for (const v of opts.san.uri ?? []) names.push({ type: 'url', value: v });
    exts.push(new x509.SubjectAlternativeNameExtension(names, false));
  }
  exts.push(await x509.SubjectKeyIdentifierExtension.create(publicKey));
  if (issuer) exts.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey));
  for (const e of opts.extraExtensions ?? [])
    exts.push(new x509.Extension(e.oid, e.critical, e.value ?? new Uint8Array([5, 0])));
  return exts;
}

function toTestCert(cert: X509.X509Certificate, pair: KeyPair, chainAbove: string): TestCert {
  const pem = `${cert.toString('pem')}\n`;
  return Object.freeze({
    cert: pem,
    key: keyPem(pair),
    chain: pem + chainAbove,
    fingerprint256: createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex'),
    subject: new X509Certificate(pem).subject,
  });
}

function makeCa(cert: X509.X509Certificate, pair: KeyPair, chainAbove: string): TestCa {
  const base = toTestCert(cert, pair, chainAbove);
  // What a child sends above itself: this CA, plus what sits above it, minus the self-signed root
  // (clients normally do not send the root).
  const above = cert.subject === cert.issuer ? '' : base.chain;
  const issue = async (opts: IssueOptions): Promise<TestCert> => {
    const childPair = await generate(opts.keyType ?? pair.type);
    const now = Date.now();
    const child = await x509.X509CertificateGenerator.create({
      serialNumber: opts.serial ?? randomSerial(),
      subject: opts.subject,
      issuer: cert.subject,
      notBefore: opts.notBefore ?? new Date(now - HOUR),
      notAfter: opts.notAfter ?? new Date(now + DAY),
      signingAlgorithm: signingAlgorithm(pair.type),
      publicKey: childPair.keys.publicKey,
      signingKey: pair.keys.privateKey,
      extensions: await extensionsFor(opts, childPair.keys.publicKey, cert),
    });
    const result = toTestCert(child, childPair, above);
    if (opts.ca) return makeCa(child, childPair, above);
    raw.set(result, { cert: child, pair: childPair });
    return result;
  };
  return Object.freeze({
    ...base,
    issue,
    async createCa(opts: Omit<IssueOptions, 'ca'> & { pathLen?: number }) {
      return (await issue({ ...opts, ca: true })) as TestCa;
    },
  });
}

/** The generator objects behind minted leaves, for shapes that sign with a leaf. */
const raw = new WeakMap<TestCert, { cert: X509.X509Certificate; pair: KeyPair }>();

function randomSerial(): string {
  // Positive, 16 bytes, no leading zero byte.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return Buffer.from(bytes).toString('hex');
}

async function createRoot(options: {
  subject: string;
  keyType: KeyType;
  notBefore?: Date;
  notAfter?: Date;
}): Promise<TestCa> {
  const pair = await generate(options.keyType);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: options.subject,
    notBefore: options.notBefore ?? new Date(now - DAY),
    notAfter: options.notAfter ?? new Date(now + 30 * DAY),
    signingAlgorithm: signingAlgorithm(options.keyType),
    keys: pair.keys,
    extensions: await extensionsFor({ subject: options.subject, ca: true }, pair.keys.publicKey, undefined),
  });
  return makeCa(cert, pair, '');
}

/**
 * Mints a PKI in-process (no openssl, no files): root, intermediate, another tenant's root, a
 * server certificate, and client certificates in every shape a guard must get right.
 *
 * @example
 * ```ts
 * import { createSslStore } from 'mtls-gate';
 * import { createTestPki } from 'mtls-gate/testing';
 *
 * const pki = await createTestPki({ serverNames: ['api.test'] });
 * const store = createSslStore();
 * store.set({ id: 'api', cert: pki.server.chain, key: pki.server.key, client: { ca: pki.root.cert } });
 * const alice = await pki.client('valid');
 * ```
 */
export async function createTestPki(options: TestPkiOptions = {}): Promise<TestPki> {
  const keyType = options.keyType ?? 'ec';
  const name = options.name ?? 'mtls-gate test';
  const serverNames = options.serverNames ?? ['localhost'];
  const root = await createRoot({ subject: `O=mtls-gate, CN=${name} Root`, keyType });
  const otherRoot = await createRoot({ subject: `O=mtls-gate, CN=${name} Other Root`, keyType });
  const intermediate = await root.createCa({ subject: `O=mtls-gate, CN=${name} Intermediate`, pathLen: 0 });
  const server = await root.issue({
    subject: `O=mtls-gate, CN=${serverNames[0]}`,
    san: { dns: serverNames },
    extKeyUsage: [x509.ExtendedKeyUsage.serverAuth],
  });
  let n = 0;
  const client = async (
    shape: ClientShape = 'valid',
    opts: { subject?: string; keyType?: KeyType } = {},
  ): Promise<TestCert> => {
    const subject = opts.subject ?? `O=mtls-gate, CN=client-${shape}-${++n}`;
    const kt = opts.keyType;
    const now = Date.now();
    switch (shape) {
      case 'valid':
        return root.issue({ subject, keyType: kt, san: { email: [`client${n}@example.test`] } });
      case 'rsa':
        return root.issue({ subject, keyType: 'rsa' });
      case 'ec':
        return root.issue({ subject, keyType: 'ec' });
      case 'viaIntermediate':
        return intermediate.issue({ subject, keyType: kt });
      case 'expired':
        return root.issue({ subject, keyType: kt, notBefore: new Date(now - 10 * DAY), notAfter: new Date(now - DAY) });
      case 'notYetValid':
        return root.issue({ subject, keyType: kt, notBefore: new Date(now + DAY), notAfter: new Date(now + 10 * DAY) });
      case 'otherCa':
        return otherRoot.issue({ subject, keyType: kt });
      case 'tooDeep': {
        const second = await intermediate.createCa({ subject: `O=mtls-gate, CN=${name} Second Intermediate ${n}` });
        return second.issue({ subject, keyType: kt });
      }
      case 'nonCaIssuer': {
        // A leaf (CA:FALSE) that signs another certificate: its chain must be refused.
        const leaf = await root.issue({ subject: `O=mtls-gate, CN=${name} Not A CA ${n}`, keyType: kt });
        const { cert, pair } = raw.get(leaf)!;
        const c = await makeCa(cert, pair, '').issue({ subject, keyType: kt });
        return Object.freeze({ ...c, chain: c.cert + leaf.cert });
      }
      case 'serverAuthOnly':
        return root.issue({ subject, keyType: kt, extKeyUsage: [x509.ExtendedKeyUsage.serverAuth] });
      case 'selfSigned': {
        const self = await createRoot({ subject, keyType: kt ?? keyType });
        return self;
      }
      case 'unknownCriticalExtension':
        return root.issue({ subject, keyType: kt, extraExtensions: [{ oid: '1.3.6.1.4.1.99999.1', critical: true }] });
    }
  };
  return Object.freeze({
    root,
    intermediate,
    otherRoot,
    server,
    client,
    createRoot: (o: { subject?: string; keyType?: KeyType; notBefore?: Date; notAfter?: Date } = {}) =>
      createRoot({
        subject: o.subject ?? `O=mtls-gate, CN=${name} Root ${++n}`,
        keyType: o.keyType ?? keyType,
        ...(o.notBefore ? { notBefore: o.notBefore } : {}),
        ...(o.notAfter ? { notAfter: o.notAfter } : {}),
      }),
  });
}
