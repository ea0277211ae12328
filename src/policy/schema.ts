/**
 * Per-route mTLS policy (`mtls` on a service or a route) and identity forwarding
 * (`forwardClientCert` on a service): defined once, for the library, the config file and etcd.
 */
import { lazySchema, type PemSchema, pemInput, type SchemaInput, z } from '../internal/schema.js';

/** Statuses a refusal may be answered with. */
export const REFUSAL_STATUSES = [400, 401, 403, 421, 495, 496] as const;
const refusalStatus = lazySchema(() =>
  z.literal(REFUSAL_STATUSES, { error: `expected one of ${REFUSAL_STATUSES.join(', ')}` }),
);

export { refusalStatus };

const pattern = lazySchema(() => z.string().min(1).max(256));
const sanMatcher = lazySchema(() =>
  z
    .strictObject({
      /** Which SANs: `dns`, `uri`, `email`, `ip` or `otherName` (with `oid`). */
      type: z.enum(['dns', 'uri', 'email', 'ip', 'otherName']),
      /** For `otherName`: the type OID (UPN: 1.3.6.1.4.1.311.20.2.3). */
      oid: z
        .string()
        .regex(/^[0-2](\.(0|[1-9]\d{0,9})){1,40}$/, { error: 'expected a dotted OID' })
        .optional(),
      exact: pattern().optional(),
      prefix: pattern().optional(),
      suffix: pattern().optional(),
      contains: pattern().optional(),
      /** Matched against the whole value, in linear time. */
      regex: pattern().optional(),
    })
    .superRefine((m, ctx) => {
      const kinds = (['exact', 'prefix', 'suffix', 'contains', 'regex'] as const).filter((k) => m[k] !== undefined);
      if (kinds.length !== 1)
        ctx.addIssue({
          code: 'custom',
          message: `expected exactly one of exact, prefix, suffix, contains, regex (got ${kinds.length})`,
        });
      if (m.type === 'otherName' && m.oid === undefined)
        ctx.addIssue({ code: 'custom', path: ['oid'], message: 'is required with type "otherName"' });
      if (m.type !== 'otherName' && m.oid !== undefined)
        ctx.addIssue({ code: 'custom', path: ['oid'], message: 'is only for type "otherName"' });
    }),
);

export function mtlsPolicySchema<P extends PemSchema>(pem: P) {
  return z.strictObject({
    /**
     * `required` (default where the SSL object has `client`), `optional` (no certificate passes with identity null), or
     * `off`.
     */
    mode: z.enum(['required', 'optional', 'off']).optional(),
    /** Only clients of these CAs pass here; each must be one of the SSL object's `client.ca`. */
    ca: pem.optional(),
    /** Any matching entry admits a valid certificate; none matching is answered with `status`. */
    allow: z
      .strictObject({
        san: z.array(sanMatcher()).min(1).max(64).optional(),
        /** Subject DNs in RFC 2253 form, compared exactly. */
        subject: z.array(z.string().min(1).max(1024)).min(1).max(64).optional(),
        /** SHA-256 of the certificate's DER, hex (colons allowed). */
        fingerprint256: z
          .array(z.string().regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, { error: 'expected 64 hex digits' }))
          .min(1)
          .max(1024)
          .optional(),
        /** Base64 SHA-256 of the SubjectPublicKeyInfo. */
        spki256: z
          .array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, { error: 'expected 44 characters of base64' }))
          .min(1)
          .max(1024)
          .optional(),
      })
      .refine((a) => a.san || a.subject || a.fingerprint256 || a.spki256, {
        error: 'expected at least one of san, subject, fingerprint256, spki256',
      })
      .optional(),
    /** The answer when the allow-list refuses a valid certificate. Default 403. */
    status: refusalStatus().optional(),
  });
}

export const XFCC_MODES = [
  'sanitize',
  'sanitize-set',
  'forward-only',
  'append-forward',
  'always-forward-only',
] as const;
export const XFCC_DETAILS = ['subject', 'uri', 'dns', 'cert', 'chain'] as const;

export const forwardClientCertSchema = lazySchema(() =>
  z.strictObject({
    /** X-Forwarded-Client-Cert, as Envoy's `forward_client_cert_details`. Default `sanitize` (strip only). */
    xfcc: z.enum(XFCC_MODES).optional(),
    /** XFCC fields besides By and Hash (Envoy's `set_current_client_cert_details`). */
    details: z.array(z.enum(XFCC_DETAILS)).max(5).optional(),
    /** Client-Cert and Client-Cert-Chain (RFC 9440). Default false. */
    rfc9440: z.boolean().optional(),
  }),
);

export const libraryPolicy = lazySchema(() => mtlsPolicySchema(pemInput()));
/** The `mtls` of a service or route. */
export interface MtlsPolicyInput extends SchemaInput<typeof libraryPolicy> {}
/** A service's `forwardClientCert`. */
export interface ForwardClientCert extends SchemaInput<typeof forwardClientCertSchema> {}
