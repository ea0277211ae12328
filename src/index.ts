/**
 * API-gateway mutual TLS for any Node.js HTTP/HTTPS server: SSL objects chosen by SNI
 * ({@link createSslStore}), a per-request guard that answers HTTP 400 for a missing or bad client
 * certificate ({@link mtlsGuard}), and a router that proxies services to their upstreams
 * ({@link createRouter}); or all of it from one configuration object or file ({@link createGateway},
 * the `mtls-gate` command).
 *
 * @module mtls-gate
 */
export { createSslStore } from './ssl/store.js';
export type { SslStore, SslStoreOptions, SslBatch, TlsOptionsOptions, MtlsServerOptions } from './ssl/store.js';
export type { AttachOptions, ServerLimits } from './server/limits.js';
export type { SslObject, SslClientOptions, SslObjectView, SslProtocol } from './ssl/object.js';
export { mtlsGuard, getClientIdentity } from './guard/guard.js';
export type { GuardOptions, MtlsGuard, RejectInfo, RejectResponse, GuardRequest, GuardResponse } from './guard/guard.js';
export type { GuardVerdict } from './guard/decide.js';
export type { ClientIdentity, CertificateInfo } from './verify/identity.js';
export type { SubjectAltNames } from './verify/cert.js';
export type { RevocationMode } from './verify/revocation.js';
export type { VerifierStats } from './verify/verifier.js';
export type { PagePreset, PageFormat } from './http/pages.js';
export type { HttpRequest, HttpResponse } from './http/types.js';
export { normalizePath } from './http/path.js';
export { MtlsGateError, MtlsGateConfigError, ErrorCodes, RejectReasons } from './errors.js';
export type { ErrorCode, RejectReason, ConfigIssue } from './errors.js';
export { createRouter } from './router/router.js';
export type { Router, RouterOptions, RouteMatch } from './router/router.js';
export type { ServiceConfig, RouteConfig, UpstreamOptions, UpstreamNode, PassHost } from './router/config.js';
export type { ProxyErrorInfo } from './proxy/proxy.js';
export type { RouterSettings } from './router/schema.js';
export type { GuardSettings } from './guard/schema.js';
export { createGateway } from './gateway/gateway.js';
export type { Gateway, GatewayOptions, GatewayEvent, ApplyResult } from './gateway/gateway.js';
export type { GatewayStatus } from './gateway/status.js';
export { validateConfig, configJsonSchema } from './config/schema.js';
export type { GatewayConfig, ParsedGatewayConfig } from './config/schema.js';
export { loadConfigFile, loadConfigFileOffThread, loadConfigText } from './config/load.js';
export type { LoadedConfig, LoadOptions } from './config/load.js';
export { policyList } from './policy/lookup.js';
export type { PolicyEntry, PolicySource } from './policy/lookup.js';
export type { MtlsPolicyInput, ForwardClientCert } from './policy/schema.js';
export { checkCertificateBinding, certificateBoundToken } from './policy/token.js';
export type { BindingResult, CertificateBoundTokenOptions } from './policy/token.js';
export { CHANNEL_NAMES } from './observe/channels.js';
export type { VerdictMessage, HandshakeMessage, TlsErrorMessage, ProxyMessage, ConfigMessage } from './observe/channels.js';
export { createMetrics } from './gateway/metrics.js';
export type { Metrics, MetricsOptions } from './gateway/metrics.js';
export { etcdSource } from './sources/etcd.js';
export type { EtcdSource, EtcdSourceOptions, EtcdSourceStatus, SourceChanges, SinkResult } from './sources/etcd.js';
