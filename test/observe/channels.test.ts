// Diagnostics channels and /metrics: a subscriber on every channel while real handshakes and
// requests run through a gateway (admitted, missing, another CA, SAN denied, pin mismatch, unknown
// SNI, a resumed session), the counts asserted, and /metrics parsed by a Prometheus text parser.

import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import {
  CHANNEL_NAMES,
  createGateway,
  type Gateway,
  type GatewayConfig,
  type HandshakeMessage,
  type ProxyMessage,
  type TlsErrorMessage,
  type VerdictMessage,
} from '../../src/index.js';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';

let pki: TestPki;
let alice: TestCert;
let upstream: http.Server;
let gateway: Gateway;
let config: GatewayConfig;
const seen: Record<string, unknown[]> = {};
const subscribers: [string, (m: unknown) => void][] = Object.values(CHANNEL_NAMES).map((name) => [
  name,
  (m: unknown) => (seen[name] ??= []).push(m),
]);

before(async () => {
  pki = await createTestPki({ serverNames: ['app.test'] });
  alice = await pki.client('valid');
  const other = await pki.root.issue({ subject: 'CN=other' });
  upstream = http.createServer((_req, res) => res.end('up'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  config = {
    listen: [{ port: 0, sessionTickets: true }],
    status: { port: 0 },
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'app',
        hosts: ['app.test'],
        upstream: url,
        routes: [
          { name: 'open', path: '/open' },
          { name: 'san', path: '/san', mtls: { allow: { san: [{ type: 'uri', prefix: 'spiffe://prod.example/' }] } } },
          { name: 'pin', path: '/pin', mtls: { allow: { fingerprint256: [other.fingerprint256] } } },
        ],
      },
    ],
  };
  for (const [name, fn] of subscribers) diagnostics_channel.subscribe(name, fn);
  gateway = await createGateway(config);
});
after(async () => {
  for (const [name, fn] of subscribers) diagnostics_channel.unsubscribe(name, fn);
  await gateway.close();
  upstream.close();
});

test('every channel sees what happened, and /metrics counts it', async () => {
  const port = gateway.addresses[0]!.port;
  const ask = (path: string, client?: TestCert, extra: Partial<Parameters<typeof testRequest>[0]> = {}) =>
    testRequest({ port, servername: 'app.test', path, ...(client ? { client } : {}), ...extra });
  const first = await ask('/open', alice, { maxVersion: 'TLSv1.2' });
  assert.equal(first.status, 200);
  const resumed = await ask('/open', alice, { maxVersion: 'TLSv1.2', session: first.session });
  assert.equal(resumed.status, 200);
  assert.equal(resumed.reused, true);
  assert.equal((await ask('/open')).status, 400);
  assert.equal((await ask('/open', await pki.client('otherCa'))).status, 400);
  assert.equal((await ask('/san', alice)).status, 403);
  assert.equal((await ask('/pin', alice)).status, 403);
  // Unknown SNI: the handshake is refused.
  await new Promise<void>((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'nobody.test', rejectUnauthorized: false });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
  gateway.apply({
    ...config,
    services: [
      { ...config.services![0]!, routes: [...config.services![0]!.routes, { name: 'extra', path: '/extra' }] },
    ],
  });
  await new Promise((r) => setTimeout(r, 50));

  const verdicts = (seen[CHANNEL_NAMES.verdict] ?? []) as VerdictMessage[];
  assert.deepEqual(
    verdicts.map((v) => (v.ok ? 'ok' : v.reason)),
    ['ok', 'ok', 'missing', 'untrusted', 'not_allowed', 'not_allowed'],
  );
  assert.deepEqual(
    verdicts.map((v) => v.route),
    ['app/open', 'app/open', 'app/open', 'app/open', 'app/san', 'app/pin'],
  );
  assert.equal(verdicts[0]!.fingerprint256, alice.fingerprint256);
  assert.equal(verdicts[1]!.resumed, true);
  assert.deepEqual(
    verdicts.slice(4).map((v) => [v.status, v.allowList]),
    [
      [403, 'names'],
      [403, 'pins'],
    ],
  );
  const handshakes = (seen[CHANNEL_NAMES.handshake] ?? []) as HandshakeMessage[];
  assert.equal(handshakes.length, 6);
  assert.equal(handshakes.filter((h) => h.resumed).length, 1);
  const tlsErrors = (seen[CHANNEL_NAMES.tlsError] ?? []) as TlsErrorMessage[];
  assert.deepEqual(
    tlsErrors.map((e) => [e.kind, e.sni]),
    [['unknown_sni', 'nobody.test']],
  );
  const proxied = (seen[CHANNEL_NAMES.proxy] ?? []) as ProxyMessage[];
  assert.deepEqual(
    proxied.map((p) => p.status),
    [200, 200],
  );
  assert.ok(proxied.every((p) => p.durationMs >= 0 && p.upstream?.startsWith('http://127.0.0.1:')));
  const configEvents = (seen[CHANNEL_NAMES.config] ?? []) as { type: string; revision?: number }[];
  assert.deepEqual(
    configEvents.map((c) => [c.type, c.revision]),
    [
      ['applied', 1],
      ['listening', undefined],
      ['applied', 2],
    ],
  );

  const status = gateway.statusAddress!;
  const text = await new Promise<string>((resolve, reject) =>
    http
      .get({ host: status.host, port: status.port, path: '/metrics' }, (res) => {
        assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      })
      .on('error', reject),
  );
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  const value = (name: string, labels: Record<string, string> = {}) => {
    const f = families.get(name);
    assert.ok(f, `${name} is exposed`);
    const m = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    return m ? Number((m as { value: string }).value) : 0;
  };
  assert.equal(value('mtls_gate_handshake_total'), 6);
  assert.equal(value('mtls_gate_session_reused_total'), 1);
  assert.equal(value('mtls_gate_no_certificate_total'), 1);
  assert.equal(value('mtls_gate_fail_verify_error_total'), 1);
  assert.equal(value('mtls_gate_fail_verify_san_total'), 1);
  assert.equal(value('mtls_gate_fail_verify_cert_hash_total'), 1);
  assert.equal(value('mtls_gate_rejected_total', { reason: 'not_allowed' }), 2);
  assert.equal(value('mtls_gate_requests_total', { result: 'admitted' }), 2);
  assert.equal(value('mtls_gate_tls_errors_total', { kind: 'unknown_sni' }), 1);
  assert.equal(value('mtls_gate_proxy_responses_total', { class: '2xx' }), 2);
  assert.equal(value('mtls_gate_config_revision'), 2);
  assert.equal(families.get('mtls_gate_certificate_not_after_seconds')?.type, 'GAUGE');
  const serverExpiry = value('mtls_gate_certificate_not_after_seconds', { ssl_id: 'app', role: 'server' });
  assert.ok(Math.abs(serverExpiry * 1000 - new Date(gateway.store.get('app')!.validTo).getTime()) < 1000);
  assert.ok(value('mtls_gate_certificate_not_after_min_seconds', { role: 'client_ca' }) > Date.now() / 1000);
});

test('tls-error kinds: no SNI without a fallback, a TLS failure with SNI, a bare TCP connection, an unknown SNI', async () => {
  const https = await import('node:https');
  const net = await import('node:net');
  const { createSslStore } = await import('../../src/index.js');
  const kinds: string[] = [];
  const onError = (m: unknown) => kinds.push((m as TlsErrorMessage).kind);
  diagnostics_channel.subscribe(CHANNEL_NAMES.tlsError, onError);
  const store = createSslStore();
  store.set({ id: 'a', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'] });
  const server = store.attach(https.createServer(store.tlsOptions(), (_q, r) => r.end('x')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const attempt = (o: tls.ConnectionOptions) =>
    new Promise<void>((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...o });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
  try {
    await attempt({});
    await attempt({ servername: 'app.test', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.end());
      c.on('close', () => resolve());
    });
    await attempt({ servername: 'other.test' });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(kinds, ['no_sni', 'tls', 'tls', 'unknown_sni']);
  } finally {
    diagnostics_channel.unsubscribe(CHANNEL_NAMES.tlsError, onError);
    await new Promise<void>((r) => server.close(() => r()));
  }
});
