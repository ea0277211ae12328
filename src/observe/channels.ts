/**
 * What mtls-gate publishes on `node:diagnostics_channel`, as undici and Fastify do: any metrics or
 * tracing stack can subscribe (`diagnostics_channel.subscribe('mtls-gate:verdict', fn)`). A message
 * is built only when the channel has subscribers: without any, publishing costs one property read.
 *
 * - `mtls-gate:verdict`: the guard's verdict for every request it judged.
 * - `mtls-gate:handshake`: a TLS handshake that completed on a server the store is attached to.
 * - `mtls-gate:tls-error`: a handshake refused on such a server (unknown SNI, no SNI, TLS errors).
 * - `mtls-gate:proxy`: the outcome of every proxied request.
 * - `mtls-gate:config`: configuration events of a gateway (applied revision, refused change, source state).
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { RejectReason } from '../errors.js';

/** `mtls-gate:verdict` */
export interface VerdictMessage {
  readonly ok: boolean;
  /** Why a refused request was refused. */
  readonly reason: RejectReason | undefined;
  readonly detail: string | undefined;
  /**
   * For `not_allowed`: whether the route's allow-list names clients (SANs, subjects) or pins them (certificate, key
   * hashes) only.
   */
  readonly allowList?: 'names' | 'pins' | undefined;
  /** The answer sent for a refusal (400 unless configured otherwise). */
  readonly status: number | undefined;
  /** The connection's SNI, and the request's normalised host. */
  readonly sni: string | undefined;
  readonly host: string | undefined;
  /** The SSL object chosen for the connection. */
  readonly sslId: string | undefined;
  /** `service/route` of the route policy looked up for the request, when a policy source matched one. */
  readonly route: string | undefined;
  /** Whether the TLS session was resumed. */
  readonly resumed: boolean;
  /** The admitted client's SHA-256 fingerprint (null: admitted without a certificate). */
  readonly fingerprint256: string | null | undefined;
  /** The request itself (do not keep it). */
  readonly req: object;
}

/** `mtls-gate:handshake` */
export interface HandshakeMessage {
  readonly sni: string | undefined;
  readonly resumed: boolean;
  readonly protocol: string | null;
  /** Whether the client sent a certificate OpenSSL accepted (the guard decides later). */
  readonly authorized: boolean;
  readonly server: object;
}

/** `mtls-gate:tls-error` */
export interface TlsErrorMessage {
  /**
   * `unknown_sni` (no SSL object matches), `no_sni` (none sent and no fallbackSni), or `tls` (any other handshake
   * failure).
   */
  readonly kind: 'unknown_sni' | 'no_sni' | 'tls';
  readonly sni: string | undefined;
  /** The TLS error's code (`ERR_SSL_...`), when it has one. */
  readonly code: string | undefined;
  readonly message: string;
  readonly server: object;
}

/** `mtls-gate:proxy` */
export interface ProxyMessage {
  /** The upstream node (origin). */
  readonly upstream: string | undefined;
  /** The status sent to the client: the upstream's, or 502/503/504 for a failure. */
  readonly status: number;
  /**
   * For a failure: `refused`, `reset`, `connect_timeout`, `send_timeout`, `read_timeout`, `no_upstream`, `tls`,
   * `error`; `client_closed` when the client left; else undefined.
   */
  readonly kind: string | undefined;
  readonly durationMs: number;
}

/** `mtls-gate:config`: the gateway's events (see `GatewayEvent`) with a time stamp. */
export interface ConfigMessage {
  readonly type: string;
  readonly at: number;
  readonly [field: string]: unknown;
}

export const channels = Object.freeze({
  verdict: diagnostics_channel.channel('mtls-gate:verdict'),
  handshake: diagnostics_channel.channel('mtls-gate:handshake'),
  tlsError: diagnostics_channel.channel('mtls-gate:tls-error'),
  proxy: diagnostics_channel.channel('mtls-gate:proxy'),
  config: diagnostics_channel.channel('mtls-gate:config'),
});

/** The channel names, for subscribers. */
export const CHANNEL_NAMES = Object.freeze({
  verdict: 'mtls-gate:verdict',
  handshake: 'mtls-gate:handshake',
  tlsError: 'mtls-gate:tls-error',
  proxy: 'mtls-gate:proxy',
  config: 'mtls-gate:config',
} as const);

const VERIFY_ERRORS: ReadonlySet<string> = new Set([
  'untrusted',
  'expired',
  'not_yet_valid',
  'chain_too_long',
  'bad_signature',
  'not_a_ca',
  'bad_purpose',
  'bad_extension',
  'revoked',
  'revocation_unknown',
  'unverified_session',
]);

/** Which of Envoy's TLS counters a refusal counts in (metrics and the OpenTelemetry bridge), if any. */
export function envoyCounterOf(
  v: VerdictMessage,
): 'no_certificate' | 'fail_verify_error' | 'fail_verify_san' | 'fail_verify_cert_hash' | undefined {
  if (v.ok || !v.reason) return undefined;
  if (v.reason === 'missing') return 'no_certificate';
  if (VERIFY_ERRORS.has(v.reason)) return 'fail_verify_error';
  if (v.reason === 'not_allowed') return v.allowList === 'pins' ? 'fail_verify_cert_hash' : 'fail_verify_san';
  return undefined;
}
