// The OpenTelemetry bridge with the real SDK (@opentelemetry/sdk-metrics, an in-memory reader): a
// gateway's handshakes and refusals recorded as OTel counters with Envoy's names.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { createGateway } from '../../src/index.js';
import { recordOpenTelemetryMetrics } from '../../src/observe/otel.js';
import { createTestPki, testRequest } from '../../src/testing/index.js';

test('handshakes, admitted and refused requests become OTel counters', async () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const provider = new MeterProvider({ readers: [reader] });
  const stop = recordOpenTelemetryMetrics(provider.getMeter('mtls-gate'));
  const pki = await createTestPki({ serverNames: ['app.test'] });
  const gw = await createGateway({
    listen: [{ port: 0 }],
    ssls: [
      { id: 'app', cert: pki.server.chain, key: pki.server.key, snis: ['app.test'], client: { ca: pki.root.cert } },
    ],
    services: [
      {
        name: 'app',
        upstream: 'http://127.0.0.1:9',
        routes: [{ name: 'pin', path: '/pin', mtls: { allow: { fingerprint256: ['00'.repeat(32)] } } }],
      },
    ],
  });
  try {
    const port = gw.addresses[0]!.port;
    assert.equal((await testRequest({ port, servername: 'app.test', path: '/pin' })).status, 400);
    assert.equal(
      (await testRequest({ port, servername: 'app.test', path: '/pin', client: await pki.client('valid') })).status,
      403,
    );
    await reader.forceFlush();
    const metrics = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
    const sum = (name: string, attrs: Record<string, string> = {}) =>
      metrics
        .filter((m) => m.descriptor.name === name)
        .flatMap((m) => m.dataPoints as { attributes: Record<string, unknown>; value: unknown }[])
        .filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))
        .reduce((n: number, p) => n + (p.value as number), 0);
    assert.equal(sum('mtls_gate.handshake'), 2);
    assert.equal(sum('mtls_gate.no_certificate'), 1);
    assert.equal(sum('mtls_gate.fail_verify_cert_hash'), 1);
    assert.equal(sum('mtls_gate.rejected', { reason: 'not_allowed' }), 1);
    assert.equal(sum('mtls_gate.requests', { result: 'refused' }), 2);
  } finally {
    stop();
    await gw.close();
    await provider.shutdown();
  }
});
