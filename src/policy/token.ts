/**
 * RFC 8705 certificate-bound access tokens: a token's `cnf["x5t#S256"]` (the base64url SHA-256 of
 * the client certificate's DER) must be the certificate of the connection that presents it. The
 * token itself is verified by the application (a JWT library, or an introspection call); this only
 * binds its claims to the mTLS identity, in constant time. Semantics of Kong's
 * `proof_of_possession_mtls`: `required` (every token must be bound to the connection's certificate)
 * or optional (only tokens that carry a thumbprint are checked).
 */
import { timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { HttpRequest, HttpResponse } from '../http/types.js';
import type { ClientIdentity } from '../verify/identity.js';

/** What {@link checkCertificateBinding} found. */
export type BindingResult = { ok: true; bound: boolean } | { ok: false; error: 'invalid_token'; description: string };

const thumbprintOf = (claims: unknown): unknown => {
  if (claims === null || typeof claims !== 'object') return undefined;
  const cnf = Object.hasOwn(claims, 'cnf') ? (claims as { cnf?: unknown }).cnf : undefined;
  if (cnf === null || typeof cnf !== 'object') return undefined;
  return Object.hasOwn(cnf, 'x5t#S256') ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined;
};

/**
 * Checks a verified token's claims against the connection's client certificate (`identity`, from
 * `getClientIdentity(req)`). `required` (default true): a token without `cnf["x5t#S256"]` fails;
 * otherwise such a token passes unbound. A token with a thumbprint passes only on a connection whose
 * certificate it names.
 */
export function checkCertificateBinding(
  claims: unknown,
  identity: ClientIdentity | null,
  options: { required?: boolean } = {},
): BindingResult {
  const required = options.required ?? true;
  const x5t = thumbprintOf(claims);
  if (x5t === undefined) {
    return required
      ? { ok: false, error: 'invalid_token', description: 'the token is not bound to a certificate (no cnf x5t#S256)' }
      : { ok: true, bound: false };
  }
  if (typeof x5t !== 'string')
    return { ok: false, error: 'invalid_token', description: 'cnf x5t#S256 is not a string' };
  if (identity === null)
    return {
      ok: false,
      error: 'invalid_token',
      description: 'the token is bound to a certificate, and the connection presented none',
    };
  const want = Buffer.from(identity.x5tS256);
  const got = Buffer.from(x5t);
  // Equal lengths first (a thumbprint is 43 characters): timingSafeEqual needs them.
  const same = got.length === want.length && timingSafeEqual(got, want);
  return same
    ? { ok: true, bound: true }
    : { ok: false, error: 'invalid_token', description: 'the token is bound to another certificate' };
}

/** Options of {@link certificateBoundToken}. */
export interface CertificateBoundTokenOptions {
  /**
   * The verified token's claims (or introspection result) for a request; undefined when the request has no token. May
   * be async.
   */
  claims: (req: HttpRequest) => unknown;
  /** The connection's client identity (`getClientIdentity`). */
  identity: (req: HttpRequest) => ClientIdentity | null;
  /** Default true: every token must be bound. */
  required?: boolean;
  /** The `realm` of the WWW-Authenticate challenge. */
  realm?: string;
}

/**
 * A `(req, res, next)` middleware: requests whose token is not bound to their certificate get 401
 * with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750). A request without a token
 * (`claims` gives undefined) gets 401 without an error code, as RFC 6750 says.
 */
export function certificateBoundToken(
  options: CertificateBoundTokenOptions,
): (req: HttpRequest, res: HttpResponse, next: (err?: unknown) => void) => void {
  const params = (error?: string, description?: string) =>
    [
      options.realm === undefined ? '' : `realm="${options.realm.replace(/["\\]/g, '')}"`,
      error ? `error="${error}", error_description="${description!.replace(/["\\]/g, '')}"` : '',
    ]
      .filter(Boolean)
      .join(', ');
  const refuse = (res: HttpResponse, error?: string, description?: string) => {
    const r = res as ServerResponse;
    const p = params(error, description);
    r.statusCode = 401;
    r.setHeader('www-authenticate', p ? `Bearer ${p}` : 'Bearer');
    r.setHeader('cache-control', 'no-store');
    r.setHeader('content-length', 0);
    r.end();
  };
  return (req, res, next) => {
    const decide = (claims: unknown) => {
      if (claims === undefined) return refuse(res);
      const r = checkCertificateBinding(claims, options.identity(req), { required: options.required ?? true });
      if (r.ok) next();
      else refuse(res, r.error, r.description);
    };
    let claims: unknown;
    try {
      claims = options.claims(req);
    } catch {
      return refuse(res, 'invalid_token', 'the token cannot be verified');
    }
    if (claims !== null && typeof claims === 'object' && typeof (claims as Promise<unknown>).then === 'function') {
      (claims as Promise<unknown>).then(decide, () => refuse(res, 'invalid_token', 'the token cannot be verified'));
    } else decide(claims);
  };
}
