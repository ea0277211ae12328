/**
 * The SSL object (APISIX's `ssls` resource, camelCase), defined once: its TypeScript type, its
 * validation and its JSON Schema come from here. What a schema cannot say (PEM parsing, a key
 * matching its certificate, CA flags, SNI patterns, regular expressions compiled by our linear
 * engine) is checked by `compileSslObject` after the shape passed.
 */
import {
  bytes,
  lazySchema,
  matching,
  type PemSchema,
  pemFile,
  pemInput,
  type SchemaInput,
  z,
} from '../internal/schema.js';

/** Most intermediates `client.depth` may allow. */
export const MAX_DEPTH = 8;
/** Largest PEM text of one field, in characters. */
export const MAX_PEM = 64 * 1024;

const ID = /^[a-zA-Z0-9._-]{1,64}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/;
const MAX_LABELS = 64;

/** An SSL object id: 1 to 64 characters of `[a-zA-Z0-9._-]`, or a positive integer (kept as its decimal string). */
export const sslId = lazySchema(() =>
  z.union(
    [
      matching(ID, '1 to 64 characters of [a-zA-Z0-9._-] or a positive integer'),
      z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    ],
    {
      error: (i) =>
        i.input === undefined ? undefined : 'expected 1 to 64 characters of [a-zA-Z0-9._-] or a positive integer',
    },
  ),
);

const unique = (list: readonly unknown[]) => new Set(list).size === list.length;

function build<P extends PemSchema>(pem: P) {
  const text = pem;
  const client = z.strictObject({
    /**
     * PEM of the CAs that may issue client certificates: one bundle or an array of them, as Node's `tls` takes `ca`.
     * These, and only these, are trust anchors.
     */
    ca: z
      .union([text, z.array(text).min(1).max(256)], {
        error: (i) => (i.input === undefined ? undefined : 'expected one PEM bundle or an array of 1 to 256'),
      })
      .meta({
        description:
          'PEM of the CAs that may issue client certificates: one bundle or an array of them. These, and only these, are trust anchors.',
      }),
    /**
     * Most intermediates allowed between the client certificate and a CA of `ca`. Default 1; 0 = issued directly by
     * `ca`.
     */
    depth: z.number().int().min(0).max(MAX_DEPTH).optional().meta({
      description: 'Most intermediates between the client certificate and a CA of ca. Default 1.',
      default: 1,
    }),
    /**
     * CRLs for the CAs of the chain (`client.ca`'s or intermediates): PEM text (one or more `X509 CRL`
     * blocks), DER bytes, or a list. Complete CRLs only; checked by mtls-gate (signature by the issuer,
     * thisUpdate / nextUpdate), not by Node's `crl` option.
     */
    crl: z
      .union([text, z.array(text).min(1).max(64)], {
        error: (i) => (i.input === undefined ? undefined : 'expected one CRL (PEM or DER) or an array of 1 to 64'),
      })
      .optional(),
    /**
     * OCSP for the client's certificate: `true` (the responder named by the certificate's
     * authorityInfoAccess) or settings. Asked only for chains that verified; a request whose
     * connection has no answer yet waits for it (up to `timeoutMs`).
     */
    ocsp: z
      .union(
        [
          z.literal(true),
          z.strictObject({
            responder: z
              .string()
              .regex(/^https?:\/\/[^\s]+$/, { error: 'expected an http:// or https:// URL' })
              .max(2048)
              .optional(),
            timeoutMs: z.number().int().min(100).max(30_000).optional().meta({ default: 3000 }),
            cacheTtlMs: z.number().int().min(1000).max(86_400_000).optional().meta({ default: 3_600_000 }),
            nonce: z.boolean().optional().meta({ default: false }),
            /** Only responders on these hosts are asked (an AIA naming another host gives `unknown`). Default: any. */
            allowedHosts: z.array(z.string().min(1).max(253)).min(1).max(64).optional(),
          }),
        ],
        {
          error: (i) =>
            i.input === undefined
              ? undefined
              : 'expected true or { responder?, timeoutMs?, cacheTtlMs?, nonce?, allowedHosts? }',
        },
      )
      .optional(),
    /**
     * Fetch the CRL named by the client certificate's CRL distribution point when the configured
     * CRLs do not answer for its issuer: `true` or settings. Fetched only for chains that verified,
     * http(s) only, kept until the CRL's nextUpdate (refreshed after `cacheTtlMs` while current).
     */
    crlFetch: z
      .union(
        [
          z.literal(true),
          z.strictObject({
            timeoutMs: z.number().int().min(100).max(30_000).optional().meta({ default: 5000 }),
            /** Largest CRL read, in bytes (at most 16 MiB). */
            maxBytes: z
              .number()
              .int()
              .min(1024)
              .max(16 * 1024 * 1024)
              .optional()
              .meta({ default: 10 * 1024 * 1024 }),
            cacheTtlMs: z.number().int().min(1000).max(86_400_000).optional().meta({ default: 3_600_000 }),
            /** Only distribution points on these hosts are fetched (another host gives `unknown`). Default: any. */
            allowedHosts: z.array(z.string().min(1).max(253)).min(1).max(64).optional(),
          }),
        ],
        {
          error: (i) =>
            i.input === undefined
              ? undefined
              : 'expected true or { timeoutMs?, maxBytes?, cacheTtlMs?, allowedHosts? }',
        },
      )
      .optional(),
    /**
     * What a revocation check decides: `mode` strict (default: an unknown status refuses),
     * ignore-ca-error (an unknown status passes) or skip (nothing is checked); `scope` leaf (default)
     * or chain (every certificate below the trust anchor).
     */
    revocation: z
      .strictObject({
        mode: z.enum(['strict', 'ignore-ca-error', 'skip']).optional().meta({ default: 'strict' }),
        scope: z.enum(['leaf', 'chain']).optional().meta({ default: 'leaf' }),
      })
      .optional(),
    /**
     * Paths (normalised, query removed) that need no client certificate; unanchored regular expressions, matched in
     * linear time.
     */
    skipMtlsUriRegex: z
      .array(z.string())
      .min(1)
      .max(64)
      .refine(unique, { error: 'items must be unique' })
      .optional()
      .meta({
        description:
          'Paths (normalised, query removed) that need no client certificate: unanchored regular expressions.',
      }),
  });
  const object = z.strictObject({
    /** 1 to 64 characters of `[a-zA-Z0-9-_.]`, or a positive integer (kept as its decimal string). */
    id: sslId(),
    /** Server certificate PEM; certificates after the first are sent as its chain. */
    cert: text,
    /** Private key PEM (unencrypted) of `cert`. */
    key: text,
    /** More certificate/key pairs for the same names, e.g. ECDSA beside RSA; they pair by index. */
    certs: z.array(text).max(8).optional(),
    keys: z.array(text).max(8).optional(),
    /** Names this object serves (exact or `*.example.com`). Default: the certificate's DNS SANs, else its CN. */
    snis: z
      .array(z.string().max(253))
      .min(1)
      .max(1024)
      .optional()
      .meta({ description: "Names served: exact or *.example.com. Default: the certificate's DNS SANs, else its CN." }),
    /** Present = mutual TLS on for these names. */
    client: client.optional(),
    /** 0 disables the object without deleting it. Default 1. */
    status: z
      .union([z.literal(0), z.literal(1)], { error: (i) => (i.input === undefined ? undefined : 'expected 0 or 1') })
      .optional()
      .meta({ default: 1 }),
    /** Allowed TLS versions for connections that chose this object. Default: any the server allows. */
    sslProtocols: z
      .array(z.enum(['TLSv1.1', 'TLSv1.2', 'TLSv1.3']))
      .min(1)
      .max(3)
      .refine(unique, { error: 'items must be unique' })
      .optional(),
    labels: z
      .record(
        matching(LABEL_KEY, 'a label key of 1 to 64 characters of [A-Za-z0-9._/-], starting with a letter or digit'),
        matching(/^\S{1,256}$/, '1 to 256 non-space characters'),
      )
      .refine((o) => Object.keys(o).length <= MAX_LABELS, { error: `expected at most ${MAX_LABELS} labels` })
      .optional(),
    desc: z.string().max(256).optional(),
  });
  return { object, client };
}

/** The SSL object as the library takes it (PEM as strings or Buffers). */
export const sslObjectSchema = lazySchema(() => build(pemInput()).object);
/** The SSL object as a config file writes it (PEM as text or `{ file: PATH }`). */
export const sslObjectFileSchema = lazySchema(() => build(pemFile()).object);

/** An SSL object, APISIX's `ssls` resource with camelCase names. */
export interface SslObject extends SchemaInput<typeof sslObjectSchema> {}
/** Client-certificate settings of an SSL object (`client`). */
export type SslClientOptions = NonNullable<SslObject['client']>;
/** TLS versions an SSL object may restrict itself to (APISIX's `ssl_protocols`). */
export type SslProtocol = NonNullable<SslObject['sslProtocols']>[number];

/** The store's settings (a config file's `store:`): clients without SNI, the verdict cache, ticket keys. */
export const storeOptionsSchema = lazySchema(() =>
  z.strictObject({
    /** Server name assumed for clients that send no SNI. Without it such handshakes are refused. */
    fallbackSni: z.string().max(253).optional().meta({
      description: 'Server name assumed for clients that send no SNI. Without it such handshakes are refused.',
    }),
    /** Verdicts kept in the chain-verification cache: at most this many, the most recently used. Default 10,000. */
    verifyCacheSize: z.number().int().min(1).max(10_000_000).optional().meta({ default: 10_000 }),
    /**
     * Bytes the chain-verification cache may hold, by its own estimate (a verdict for an ordinary
     * client is about 2 KB). Default 32 MiB. Together with `verifyCacheSize` it bounds what clients
     * can make the gateway remember, whatever the size of the certificates they send.
     */
    verifyCacheBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(2 ** 40)
      .optional()
      .meta({ default: 32 * 1024 * 1024 }),
    /**
     * TLS contexts kept, the most recently used (each about 50 KB of native memory): an object's context
     * is built on the first handshake that needs it and again after eviction. Default 10,000.
     */
    contextCacheSize: z.number().int().min(1).max(10_000_000).optional().meta({ default: 10_000 }),
    /**
     * Secret (at least 32 bytes) from which TLS session ticket keys are derived, together with the
     * store's content: processes holding the same secret and the same SSL objects use the same keys,
     * so sessions resume across workers and machines, and every change of the objects still rotates
     * them. Default: random keys, rotated on every change (no resumption across processes).
     */
    ticketSecret: z
      .union([z.string(), bytes()])
      .refine((v) => Buffer.byteLength(typeof v === 'string' ? Buffer.from(v) : v) >= 32, {
        error: 'expected at least 32 bytes',
      })
      .optional(),
  }),
);
