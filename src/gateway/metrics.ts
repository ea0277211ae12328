/**
 * Counters of what the guard, the TLS layer and the proxy did, from the diagnostics channels, in the
 * Prometheus text format (version 0.0.4): Envoy's TLS counter names (`handshake`, `no_certificate`,
 * `fail_verify_error`, `fail_verify_san`, `fail_verify_cert_hash`, `session_reused`) with the
 * `mtls_gate_` prefix, refusals by reason, TLS errors by kind, proxy outcomes, configuration events,
 * and the expiry (`not_after`) of every server certificate and client CA in the store.
 *
 * No metrics library: the format is a few lines of text, and counting is a Map increment. Labels
 * whose values a client chooses are never used; per-object series are capped (`maxSeries`).
 */
import diagnostics_channel from 'node:diagnostics_channel';
import {
  CHANNEL_NAMES,
  type ConfigMessage,
  envoyCounterOf,
  type HandshakeMessage,
  type ProxyMessage,
  type TlsErrorMessage,
  type VerdictMessage,
} from '../observe/channels.js';
import { type SslStore, storeInternals } from '../ssl/store.js';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** The store whose certificates' expiry is reported. */
  store?: SslStore;
  /** Most per-object series of `not_after` (the earliest expiry is always reported). Default 1,000. */
  maxSeries?: number;
}

/** Counters fed by the diagnostics channels, rendered for Prometheus. */
export interface Metrics {
  /** The Prometheus text exposition. */
  render(): string;
  /** The counters as plain data (name with labels, value). */
  snapshot(): Record<string, number>;
  /** Unsubscribes. */
  close(): void;
}

const HELP: Record<string, [string, 'counter' | 'gauge']> = {
  mtls_gate_handshake_total: ['TLS handshakes completed (Envoy ssl.handshake).', 'counter'],
  mtls_gate_session_reused_total: ['TLS handshakes that resumed a session (Envoy ssl.session_reused).', 'counter'],
  mtls_gate_no_certificate_total: [
    'Requests refused for want of a client certificate (Envoy ssl.no_certificate).',
    'counter',
  ],
  mtls_gate_fail_verify_error_total: [
    'Requests refused because the client certificate did not verify (Envoy ssl.fail_verify_error).',
    'counter',
  ],
  mtls_gate_fail_verify_san_total: [
    'Requests refused by a route allow-list of SANs or subjects (Envoy ssl.fail_verify_san).',
    'counter',
  ],
  mtls_gate_fail_verify_cert_hash_total: [
    'Requests refused by a route allow-list of certificate or key pins (Envoy ssl.fail_verify_cert_hash).',
    'counter',
  ],
  mtls_gate_requests_total: ['Requests judged by the guard, by result.', 'counter'],
  mtls_gate_rejected_total: ['Requests refused by the guard, by reason.', 'counter'],
  mtls_gate_tls_errors_total: ['Handshakes refused: unknown_sni, no_sni, tls.', 'counter'],
  mtls_gate_proxy_responses_total: ['Proxied requests by status class, and failures by kind.', 'counter'],
  mtls_gate_config_events_total: ['Gateway configuration events by type.', 'counter'],
  mtls_gate_config_revision: ['The configuration revision applied.', 'gauge'],
  mtls_gate_certificate_not_after_seconds: [
    'Expiry (notAfter, Unix seconds) of server certificates and client CAs, by SSL object.',
    'gauge',
  ],
  mtls_gate_certificate_not_after_min_seconds: [
    'The earliest expiry (Unix seconds) over all SSL objects, by role.',
    'gauge',
  ],
};

/** Counters without labels: shown as 0 before their first count. */
const UNLABELLED = new Set([
  'mtls_gate_handshake_total',
  'mtls_gate_session_reused_total',
  'mtls_gate_no_certificate_total',
  'mtls_gate_fail_verify_error_total',
  'mtls_gate_fail_verify_san_total',
  'mtls_gate_fail_verify_cert_hash_total',
]);

/** A Prometheus label value: backslash, double quote and newline escaped. */
const label = (v: string) => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
const key = (name: string, labels?: Record<string, string>) =>
  labels && Object.keys(labels).length > 0
    ? `${name}{${Object.entries(labels)
        .map(([k, v]) => `${k}="${label(v)}"`)
        .join(',')}}`
    : name;

/**
 * Subscribes to the mtls-gate channels and counts. The gateway serves it on its status listener
 * (`/metrics`); a program of its own can serve `render()` anywhere.
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const maxSeries = options.maxSeries ?? 1000;
  const counts = new Map<string, number>();
  const add = (name: string, labels?: Record<string, string>, n = 1) => {
    const k = labels ? keyOf(name, labels) : name;
    counts.set(k, (counts.get(k) ?? 0) + n);
  };
  // Series keys made once per label combination (they are few: reasons, kinds, status classes).
  const keys = new Map<string, string>();
  const keyOf = (name: string, labels: Record<string, string>) => {
    let memo = name;
    for (const l in labels) memo += `\0${labels[l]}`;
    let k = keys.get(memo);
    if (k === undefined) {
      k = key(name, labels);
      if (keys.size < 10_000) keys.set(memo, k);
    }
    return k;
  };
  let revision: number | undefined;

  const onVerdict = (m: unknown) => {
    const v = m as VerdictMessage;
    add('mtls_gate_requests_total', { result: v.ok ? 'admitted' : 'refused' });
    if (v.ok || !v.reason) return;
    add('mtls_gate_rejected_total', { reason: v.reason });
    const envoy = envoyCounterOf(v);
    if (envoy) add(`mtls_gate_${envoy}_total`);
  };
  const onHandshake = (m: unknown) => {
    add('mtls_gate_handshake_total');
    if ((m as HandshakeMessage).resumed) add('mtls_gate_session_reused_total');
  };
  const onTlsError = (m: unknown) => add('mtls_gate_tls_errors_total', { kind: (m as TlsErrorMessage).kind });
  const onProxy = (m: unknown) => {
    const p = m as ProxyMessage;
    add('mtls_gate_proxy_responses_total', {
      class: `${Math.floor(p.status / 100)}xx`,
      ...(p.kind ? { kind: p.kind } : {}),
    });
  };
  const onConfig = (m: unknown) => {
    const c = m as ConfigMessage;
    add('mtls_gate_config_events_total', { type: String(c.type) });
    if (c.type === 'applied' && typeof c.revision === 'number') revision = c.revision;
  };
  const subscriptions: [string, (m: unknown) => void][] = [
    [CHANNEL_NAMES.verdict, onVerdict],
    [CHANNEL_NAMES.handshake, onHandshake],
    [CHANNEL_NAMES.tlsError, onTlsError],
    [CHANNEL_NAMES.proxy, onProxy],
    [CHANNEL_NAMES.config, onConfig],
  ];
  for (const [name, fn] of subscriptions) diagnostics_channel.subscribe(name, fn);

  const gauges = (): Map<string, number> => {
    const g = new Map<string, number>();
    if (revision !== undefined) g.set('mtls_gate_config_revision', revision);
    const internals = options.store && storeInternals(options.store);
    if (!internals) return g;
    let series = 0;
    const min: Record<string, number> = {};
    for (const entry of internals.entries()) {
      const serverNotAfter = Math.floor(entry.view.validTo.getTime() / 1000);
      min.server = Math.min(min.server ?? Infinity, serverNotAfter);
      if (series < maxSeries) {
        g.set(key('mtls_gate_certificate_not_after_seconds', { ssl_id: entry.id, role: 'server' }), serverNotAfter);
        series++;
      }
      for (const ca of entry.client?.caSet.anchors ?? []) {
        const t = Math.floor(ca.notAfter / 1000);
        min.client_ca = Math.min(min.client_ca ?? Infinity, t);
        if (series < maxSeries) {
          g.set(
            key('mtls_gate_certificate_not_after_seconds', {
              ssl_id: entry.id,
              role: 'client_ca',
              fingerprint256: ca.fp256,
            }),
            t,
          );
          series++;
        }
      }
    }
    for (const [role, t] of Object.entries(min)) g.set(key('mtls_gate_certificate_not_after_min_seconds', { role }), t);
    return g;
  };

  return Object.freeze({
    render() {
      return renderMetrics(Object.fromEntries([...counts, ...gauges()]));
    },
    snapshot() {
      return Object.fromEntries([...counts, ...gauges()]);
    },
    close() {
      for (const [name, fn] of subscriptions) diagnostics_channel.unsubscribe(name, fn);
    },
  });
}

/** The Prometheus text exposition of counter and gauge values keyed as `name{labels}`. */
export function renderMetrics(values: Record<string, number>): string {
  // Every family announced, counted or not, so dashboards see zeros rather than gaps.
  const byName = new Map<string, string[]>(Object.keys(HELP).map((n) => [n, []]));
  for (const [k, v] of Object.entries(values)) {
    const name = k.includes('{') ? k.slice(0, k.indexOf('{')) : k;
    byName.get(name)?.push(`${k} ${v}`);
  }
  const out: string[] = [];
  for (const [name, lines] of byName) {
    const [help, type] = HELP[name]!;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    if (lines.length === 0 && UNLABELLED.has(name)) out.push(`${name} 0`);
    out.push(...lines);
  }
  return `${out.join('\n')}\n`;
}

/**
 * Several processes' snapshots as one (the command's workers): counters summed, gauges the latest seen (revision: the
 * highest).
 */
export function mergeMetrics(snapshots: readonly (Record<string, number> | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const snap of snapshots) {
    if (!snap) continue;
    for (const [k, v] of Object.entries(snap)) {
      const name = k.includes('{') ? k.slice(0, k.indexOf('{')) : k;
      if (HELP[name]?.[1] === 'counter') out[k] = (out[k] ?? 0) + v;
      else if (name === 'mtls_gate_config_revision') out[k] = Math.max(out[k] ?? 0, v);
      else out[k] = v;
    }
  }
  return out;
}
