// Random client chains for the differential test: every case lives in its own name space (its
// subjects carry O=c<id>), so the cases of a run can share one CAfile and one -untrusted file for
// `openssl verify` without any certificate of one case ever chaining to another case's.
import { OID } from './der.js';
import { type CertSpec, KU, type Minted, mint, type PoolKey, type Rdns } from './mint.js';

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChainCase {
  readonly id: number;
  /** `client.ca`: the anchors, as one PEM bundle. */
  readonly anchors: readonly Minted[];
  readonly leaf: Minted;
  /** What the client sends after its leaf, in sending order. */
  readonly sent: readonly Minted[];
  /** What was done to this case (for the summary and for explaining differences). */
  readonly tags: readonly string[];
  /** For cases with a twin intermediate: what the client sends without the twin. */
  readonly withoutTwin?: readonly Minted[];
}

const DAY = 86_400_000;

type Window = 'ok' | 'expired' | 'future' | 'edgeAfter' | 'edgeBefore' | 'inverted';

/**
 * Generates `count` cases from `seed`, at time `now` (ms, a whole second). Key material comes from
 * `keys`; everything else (shapes, dates, mutations) is a function of the seed alone, so the
 * verdicts of a run are reproducible even though the keys are new on every run.
 */
export function generateCases(
  count: number,
  seed: number,
  now: number,
  keys: { ec: PoolKey[]; rsa: PoolKey[] },
): ChainCase[] {
  const r = prng(seed);
  const chance = (p: number) => r() < p;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const between = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const key = (): PoolKey => (chance(0.8) ? pick(keys.ec) : pick(keys.rsa));
  const cases: ChainCase[] = [];

  for (let id = 0; id < count; id++) {
    const tags: string[] = [];
    const ns = `c${id}`;
    const nm = (cn: string): Rdns => [
      [OID.o, ns],
      [OID.cn, cn],
    ];
    const window = (level: string, okShare: number): { notBefore: number; notAfter: number } => {
      const x = r();
      let w: Window = 'ok';
      if (x >= okShare)
        w = pick(['expired', 'expired', 'future', 'future', 'edgeAfter', 'edgeBefore', 'inverted'] as const);
      if (w !== 'ok') tags.push(`${w}@${level}`);
      const back = between(1, 900) * DAY + between(0, 86_399) * 1000;
      const ahead = between(1, 900) * DAY + between(0, 86_399) * 1000;
      switch (w) {
        case 'ok':
          return { notBefore: now - back, notAfter: now + ahead };
        case 'expired':
          return { notBefore: now - back - 1000 * DAY, notAfter: now - between(1, 100 * 86_400) * 1000 };
        case 'future':
          return { notBefore: now + between(1, 100 * 86_400) * 1000, notAfter: now + ahead + 1000 * DAY };
        case 'edgeAfter':
          return { notBefore: now - back, notAfter: now };
        case 'edgeBefore':
          return { notBefore: now, notAfter: now + ahead };
        case 'inverted':
          return { notBefore: now + ahead, notAfter: now - back };
      }
    };

    // Levels: root (index 0), intermediates, leaf (last).
    const intermediates = pick([0, 1, 1, 2, 2, 3]);
    const names: Rdns[] = [
      nm('Root'),
      ...Array.from({ length: intermediates }, (_, j) => nm(`Int ${j + 1}`)),
      nm('Leaf'),
    ];
    const levelKeys = names.map(() => key());
    const specs: CertSpec[] = [];
    for (let i = 0; i < names.length; i++) {
      const isRoot = i === 0;
      const isLeaf = i === names.length - 1;
      const level = isRoot ? 'root' : isLeaf ? 'leaf' : `int${i}`;
      const spec: CertSpec = {
        subject: names[i]!,
        issuer: isRoot ? names[0]! : names[i - 1]!,
        key: levelKeys[i]!,
        signer: isRoot ? levelKeys[0]! : levelKeys[i - 1]!,
        ...window(level, isRoot ? 0.93 : 0.9),
      };
      const v1 = chance(isRoot ? 0.15 : isLeaf ? 0.2 : 0.05);
      if (v1) {
        spec.version = 1;
        tags.push(`v1@${level}`);
      } else if (!isLeaf) {
        const bc = r();
        if (bc < (isRoot ? 0.94 : 0.86)) {
          spec.basicConstraints = { ca: true, critical: chance(0.8) };
          if (chance(0.25)) {
            spec.basicConstraints.pathLen = between(0, 2);
            tags.push(`pathLen${spec.basicConstraints.pathLen}@${level}`);
          }
        } else if (bc < (isRoot ? 0.97 : 0.93)) {
          spec.basicConstraints = { ca: false, critical: chance(0.5) };
          tags.push(`caFalse@${level}`);
        } else tags.push(`noBasicConstraints@${level}`);
        const ku = r();
        if (ku < 0.72) spec.keyUsage = { mask: KU.keyCertSign | KU.cRLSign, critical: chance(0.8) };
        else if (ku < 0.8) {
          spec.keyUsage = { mask: KU.digitalSignature | KU.cRLSign, critical: true };
          tags.push(`noKeyCertSign@${level}`);
        }
        const eku = r();
        if (eku < 0.04) {
          spec.extKeyUsage = [OID.serverAuth];
          tags.push(`ekuServerOnly@${level}`);
        } else if (eku < 0.08) spec.extKeyUsage = [OID.clientAuth, OID.serverAuth];
        if (chance(0.7)) spec.ski = spec.key.keyId;
      } else {
        const bc = r();
        if (bc < 0.5) spec.basicConstraints = { ca: false, critical: chance(0.5) };
        else if (bc < 0.9) {
          // no basicConstraints
        } else if (bc < 0.97) {
          spec.basicConstraints = { ca: true, critical: true };
          tags.push('caTrue@leaf');
        } else {
          spec.basicConstraints = { ca: false, pathLen: 0 };
          tags.push('pathLenOnNonCa@leaf');
        }
        const ku = r();
        if (ku < 0.55) spec.keyUsage = { mask: KU.digitalSignature | KU.keyEncipherment, critical: true };
        else if (ku < 0.62) {
          spec.keyUsage = { mask: KU.keyEncipherment, critical: true };
          tags.push('kuNoDigitalSignature@leaf');
        } else if (ku < 0.67) {
          spec.keyUsage = { mask: KU.keyAgreement, critical: true };
          tags.push('kuKeyAgreement@leaf');
        }
        const eku = r();
        if (eku < 0.4) spec.extKeyUsage = pick([[OID.clientAuth], [OID.clientAuth, OID.serverAuth]]);
        else if (eku < 0.5) {
          spec.extKeyUsage = [OID.serverAuth];
          tags.push('ekuServerOnly@leaf');
        } else if (eku < 0.55) {
          spec.extKeyUsage = [OID.anyEku];
          tags.push('ekuAny@leaf');
        }
      }
      if (!isRoot && spec.version !== 1 && chance(0.7)) {
        if (chance(0.04)) {
          spec.aki = Buffer.alloc(20, 0xab);
          tags.push(`wrongAki@${level}`);
        } else spec.aki = spec.signer.keyId;
      }
      specs.push(spec);
    }

    // Mutations.
    if (chance(0.06)) {
      const i = chance(0.2) ? 0 : between(1, specs.length - 1);
      specs[i]!.damageSignature = true;
      tags.push(`badSignature@${i === 0 ? 'root' : i === specs.length - 1 ? 'leaf' : `int${i}`}`);
    }
    if (chance(0.04)) {
      const i = between(1, specs.length - 1);
      specs[i]!.issuer = nm('Nobody');
      tags.push(`wrongIssuerName@${i === specs.length - 1 ? 'leaf' : `int${i}`}`);
    }
    let forged = false;
    if (chance(0.05)) {
      // A root with the real root's name and another key: the client sends it, and it signed the chain.
      forged = true;
      tags.push('forgedRoot');
    }
    const realRoot = mint(specs[0]!);
    if (forged) {
      const fakeKey = levelKeys[0] === keys.ec[0] ? keys.ec[1]! : keys.ec[0]!;
      specs[0] = {
        ...specs[0]!,
        key: fakeKey,
        signer: fakeKey,
        ski: specs[0]!.ski ? fakeKey.keyId : undefined,
        damageSignature: false,
      };
      if (specs[1]) specs[1] = { ...specs[1], signer: fakeKey, aki: specs[1].aki ? fakeKey.keyId : undefined };
    }
    const certs = specs.map(mint);
    const root = forged ? certs[0]! : realRoot;

    let leaf = certs[certs.length - 1]!;
    let sent: Minted[] = certs.slice(1, -1).reverse();
    if (forged) sent.push(certs[0]!);

    if (intermediates > 0 && !forged && chance(0.08)) {
      const drop = between(0, sent.length - 1);
      sent.splice(drop, 1);
      tags.push('missingIntermediate');
    }
    if (chance(0.08)) {
      const k = key();
      const stray = nm('Stray CA');
      sent.splice(
        between(0, sent.length),
        0,
        mint({
          subject: stray,
          issuer: stray,
          key: k,
          signer: k,
          basicConstraints: { ca: true },
          ...window('stray', 1),
        }),
      );
      tags.push('extraUnrelatedCa');
    }
    let twinCert: Minted | undefined;
    if (intermediates > 0 && chance(0.06)) {
      // A twin of an intermediate: same name, another key, properly issued by the same parent
      // (or self-signed), sent before the real one.
      const j = between(1, intermediates);
      const k = key();
      const twin: CertSpec = { ...specs[j]!, key: k, ski: specs[j]!.ski ? k.keyId : undefined, damageSignature: false };
      if (chance(0.5)) {
        twin.issuer = twin.subject;
        twin.signer = k;
        twin.aki = undefined;
        tags.push('selfSignedTwinIntermediate');
      } else tags.push('twinIntermediate');
      twinCert = mint(twin);
      sent.unshift(twinCert);
    }
    if (!forged && chance(0.15)) {
      sent.push(root);
      tags.push('rootSent');
    }
    if (sent.length > 1 && chance(0.3)) {
      for (let i = sent.length - 1; i > 0; i--) {
        const j = between(0, i);
        [sent[i], sent[j]] = [sent[j]!, sent[i]!];
      }
      tags.push('shuffled');
    }

    let anchors: Minted[] = [root];
    if (forged) anchors = [realRoot];
    if (intermediates > 0 && !twinCert && !forged && chance(0.04)) {
      // client.ca holds an intermediate, not the root above it.
      anchors = [certs[between(1, intermediates)]!];
      tags.push('intermediateAnchor');
    } else if (chance(0.06)) {
      const k = key();
      const other = nm('Other Root');
      anchors = [
        mint({
          subject: other,
          issuer: other,
          key: k,
          signer: k,
          basicConstraints: { ca: true },
          ...window('otherRoot', 1),
        }),
      ];
      tags.push('otherTenant');
    } else if (chance(0.15)) {
      const k = key();
      const other = nm('Second Root');
      anchors.push(
        mint({
          subject: other,
          issuer: other,
          key: k,
          signer: k,
          basicConstraints: { ca: true },
          ...window('secondRoot', 1),
        }),
      );
      tags.push('secondAnchor');
    }
    if (chance(0.04)) {
      // The client presents a self-signed certificate: with a fresh name, or with the CA's own name.
      const asCa = chance(0.5);
      // Another key than the root's for the forgery; the root's own key for a few (a self-issued
      // certificate only the CA key holder can make).
      let k = key();
      if (asCa && chance(0.2)) {
        k = levelKeys[0]!;
        tags.push('selfIssuedWithCaKey');
      } else while (k === levelKeys[0]) k = key();
      const n = asCa ? nm('Root') : nm('Self');
      leaf = mint({
        subject: n,
        issuer: n,
        key: k,
        signer: k,
        basicConstraints: { ca: asCa },
        ...window('selfSigned', 1),
      });
      sent = [];
      twinCert = undefined;
      const keep = tags.includes('selfIssuedWithCaKey');
      tags.length = 0;
      tags.push(asCa ? 'selfSignedWithCaName' : 'selfSigned');
      if (keep) tags.push('selfIssuedWithCaKey');
    }
    cases.push({
      id,
      anchors,
      leaf,
      sent,
      tags,
      ...(twinCert ? { withoutTwin: sent.filter((x) => x !== twinCert) } : {}),
    });
  }
  return cases;
}
