// The long version of the reload test in faults.test.ts, run by `npm run test:stress` (skipped in
// `npm test`): 20,000 requests in four rounds against a gateway child process while its SSL object
// and router are replaced every 50 ms and 10,000 SSL objects are added and then removed. After each
// round the gateway's heap is read after a full GC: it must not trend upwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestPki, type TestCert, type TestPki } from '../../src/testing/index.js';
import type { GatewayStats } from './fixtures/faults-gateway.js';
import {
  assertNoResidue,
  type Child,
  churnConfig,
  forkGateway,
  getWithSni,
  type LoadResult,
  mb,
  runLoad,
  startUpstreams,
  type Upstreams,
} from './fixtures/faults-load.js';
import { sleep, waitFor } from './fixtures/limits-sockets.js';

const STRESS = process.env.MTLS_GATE_STRESS === '1';
const ROUNDS = Number(process.env.MTLS_GATE_SOAK_ROUNDS ?? 4);
const PER_ROUND = Number(process.env.MTLS_GATE_SOAK_REQUESTS ?? 5000);
const BULK = Number(process.env.MTLS_GATE_SOAK_OBJECTS ?? 10_000);

describe('soak: reloads and 10,000 SSL objects under 20,000 requests', {
  skip: STRESS ? false : 'long: run by npm run test:stress',
}, () => {
  let pki: TestPki;
  let client: TestCert;
  let otherClient: TestCert;
  let gw: Child;
  let ups: Upstreams;

  before(async () => {
    pki = await createTestPki({ serverNames: ['gw.test'] });
    client = await pki.client('valid');
    const otherRoot = await pki.createRoot({ subject: 'CN=second tenant root' });
    otherClient = await otherRoot.issue({ subject: 'CN=second tenant client' });
    ups = await startUpstreams();
    gw = await forkGateway(await churnConfig(pki, otherRoot, ups));
  });
  after(async () => {
    await gw?.stop();
    await ups?.close();
  });

  const stats = async (): Promise<GatewayStats> => {
    gw.send({ cmd: 'stats' });
    return (await gw.next('stats')).stats;
  };

  test(`${ROUNDS} x ${PER_ROUND} requests while reloading, ${BULK} SSL objects in and out`, {
    timeout: 280_000,
  }, async () => {
    const load = (total: number) =>
      runLoad({
        port: gw.port,
        client,
        otherClient,
        total,
        workers: { 'h1-fresh': 2, 'h1-keepalive': 4, h2: 4, 'other-ca': 1 },
        deadlineMs: 120_000,
      });
    const warm = await load(500);
    assert.deepEqual(warm.failures, []);
    await sleep(200);
    const baseline = await stats();
    const t0 = Date.now();

    gw.send({ cmd: 'churn', storeMs: 50, routerMs: 50, bulk: BULK });
    let bulkProbes: number[] = [];
    let bulkAddedAt = 0;
    const bulk = gw.next('bulk-added', 240_000).then(async (m) => {
      bulkAddedAt = Date.now() - t0;
      bulkProbes = await Promise.all(m.snis.map((sni) => getWithSni(gw.port, client, sni)));
      gw.send({ cmd: 'bulk-remove' });
    });

    const results: LoadResult[] = [];
    const heaps: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await load(PER_ROUND);
      results.push(r);
      const s = await stats();
      heaps.push(s.heapUsed);
      console.log(
        `round ${i + 1}: ${r.issued} requests in ${r.ms} ms, ${r.failures.length} failures, second-tenant ${r.otherCa.ok} x 200 / ${r.otherCa.rejected} x 400; ` +
          `store size ${s.storeSize}; heap after GC ${mb(s.heapUsed)}; handles ${s.handles}; connections ${s.connections}`,
      );
    }
    await bulk;
    // Let the removal finish before stopping the churn (stop-churn removes what is left anyway).
    await waitFor('the bulk objects to be removed', async () => (await stats()).storeSize === 1, 60_000).catch(
      () => {},
    );
    gw.send({ cmd: 'stop-churn' });
    const counts = (await gw.next('churned')).counts;
    let final = baseline;
    await waitFor(
      'the gateway connections to close',
      async () => {
        final = await stats();
        return final.connections === 0;
      },
      10_000,
    );

    const total = results.reduce((n, r) => n + r.issued, 0);
    const failures = results.flatMap((r) => r.failures);
    console.log(
      [
        `requests under reload: ${total} in ${Date.now() - t0} ms; failures: ${failures.length}`,
        `reloads: SSL object replaced ${counts.storeSets} times, router ${counts.routerUpdates} times; ${counts.bulkAdded} SSL objects added (all in after ${bulkAddedAt} ms), ${counts.bulkRemoved} removed; longest churn step ${counts.maxStepMs.toFixed(1)} ms`,
        `bulk SNIs probed with ${BULK} objects present: ${bulkProbes.length}, statuses ${[...new Set(bulkProbes)].join(',')}`,
        `proxy errors ${JSON.stringify(final.proxyErrors)}; guard rejects ${JSON.stringify(final.rejects)}`,
        `gateway connections after: ${final.connections}; active handles ${baseline.handles} -> ${final.handles}; server listeners unchanged: ${JSON.stringify(final.serverListeners) === JSON.stringify(baseline.serverListeners)}`,
        `heap after GC: baseline ${mb(baseline.heapUsed)}, after each round ${heaps.map(mb).join(', ')}, final ${mb(final.heapUsed)}; rss ${mb(baseline.rss)} -> ${mb(final.rss)}`,
      ].join('\n'),
    );

    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed requests`);
    assert.equal(total, ROUNDS * PER_ROUND);
    assert.equal(counts.bulkAdded, BULK);
    assert.equal(counts.bulkRemoved, BULK);
    assert.deepEqual([...new Set(bulkProbes)], [200]);
    assertNoResidue(baseline, final, 16 * 1024 * 1024);
    // No upward trend once the bulk objects are gone: the last round's heap is not above the second's by more than 4
    // MB.
    if (heaps.length >= 3)
      assert.ok(heaps[heaps.length - 1]! - heaps[1]! < 4 * 1024 * 1024, `heap trend: ${heaps.map(mb).join(', ')}`);
  });
});
