// A fleet on a real etcd: `mtls-gate serve --etcd` processes sharing SSL objects and services under
// one prefix, and the writers (`mtls-gate etcd put|delete|apply`).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createTestPki, type TestCert, type TestPki, testRequest } from '../../src/testing/index.js';
import { BIN, type Cli, startCli, stopCli } from '../cli/run.js';
import { type Etcd, startEtcd } from './etcd.js';

const run = promisify(execFile);
let etcd: Etcd;
let pki: TestPki;
let client: TestCert;
let upstream: http.Server;
let upstreamUrl: string;
let dir: string;
let n = 0;
const uniquePrefix = () => `/mtls-gate-test-${process.pid}-${++n}`;

before(async () => {
  etcd = await startEtcd();
  pki = await createTestPki({ serverNames: ['a.test', 'b.test', 'c.test', 'd.test'] });
  client = await pki.client('valid');
  upstream = http.createServer((req, res) => res.end(JSON.stringify({ path: req.url, host: req.headers.host })));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'mtls-gate-fleet-'));
});
after(async () => {
  await etcd.stop();
  upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

const ssl = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  cert: pki.server.chain,
  key: pki.server.key,
  snis: [`${id}.test`],
  client: { ca: pki.root.cert },
  ...extra,
});
const service = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  hosts: [`${name}.test`],
  upstream: upstreamUrl,
  routes: [{ name: 'all', path: '/*' }],
  ...extra,
});
const put = (prefix: string, kind: 'ssls' | 'services', name: string, value: unknown) =>
  etcd.client.txn({
    put: [{ key: `${prefix}/${kind}/${name}`, value: typeof value === 'string' ? value : JSON.stringify(value) }],
  });

async function gateway(
  prefix: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<{ cli: Cli; port: number; status: number }> {
  const cli = startCli(
    ['serve', '--etcd', etcd.url, '--prefix', prefix, '--listen', '127.0.0.1:0', '--status', '127.0.0.1:0', ...extra],
    { env },
  );
  const port = Number((await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]);
  const status = Number((await cli.waitFor(/status on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
  return { cli, port, status };
}
const statusOf = async (port: number) =>
  (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
    revision: number;
    ssls: number;
    services: number;
    source: { revision: number; connected: boolean; invalid: number; fromSnapshot: boolean };
  };
const ask = (port: number, host: string, path = '/x') =>
  testRequest({ port, servername: host, path, client, timeoutMs: 3000 }).then(
    (r) => r.status,
    () => 0,
  );

/** Polls until `check` holds (a change propagates within moments), or fails after `ms`. */
async function eventually(what: string, check: () => Promise<boolean>, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what}: not within ${ms} ms`);
}

describe('mtls-gate serve --etcd', () => {
  test('a put makes a new SNI work on two gateway processes, a delete refuses it; a transaction of an SSL object and a service is applied at one revision', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    // APISIX's directory placeholders are skipped.
    await etcd.client.txn({ put: [{ key: `${prefix}/ssls/`, value: 'init_dir' }] });
    const g1 = await gateway(prefix);
    const g2 = await gateway(prefix);
    try {
      for (const g of [g1, g2]) assert.equal(await ask(g.port, 'a.test'), 200);
      for (const g of [g1, g2])
        assert.equal(await ask(g.port, 'b.test'), 0, 'b.test is not served yet: the handshake is refused');
      // One transaction: the SSL object and its service together.
      const t = await etcd.client.txn({
        put: [
          { key: `${prefix}/ssls/b`, value: JSON.stringify(ssl('b')) },
          { key: `${prefix}/services/b`, value: JSON.stringify(service('b')) },
        ],
      });
      for (const g of [g1, g2]) await eventually('b.test served', async () => (await ask(g.port, 'b.test')) === 200);
      for (const g of [g1, g2]) {
        const st = await statusOf(g.status);
        assert.equal(st.source.revision, t.revision);
        assert.equal(st.ssls, 2);
        assert.equal(st.services, 2);
      }
      await etcd.client.txn({ delete: [`${prefix}/ssls/b`] });
      for (const g of [g1, g2]) await eventually('b.test refused', async () => (await ask(g.port, 'b.test')) === 0);
      assert.equal(await ask(g1.port, 'a.test'), 200);
    } finally {
      await stopCli(g1.cli);
      await stopCli(g2.cli);
    }
  });

  test("an invalid value is skipped and counted; the key's previous value keeps serving; a key never valid is not served", async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    await put(prefix, 'ssls', 'c', '{ not json');
    const g = await gateway(prefix);
    try {
      assert.equal(await ask(g.port, 'a.test'), 200);
      assert.equal(await ask(g.port, 'c.test'), 0);
      // a: a key whose body names another id, then a value that fails validation.
      await put(prefix, 'ssls', 'a', ssl('other'));
      await put(prefix, 'ssls', 'a', ssl('a', { client: { ca: pki.root.cert, dept: 2 } }));
      await put(prefix, 'services', 'a', service('a', { routes: [{ name: 'r', path: 'no-slash' }] }));
      await eventually('three values refused', async () => (await statusOf(g.status)).source.invalid >= 4);
      assert.equal(await ask(g.port, 'a.test'), 200, 'the previous a keeps serving, with its service');
      await g.cli.waitFor(/ssls\/a: .*client\.dept/);
      await g.cli.waitFor(/services\/a: .*routes\[0\]\.path/);
    } finally {
      await stopCli(g.cli);
    }
  });

  test('etcd killed (SIGKILL) under a bounded load: zero failed requests on the existing configuration; after its restart a new change applies', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    const g = await gateway(prefix);
    try {
      let ok = 0;
      const failed: number[] = [];
      const until = Date.now() + 3000;
      const load = async () => {
        while (Date.now() < until) {
          const s = await ask(g.port, 'a.test');
          if (s === 200) ok++;
          else failed.push(s);
        }
      };
      const loads = [load(), load(), load(), load()];
      await new Promise((r) => setTimeout(r, 500));
      await etcd.kill();
      await eventually('the outage seen', async () => !(await statusOf(g.status)).source.connected);
      await Promise.all(loads);
      assert.deepEqual(failed, []);
      assert.ok(ok > 50, `requests: ${ok}`);
      await etcd.restart();
      await put(prefix, 'ssls', 'd', ssl('d'));
      await put(prefix, 'services', 'd', service('d'));
      const ms = await eventually(
        'a change after the restart',
        async () => (await ask(g.port, 'd.test')) === 200,
        8000,
      );
      console.log(`# etcd SIGKILL: ${ok} requests, 0 failed; a change after the restart served in ${ms} ms`);
      assert.equal((await statusOf(g.status)).source.connected, true);
    } finally {
      await stopCli(g.cli);
    }
  });

  test('compaction while a gateway is disconnected: it reads everything again and converges, deletions included', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'ssls', 'b', ssl('b'));
    await put(prefix, 'services', 'a', service('a'));
    await put(prefix, 'services', 'b', service('b'));
    const g = await gateway(prefix);
    try {
      assert.equal(await ask(g.port, 'b.test'), 200);
      // Frozen, the gateway sees nothing; etcd restarts (its watch ends), changes, and compacts.
      g.cli.child.kill('SIGSTOP');
      await etcd.kill();
      await etcd.restart();
      await etcd.client.txn({ delete: [`${prefix}/ssls/b`, `${prefix}/services/b`] });
      await put(prefix, 'ssls', 'c', ssl('c'));
      const last = await put(prefix, 'services', 'c', service('c'));
      await etcd.client.compact(last.revision);
      g.cli.child.kill('SIGCONT');
      await eventually('c.test served after the re-read', async () => (await ask(g.port, 'c.test')) === 200, 8000);
      assert.equal(await ask(g.port, 'b.test'), 0, 'b, deleted while the gateway was away, is gone');
      assert.equal(await ask(g.port, 'a.test'), 200);
      const st = await statusOf(g.status);
      assert.equal(st.ssls, 2);
      assert.equal(st.source.revision, last.revision);
      await g.cli.waitFor(/cancelled \(compacted at \d+\): reading everything again/);
    } finally {
      g.cli.child.kill('SIGCONT');
      await stopCli(g.cli);
    }
  });

  test("a watch catching up after an outage gets many revisions in one response: only each key's last event counts", async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    await put(prefix, 'services', 'c', service('c'));
    const g = await gateway(prefix);
    try {
      assert.equal(await ask(g.port, 'a.test'), 200);
      g.cli.child.kill('SIGSTOP');
      await etcd.kill();
      await etcd.restart();
      // a changed twice (its SNIs), b put then deleted (never served), service c deleted.
      await put(prefix, 'ssls', 'a', ssl('a', { snis: ['a.test', 'b.test'] }));
      await put(prefix, 'ssls', 'a', ssl('a', { snis: ['d.test'] }));
      await put(prefix, 'ssls', 'b', ssl('b'));
      await etcd.client.txn({ delete: [`${prefix}/ssls/b`] });
      const last = await etcd.client.txn({ delete: [`${prefix}/services/c`] });
      g.cli.child.kill('SIGCONT');
      await eventually('caught up', async () => (await statusOf(g.status)).source.revision === last.revision, 8000);
      await put(prefix, 'services', 'd', service('d'));
      await eventually('d.test served', async () => (await ask(g.port, 'd.test')) === 200);
      assert.equal(await ask(g.port, 'a.test'), 0, 'a serves its last value (d.test only)');
      assert.equal(await ask(g.port, 'b.test'), 0);
      const st = await statusOf(g.status);
      assert.equal(st.ssls, 1);
      assert.equal(st.services, 2, 'a and d; c was deleted during the outage');
    } finally {
      g.cli.child.kill('SIGCONT');
      await stopCli(g.cli);
    }
  });

  test('a value that cannot even be read (an id that is an object) is refused; later changes still apply', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    await put(prefix, 'ssls', 'x', '{"id":{"toString":1}}');
    const g = await gateway(prefix);
    try {
      await put(prefix, 'ssls', 'y', '{"id":{"toString":1}}');
      await put(prefix, 'ssls', 'b', ssl('b'));
      await put(prefix, 'services', 'b', service('b'));
      await eventually('b.test served', async () => (await ask(g.port, 'b.test')) === 200);
      assert.ok((await statusOf(g.status)).source.invalid >= 2);
    } finally {
      await stopCli(g.cli);
    }
  });

  test('an endpoint that goes silent (a partition: sockets kept, nothing forwarded) is noticed; the gateway moves to the next endpoint and converges', {
    timeout: 60_000,
  }, async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    // A TCP relay in front of etcd that can be frozen.
    let frozen = false;
    const sockets = new Set<net.Socket>();
    const target = new URL(etcd.url);
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port), '127.0.0.1');
      sockets.add(inbound).add(outbound);
      inbound.on('data', (d) => frozen || outbound.write(d));
      outbound.on('data', (d) => frozen || inbound.write(d));
      const end = () => (inbound.destroy(), outbound.destroy());
      inbound.on('error', end).on('close', end);
      outbound.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    const cli = startCli([
      'serve',
      '--etcd',
      `${relayUrl},${etcd.url}`,
      '--prefix',
      prefix,
      '--listen',
      '127.0.0.1:0',
      '--status',
      '127.0.0.1:0',
    ]);
    try {
      const port = Number((await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]);
      const statusPort = Number((await cli.waitFor(/status on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
      assert.equal(await ask(port, 'a.test'), 200);
      assert.equal((await statusOf(statusPort)).source.connected, true);
      frozen = true;
      await etcd.client.txn({ delete: [`${prefix}/ssls/a`] });
      const ms = await eventually(
        'the deletion applied through the other endpoint',
        async () => (await ask(port, 'a.test')) === 0,
        40_000,
      );
      console.log(`# a silent endpoint: the deletion applied through the next one after ${ms} ms`);
    } finally {
      await stopCli(cli);
      for (const s of sockets) s.destroy();
      relay.close();
    }
  });

  test('started with etcd down: serves its snapshot (written 0600 after each revision), or exits non-zero without one; /ready 503 until loaded', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    const snapshot = join(dir, `${prefix.slice(1)}.snapshot.json`);
    const first = await gateway(prefix, ['--snapshot', snapshot]);
    await eventually('snapshot written', async () => existsSync(snapshot));
    assert.equal(statSync(snapshot).mode & 0o777, 0o600);
    await stopCli(first.cli);

    await etcd.kill();
    try {
      const none = startCli([
        'serve',
        '--etcd',
        etcd.url,
        '--prefix',
        prefix,
        '--listen',
        '127.0.0.1:0',
        '--etcd-timeout',
        '500',
      ]);
      assert.notEqual(await none.exited, 0);
      assert.ok(
        none.output.some((l) => /etcd unreachable.*no --snapshot/.test(l)),
        none.output.join('\n'),
      );

      const g = await gateway(prefix, ['--snapshot', snapshot, '--etcd-timeout', '500']);
      try {
        assert.equal(await ask(g.port, 'a.test'), 200, 'served from the snapshot');
        assert.equal((await statusOf(g.status)).source.fromSnapshot, true);
        await etcd.restart();
        await put(prefix, 'ssls', 'b', ssl('b'));
        await put(prefix, 'services', 'b', service('b'));
        await eventually('etcd again: its changes served', async () => (await ask(g.port, 'b.test')) === 200, 8000);
      } finally {
        await stopCli(g.cli);
      }
    } finally {
      if (etcd.child.exitCode !== null || etcd.child.signalCode !== null) await etcd.restart();
    }
  });

  test('--workers 2 with --etcd: every worker runs its own watch; a change reaches both', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    const g = await gateway(prefix, ['--workers', '2']);
    try {
      assert.equal(await ask(g.port, 'a.test'), 200);
      const t = await etcd.client.txn({
        put: [
          { key: `${prefix}/ssls/b`, value: JSON.stringify(ssl('b')) },
          { key: `${prefix}/services/b`, value: JSON.stringify(service('b')) },
        ],
      });
      // Connections go to the workers in turn: eight in a row that all succeed reach both.
      await eventually('b.test served by both workers', async () => {
        for (let i = 0; i < 8; i++) if ((await ask(g.port, 'b.test')) !== 200) return false;
        return true;
      });
      await eventually(
        'both workers report the revision',
        async () => {
          const st = (await (await fetch(`http://127.0.0.1:${g.status}/status`)).json()) as {
            workers: { source: { revision: number } }[];
          };
          return st.workers.length === 2 && st.workers.every((w) => w.source.revision === t.revision);
        },
        6000,
      );
    } finally {
      assert.equal(await stopCli(g.cli), 0);
    }
  });

  test('a TLS session resumes across two processes at the same revision', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'a', ssl('a'));
    await put(prefix, 'services', 'a', service('a'));
    const settings = join(dir, 'settings.yaml');
    writeFileSync(settings, 'listen: [{ host: 127.0.0.1, port: 0, sessionTickets: true }]\n');
    const env = { MTLS_GATE_TICKET_SECRET: Buffer.alloc(32, 7).toString('base64') };
    const start = async () => {
      const cli = startCli(['serve', '--etcd', etcd.url, '--prefix', prefix, '--config', settings], { env });
      return { cli, port: Number((await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]) };
    };
    const g1 = await start();
    const g2 = await start();
    try {
      const first = await testRequest({ port: g1.port, servername: 'a.test', client, maxVersion: 'TLSv1.2' });
      assert.equal(first.status, 200);
      const resumed = await testRequest({
        port: g2.port,
        servername: 'a.test',
        client,
        session: first.session,
        maxVersion: 'TLSv1.2',
      });
      assert.equal(resumed.reused, true, 'the other process resumed the session');
      assert.equal(resumed.status, 200);
    } finally {
      await stopCli(g1.cli);
      await stopCli(g2.cli);
    }
  });
});

describe('mtls-gate etcd apply|put|delete', () => {
  const cli = (...args: string[]) =>
    run(process.execPath, [BIN, 'etcd', ...args]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );

  test('put validates before writing; --if-revision is compare-and-swap, a conflict is reported and writes nothing; delete', async () => {
    const prefix = uniquePrefix();
    const file = join(dir, 'a.json');
    writeFileSync(file, JSON.stringify(ssl('a')));
    const first = await cli('put', 'ssl', file, '--etcd', etcd.url, '--prefix', prefix, '--if-revision', '0');
    assert.equal(first.code, 0, first.out);
    const kv = await etcd.client.get(`${prefix}/ssls/a`);
    assert.ok(kv);
    // Someone else changed it meanwhile: a CAS on the old revision fails.
    await put(prefix, 'ssls', 'a', ssl('a', { desc: 'theirs' }));
    const stale = await cli(
      'put',
      'ssl',
      file,
      '--etcd',
      etcd.url,
      '--prefix',
      prefix,
      '--if-revision',
      String(kv.modRevision),
    );
    assert.equal(stale.code, 1);
    assert.match(stale.out, /conflict: .*ssls\/a is at revision \d+, not at revision/);
    assert.match((await etcd.client.get(`${prefix}/ssls/a`))!.value.toString(), /theirs/);
    // Invalid: nothing written.
    writeFileSync(file, JSON.stringify(ssl('bad', { client: { ca: pki.root.cert, dept: 1 } })));
    const bad = await cli('put', 'ssl', file, '--etcd', etcd.url, '--prefix', prefix);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /ssls\[0\]\.client\.dept: unknown field/);
    assert.equal(await etcd.client.get(`${prefix}/ssls/bad`), undefined);
    const del = await cli('delete', 'ssl', 'a', '--etcd', etcd.url, '--prefix', prefix);
    assert.equal(del.code, 0, del.out);
    assert.equal(await etcd.client.get(`${prefix}/ssls/a`), undefined);
    assert.match(
      (await cli('delete', 'ssl', 'a', '--etcd', etcd.url, '--prefix', prefix)).out,
      /was not there; nothing deleted/,
    );
    // Command lines that would not do what they say.
    for (const args of [
      ['put', 'ssl', file, '--if-revision', ''],
      ['put', 'ssl', file, '--if-revision', '0x10'],
      ['apply', '--config', file, '--if-revision', '3'],
      ['delete', 'ssl', 'a', '--prefix', '/'],
    ]) {
      const r = await cli(...args, '--etcd', etcd.url);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    }
  });

  test('apply writes a whole config file in one transaction; --prune removes the keys it no longer has', async () => {
    const prefix = uniquePrefix();
    await put(prefix, 'ssls', 'old', ssl('old'));
    // Keys readers skip are not the writer's to prune.
    await etcd.client.txn({
      put: [
        { key: `${prefix}/ssls/a/notes`, value: 'x' },
        { key: `${prefix}/other/k`, value: 'y' },
      ],
    });
    writeFileSync(join(dir, 'server.crt'), pki.server.chain);
    writeFileSync(join(dir, 'server.key'), pki.server.key);
    writeFileSync(join(dir, 'ca.crt'), pki.root.cert);
    const file = join(dir, 'fleet.yaml');
    writeFileSync(
      file,
      [
        'ssls:',
        ...['a', 'b'].map(
          (id) =>
            `  - { id: ${id}, cert: { file: server.crt }, key: { file: server.key }, snis: [${id}.test], client: { ca: { file: ca.crt } } }`,
        ),
        'services:',
        `  - { name: a, upstream: "${upstreamUrl}", routes: [{ name: all, path: "/*" }] }`,
      ].join('\n'),
    );
    const r = await cli('apply', '--config', file, '--etcd', etcd.url, '--prefix', prefix, '--prune');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /wrote 3 keys, removed 1 under .* in one transaction \(revision (\d+)\)/);
    const all = await etcd.client.rangePrefix(`${prefix}/`);
    assert.deepEqual(all.kvs.map((k) => k.key).sort(), [
      `${prefix}/other/k`,
      `${prefix}/services/a`,
      `${prefix}/ssls/a`,
      `${prefix}/ssls/a/notes`,
      `${prefix}/ssls/b`,
    ]);
    const written = all.kvs.filter((k) => /\/(ssls|services)\/[^/]+$/.test(k.key));
    assert.equal(new Set(written.map((k) => k.modRevision)).size, 1, 'one transaction: one revision');
    assert.match(written.find((k) => k.key.endsWith('/ssls/a'))!.value.toString(), /BEGIN CERTIFICATE/, 'PEM inline');
  });
});
