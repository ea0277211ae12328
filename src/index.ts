/**
 * API-gateway mutual TLS for any Node.js HTTP/HTTPS server: SSL objects chosen by SNI
 * ({@link createSslStore}), a per-request guard that answers HTTP 400 for a missing or bad client
 * certificate ({@link mtlsGuard}), and a router that proxies services to their upstreams
 * ({@link createRouter}); or all of it from one configuration object or file ({@link createGateway},
 * the `mtls-gate` command).
 *
 * @module mtls-gate
 */

export type { LoadedConfig, LoadOptions } from './config/load.js';
export { loadConfigFile, loadConfigFileOffThread, loadConfigText } from './config/load.js';
export type { GatewayConfig, ParsedGatewayConfig } from './config/schema.js';
export { configJsonSchema, validateConfig } from './config/schema.js';
export type { ConfigIssue, ErrorCode, RejectReason } from './errors.js';
export { ErrorCodes, MtlsGateConfigError, MtlsGateError, RejectReasons } from './errors.js';
export type { ApplyResult, Gateway, GatewayEvent, GatewayOptions } from './gateway/gateway.js';
export { createGateway } from './gateway/gateway.js';
export type { Metrics, MetricsOptions } from './gateway/metrics.js';
export { createMetrics } from './gateway/metrics.js';
export type { GatewayStatus } from './gateway/status.js';
export type { GuardVerdict } from './guard/decide.js';
export type {
  GuardOptions,
  GuardRequest,
  GuardResponse,
  MtlsGuard,
  RejectInfo,
  RejectResponse,
} from './guard/guard.js';
export { getClientIdentity, mtlsGuard } from './guard/guard.js';
export type { GuardSettings } from './guard/schema.js';
export type { PageFormat, PagePreset } from './http/pages.js';
export { normalizePath } from './http/path.js';
export type { HttpRequest, HttpResponse } from './http/types.js';
export type {
  ConfigMessage,
  HandshakeMessage,
  ProxyMessage,
  TlsErrorMessage,
  VerdictMessage,
} from './observe/channels.js';
export { CHANNEL_NAMES } from './observe/channels.js';
export type { PolicyEntry, PolicySource } from './policy/lookup.js';
export { policyList } from './policy/lookup.js';
export type { ForwardClientCert, MtlsPolicyInput } from './policy/schema.js';
export type { BindingResult, CertificateBoundTokenOptions } from './policy/token.js';
export { certificateBoundToken, checkCertificateBinding } from './policy/token.js';
export type { ProxyErrorInfo } from './proxy/proxy.js';
export type { PassHost, RouteConfig, ServiceConfig, UpstreamNode, UpstreamOptions } from './router/config.js';
export type { RouteMatch, Router, RouterOptions } from './router/router.js';
export { createRouter } from './router/router.js';
export type { RouterSettings } from './router/schema.js';
export type { AttachOptions, ServerLimits } from './server/limits.js';
export type { EtcdSource, EtcdSourceOptions, EtcdSourceStatus, SinkResult, SourceChanges } from './sources/etcd.js';
export { etcdSource } from './sources/etcd.js';
export type { SslClientOptions, SslObject, SslObjectView, SslProtocol } from './ssl/object.js';
export type { MtlsServerOptions, SslBatch, SslStore, SslStoreOptions, TlsOptionsOptions } from './ssl/store.js';
export { createSslStore } from './ssl/store.js';
export type { SubjectAltNames } from './verify/cert.js';
export type { CertificateInfo, ClientIdentity } from './verify/identity.js';
export type { RevocationMode } from './verify/revocation.js';
export type { VerifierStats } from './verify/verifier.js';
