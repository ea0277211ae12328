/**
 * Per-route mTLS policy compiled: the mode, the CAs a route accepts among its SSL object's, and an
 * allow-list (SAN matchers by type, subjects, certificate and public-key pins). Evaluated once per
 * connection and policy (the result is kept with the connection's verdict), never per request.
 */
import { hash } from 'node:crypto';
import { isIP } from 'node:net';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { compileLinearPattern, type LinearPattern } from '../internal/regex.js';
import { describe, pemText } from '../internal/validate.js';
import { pemBlocks } from '../verify/cert.js';
import type { VerifiedChain } from '../verify/identity.js';
import { ipAddressText, readSans, type SanValues, spki256 } from './san.js';
import type { MtlsPolicyInput } from './schema.js';

export type PolicyMode = 'required' | 'optional' | 'off';

/** A compiled `mtls` policy. Immutable; identity matters (per-connection results are keyed by it). */
export interface CompiledPolicy {
  readonly mode: PolicyMode;
  /** SHA-256 (hex) of the CAs accepted here, when the policy narrows `client.ca`. */
  readonly anchors: ReadonlySet<string> | undefined;
  /** Whether a verified chain is on the allow-list (undefined: no allow-list). */
  readonly allow: ((chain: VerifiedChain, subject: () => string) => boolean) | undefined;
  /** The answer to an allow-list refusal. */
  readonly status: number;
  /**
   * Whether the allow-list names clients (SANs, subjects) or only pins them (metrics: Envoy's fail_verify_san /
   * fail_verify_cert_hash).
   */
  readonly allowList: 'names' | 'pins' | undefined;
  /** The policy as configured, for views and errors. */
  readonly source: Readonly<{ mode: PolicyMode; ca: number; allow: boolean; status: number }>;
}

const invalid = (field: string, msg: string) => new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, msg);

type Test = (v: string) => boolean;
type Kind = 'exact' | 'prefix' | 'suffix' | 'contains' | 'regex';

function valueTest(kind: Kind, want: string, field: string, fold: boolean): Test {
  const w = fold ? want.toLowerCase() : want;
  const f = (v: string) => (fold ? v.toLowerCase() : v);
  switch (kind) {
    case 'exact':
      return (v) => f(v) === w;
    case 'prefix':
      return (v) => f(v).startsWith(w);
    case 'suffix':
      return (v) => f(v).endsWith(w);
    case 'contains':
      return (v) => f(v).includes(w);
    case 'regex': {
      let re: LinearPattern;
      try {
        // The whole value, as Envoy's safe_regex; linear time (internal/regex.ts).
        re = compileLinearPattern(`^(?:${want})$`);
      } catch (err) {
        throw new MtlsGateConfigError(
          ErrorCodes.REGEX_INVALID,
          field,
          `${describe(want)}: ${(err as Error).message}`,
          err,
        );
      }
      return (v) => re.test(fold ? v.toLowerCase() : v);
    }
  }
}

/** A DNS SAN `*.example.com` covers `api.example.com` for an exact matcher (one label, as Envoy). */
function wildcardCovers(san: string, name: string): boolean {
  if (!san.startsWith('*.')) return false;
  const dot = name.indexOf('.');
  return dot > 0 && name.slice(dot + 1) === san.slice(2);
}

type SanMatcher = { type: 'dns' | 'uri' | 'email' | 'ip' | 'otherName'; oid?: string | undefined } & Partial<
  Record<Kind, string>
>;

function sanTest(m: SanMatcher, field: string): (s: SanValues) => boolean {
  const kind = (['exact', 'prefix', 'suffix', 'contains', 'regex'] as const).find((k) => m[k] !== undefined)!;
  let want = m[kind]!;
  switch (m.type) {
    case 'dns': {
      const t = valueTest(kind, want, `${field}.${kind}`, true);
      const lower = want.toLowerCase();
      return (s) => s.dns.some((d) => t(d) || (kind === 'exact' && wildcardCovers(d.toLowerCase(), lower)));
    }
    case 'uri': {
      const t = valueTest(kind, want, `${field}.${kind}`, false);
      // A SPIFFE ID: an X509-SVID carries exactly one URI SAN; a certificate with more is not one.
      const spiffe = (kind === 'exact' || kind === 'prefix') && want.startsWith('spiffe://');
      return (s) => (!spiffe || s.uriCount === 1) && s.uri.some(t);
    }
    case 'email': {
      const t = valueTest(kind, want, `${field}.${kind}`, false);
      return (s) => s.email.some(t);
    }
    case 'ip': {
      if (kind === 'exact') {
        // Compared as addresses: the configured text is brought to the certificate's form.
        const family = isIP(want);
        if (family === 0) throw invalid(`${field}.exact`, `${describe(want)} is not an IP address`);
        want = ipAddressText(addressBytes(want, family));
      }
      const t = valueTest(kind, want, `${field}.${kind}`, kind !== 'regex');
      return (s) => s.ip.some(t);
    }
    case 'otherName': {
      const t = valueTest(kind, want, `${field}.${kind}`, false);
      const oid = m.oid!;
      return (s) => s.otherName.some((o) => o.oid === oid && t(o.value));
    }
  }
}

function addressBytes(text: string, family: number): Uint8Array {
  if (family === 4) return Uint8Array.from(text.split('.').map(Number));
  // Expand "::" and an embedded IPv4 tail, then read 8 groups.
  let s = text.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    s = `${s.slice(0, -v4[1]!.length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

/** What matching reads of a chain's leaf, once per chain; null when it cannot be read (nothing matches). */
function perChain<T>(read: (der: Buffer) => T): (chain: VerifiedChain) => T | null {
  const memo = new WeakMap<VerifiedChain, T | null>();
  return (chain) => {
    let v = memo.get(chain);
    if (v === undefined) {
      try {
        v = read(Buffer.from(chain.der, 'latin1'));
      } catch {
        v = null;
      }
      memo.set(chain, v);
    }
    return v;
  };
}
const sansOf = perChain(readSans);
const spkiOf = perChain(spki256);

/** Compiles a validated `mtls` policy; `field` names it in errors (`services[0].routes[1].mtls`). */
export function compilePolicy(input: MtlsPolicyInput, field: string): CompiledPolicy {
  const mode = input.mode ?? 'required';
  let anchors: Set<string> | undefined;
  if (input.ca !== undefined) {
    const pem = pemText(input.ca);
    const blocks = typeof pem === 'string' ? pemBlocks(pem, 'CERTIFICATE') : [];
    if (blocks.length === 0)
      throw new MtlsGateConfigError(
        ErrorCodes.PEM_INVALID,
        `${field}.ca`,
        'no "-----BEGIN CERTIFICATE-----" block found',
      );
    anchors = new Set(blocks.map((der) => hash('sha256', der, 'hex')));
  }
  if (mode === 'off' && (anchors || input.allow))
    throw invalid(`${field}.mode`, '"off" checks no certificate: ca and allow cannot apply');
  let allow: CompiledPolicy['allow'];
  if (input.allow) {
    const a = input.allow;
    const sanTests = (a.san ?? []).map((m, i) => sanTest(m as SanMatcher, `${field}.allow.san[${i}]`));
    const subjects = new Set(a.subject ?? []);
    const pins = new Set((a.fingerprint256 ?? []).map((f) => f.replace(/:/g, '').toLowerCase()));
    const keys = new Set(a.spki256 ?? []);
    allow = (chain, subject) => {
      if (pins.size > 0 && pins.has(chain.fp256)) return true;
      if (keys.size > 0) {
        const k = spkiOf(chain);
        if (k !== null && keys.has(k)) return true;
      }
      if (subjects.size > 0 && subjects.has(subject())) return true;
      if (sanTests.length > 0) {
        const s = sansOf(chain);
        if (s !== null && sanTests.some((t) => t(s))) return true;
      }
      return false;
    };
  }
  const status = input.status ?? 403;
  const allowList = input.allow ? (input.allow.san || input.allow.subject ? 'names' : 'pins') : undefined;
  return Object.freeze({
    mode,
    anchors,
    allow,
    status,
    allowList,
    source: Object.freeze({ mode, ca: anchors?.size ?? 0, allow: allow !== undefined, status }),
  });
}

/** What a policy says of a connection's verified chain. */
export type PolicyResult =
  | { ok: true }
  | {
      ok: false;
      reason: 'untrusted' | 'not_allowed';
      detail: string;
      status: number;
      allowList?: 'names' | 'pins' | undefined;
    };

const OK: PolicyResult = Object.freeze({ ok: true });

export function evaluatePolicy(policy: CompiledPolicy, chain: VerifiedChain, subject: () => string): PolicyResult {
  if (policy.anchors) {
    const anchor = chain.above.at(-1)!;
    if (!policy.anchors.has(anchor.fp256))
      return {
        ok: false,
        reason: 'untrusted',
        detail: 'the certificate is not issued by a CA this route accepts (mtls.ca)',
        status: 400,
      };
  }
  if (policy.allow && !policy.allow(chain, subject))
    return {
      ok: false,
      reason: 'not_allowed',
      detail: 'the certificate is valid but not on the allow-list of this route (mtls.allow)',
      status: policy.status,
      allowList: policy.allowList,
    };
  return OK;
}
