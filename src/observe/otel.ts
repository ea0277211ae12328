/**
 * OpenTelemetry metrics from the diagnostics channels, for applications that use OpenTelemetry: the
 * counters of `/metrics` (observe/channels.ts, gateway/metrics.ts) as OTel instruments on a meter the
 * application gives. `@opentelemetry/api` is an optional peer: only its types are used here, the meter
 * comes from the application, so nothing is loaded unless it calls this.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { Attributes, Counter, Meter } from '@opentelemetry/api';
import {
  CHANNEL_NAMES,
  envoyCounterOf,
  type HandshakeMessage,
  type ProxyMessage,
  type TlsErrorMessage,
  type VerdictMessage,
} from './channels.js';

/**
 * Records mtls-gate's counters on `meter` (`meterProvider.getMeter('mtls-gate')`): `mtls_gate.handshake`,
 * `.session_reused`, `.no_certificate`, `.fail_verify_error`, `.fail_verify_san`, `.fail_verify_cert_hash`
 * (Envoy's names), `.requests` (`result`), `.rejected` (`reason`), `.tls_errors` (`kind`), `.proxy.responses`
 * (`status_class`, `kind`). Returns a function that stops recording.
 */
export function recordOpenTelemetryMetrics(meter: Meter): () => void {
  const counter = (name: string, description: string): Counter =>
    meter.createCounter(`mtls_gate.${name}`, { description });
  const c = {
    handshake: counter('handshake', 'TLS handshakes completed'),
    reused: counter('session_reused', 'TLS handshakes that resumed a session'),
    noCert: counter('no_certificate', 'Requests refused for want of a client certificate'),
    verify: counter('fail_verify_error', 'Requests refused because the client certificate did not verify'),
    san: counter('fail_verify_san', 'Requests refused by a route allow-list of SANs or subjects'),
    hash: counter('fail_verify_cert_hash', 'Requests refused by a route allow-list of pins'),
    requests: counter('requests', 'Requests judged by the guard'),
    rejected: counter('rejected', 'Requests refused by the guard, by reason'),
    tls: counter('tls_errors', 'Handshakes refused'),
    proxy: counter('proxy.responses', 'Proxied requests by status class'),
  };
  const envoyCounters = {
    no_certificate: c.noCert,
    fail_verify_error: c.verify,
    fail_verify_san: c.san,
    fail_verify_cert_hash: c.hash,
  };
  const onVerdict = (m: unknown) => {
    const v = m as VerdictMessage;
    c.requests.add(1, { result: v.ok ? 'admitted' : 'refused' });
    if (v.ok || !v.reason) return;
    c.rejected.add(1, { reason: v.reason });
    const envoy = envoyCounterOf(v);
    if (envoy) envoyCounters[envoy].add(1);
  };
  const onHandshake = (m: unknown) => {
    c.handshake.add(1);
    if ((m as HandshakeMessage).resumed) c.reused.add(1);
  };
  const onTlsError = (m: unknown) => c.tls.add(1, { kind: (m as TlsErrorMessage).kind });
  const onProxy = (m: unknown) => {
    const p = m as ProxyMessage;
    const attributes: Attributes = { status_class: `${Math.floor(p.status / 100)}xx` };
    if (p.kind) attributes.kind = p.kind;
    c.proxy.add(1, attributes);
  };
  const subscriptions: [string, (m: unknown) => void][] = [
    [CHANNEL_NAMES.verdict, onVerdict],
    [CHANNEL_NAMES.handshake, onHandshake],
    [CHANNEL_NAMES.tlsError, onTlsError],
    [CHANNEL_NAMES.proxy, onProxy],
  ];
  for (const [name, fn] of subscriptions) diagnostics_channel.subscribe(name, fn);
  return () => {
    for (const [name, fn] of subscriptions) diagnostics_channel.unsubscribe(name, fn);
  };
}
