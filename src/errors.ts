/**
 * Every configuration error mtls-gate throws is an {@link MtlsGateError} with a permanent `code`.
 * Match on `code`, never on `message`: messages name the field and may be reworded.
 *
 * A rejected client is not an error: the guard answers 400 and reports a {@link RejectReason}.
 */

/** Permanent error codes. `docs/errors.md` lists each with its cause and fix. */
export const ErrorCodes = {
  /** An option or field has the wrong type, range or shape. */
  INVALID_OPTION: 'ERR_MTLS_INVALID_OPTION',
  /** An object carries a field mtls-gate does not know (typos must not weaken checks). */
  UNKNOWN_FIELD: 'ERR_MTLS_UNKNOWN_FIELD',
  /** A required field is absent. */
  MISSING_FIELD: 'ERR_MTLS_MISSING_FIELD',
  /** A PEM certificate or key could not be parsed. */
  PEM_INVALID: 'ERR_MTLS_PEM_INVALID',
  /** A private key does not belong to its certificate. */
  KEY_MISMATCH: 'ERR_MTLS_KEY_MISMATCH',
  /** `certs` and `keys` do not pair up. */
  CERTS_KEYS_MISMATCH: 'ERR_MTLS_CERTS_KEYS_MISMATCH',
  /** A certificate in `client.ca` cannot act as a certification authority. */
  CA_INVALID: 'ERR_MTLS_CA_INVALID',
  /** An SNI pattern is malformed, or no SNI could be derived from the certificate. */
  SNI_INVALID: 'ERR_MTLS_SNI_INVALID',
  /** A `skipMtlsUriRegex` entry is not a valid regular expression. */
  REGEX_INVALID: 'ERR_MTLS_REGEX_INVALID',
  /** Node could not build a TLS context from an otherwise valid object. */
  TLS_CONTEXT: 'ERR_MTLS_TLS_CONTEXT',
  /**
   * A CRL in `client.crl` cannot be read, is of a kind mtls-gate does not check (delta, scoped, indirect), or is not
   * signed by the CA it names.
   */
  CRL_INVALID: 'ERR_MTLS_CRL_INVALID',
  /** A configuration file, or a file it references, cannot be read, is too large, or cannot be parsed. */
  CONFIG_FILE: 'ERR_MTLS_CONFIG_FILE',
  /** A `${VAR}` in a configuration file names an environment variable that is not set, or is malformed. */
  CONFIG_VARIABLE: 'ERR_MTLS_CONFIG_VARIABLE',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class of every error mtls-gate throws. */
export class MtlsGateError extends Error {
  /** Permanent machine-readable code, `ERR_MTLS_*`. */
  readonly code: ErrorCode;
  /** Path of the offending field (`client.ca`, `certs[1]`), when one is to blame. */
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MtlsGateError';
    this.code = code;
    this.field = options.field;
  }
}

/** One problem of a configuration: its code, the full path of the field (`ssls[3].client.ca`) and what is wrong. */
export interface ConfigIssue {
  readonly code: ErrorCode;
  readonly field: string;
  readonly message: string;
}

/**
 * Thrown when an SSL object, guard option, router option or configuration is invalid. Nothing is
 * applied. `code` and `field` are those of the first problem; `issues` lists every problem found
 * (at least the first), for `mtls-gate validate` and editors.
 */
export class MtlsGateConfigError extends MtlsGateError {
  /** Every problem found, the first one being this error's `code` and `field`. */
  readonly issues: readonly ConfigIssue[];

  constructor(code: ErrorCode, field: string, message: string, cause?: unknown, issues?: readonly ConfigIssue[]) {
    super(code, `${field}: ${message}`, { field, cause });
    this.name = 'MtlsGateConfigError';
    this.issues = issues && issues.length > 0 ? issues : [{ code, field, message }];
  }
}

/**
 * Why the guard refused a request. Stable strings: log them, count them, branch on them.
 */
export const RejectReasons = [
  /** No client certificate on the connection (also a resumed TLS 1.3 session that carried none). */
  'missing',
  /** No path from the client's certificate to a CA in this SSL object's `client.ca`. */
  'untrusted',
  /** A certificate on the path, the anchor included, is past its notAfter. */
  'expired',
  /** A certificate on the path, the anchor included, is before its notBefore. */
  'not_yet_valid',
  /** More intermediates than `client.depth` allows, a pathLenConstraint broken, or an oversized chain. */
  'chain_too_long',
  /** A signature on the path does not verify. */
  'bad_signature',
  /** An issuer on the path is not a CA (basicConstraints cA, keyUsage keyCertSign). */
  'not_a_ca',
  /** The leaf (or an intermediate) is not usable for TLS client authentication (extendedKeyUsage, keyUsage). */
  'bad_purpose',
  /** A certificate on the path carries a critical extension mtls-gate does not process. */
  'bad_extension',
  /** The Host names an SSL object with `client` other than the one the SNI chose. */
  'sni_host_mismatch',
  /** The request's host is malformed or ambiguous (Host vs `:authority` vs an absolute-form target). */
  'bad_host',
  /** The connection has no SNI and no SSL object could be chosen for it (no `fallbackSni`). */
  'no_sni',
  /** The connection's SNI matches no SSL object any more (the object was deleted or disabled after the handshake). */
  'unknown_sni',
  /**
   * A resumed TLS session this SSL object never accepted in a full handshake: made under another
   * SNI, before the object changed, or no longer remembered. The client's next full handshake decides.
   */
  'unverified_session',
  /** The connection's TLS version is not in the SSL object's `sslProtocols`. */
  'protocol_not_allowed',
  /** The request did not arrive over TLS, and the guard was not told that plain HTTP is allowed (`allowPlainHttp`). */
  'plain_http',
  /** A certificate in `client.revocation`'s scope is listed by a valid, current CRL of its issuer. */
  'revoked',
  /**
   * Under `client.revocation.mode: 'strict'` (the default), the revocation status of a certificate in
   * scope could not be learned: no CRL of its issuer, or only expired or badly signed ones.
   */
  'revocation_unknown',
  /**
   * The certificate is valid, but the route's `mtls.allow` list does not admit it (answered with the
   * policy's `status`, 403 by default).
   */
  'not_allowed',
] as const;

export type RejectReason = (typeof RejectReasons)[number];
