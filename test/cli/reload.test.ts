// A reload under load: bounded loopback load on keep-alive connections (HTTP/1.1 and HTTP/2)
// while the config file changes every 100 ms (an SSL object's desc, a route added and removed):
// zero failed requests.

import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { type Cli, fixture, gatewayYaml, startCli, stopCli } from './run.js';

type Fixture = Awaited<ReturnType<typeof fixture>>;
let fx: Fixture;
let cli: Cli;
let port: number;
let statusPort: number;

before(async () => {
  fx = await fixture();
  const config = fx.write('gateway.yaml', gatewayYaml(['a', 'b'], fx.upstreamUrl));
  cli = startCli(['serve', '--config', config, '--status', '127.0.0.1:0']);
  port = Number((await cli.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]);
  statusPort = Number((await cli.waitFor(/status on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
});
after(async () => {
  await stopCli(cli);
  await fx.cleanup();
});

test('every 100 ms a changed file, 4 s of load on 8 keep-alive connections: zero failed requests', async () => {
  const DURATION = 4000;
  const until = Date.now() + DURATION;
  let edits = 0;
  const editor = (async () => {
    while (Date.now() < until) {
      edits++;
      // Alternately an SSL object's desc (that object is compiled again, ticket keys rotate) and an
      // extra route (the route table is swapped).
      const extra =
        edits % 2 === 0
          ? ''
          : `  - name: extra-${edits}\n    upstream: ${fx.upstreamUrl}\n    routes: [{ name: r, path: /extra }]`;
      const yaml =
        gatewayYaml(['a', 'b'], fx.upstreamUrl).replace('  - id: b\n', `  - id: b\n    desc: "edit ${edits}"\n`) +
        (extra ? `\n${extra}` : '');
      // The extra service goes under `services:`: the YAML ends with that list.
      fx.write('gateway.yaml', yaml);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const failures: string[] = [];
  let ok = 0;
  const h1 = async (tenant: typeof fx.a) => {
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets: 1,
      cert: tenant.client.cert,
      key: tenant.client.key,
      rejectUnauthorized: false,
      servername: tenant.host,
    });
    try {
      while (Date.now() < until) {
        const status = await new Promise<number>((resolve) => {
          const req = https.request(
            { host: '127.0.0.1', port, path: '/t/h1', agent, headers: { host: tenant.host } },
            (res) => {
              res.resume();
              res.once('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.once('error', (e) => resolve(-failures.push(`h1 ${tenant.host}: ${e.message}`)));
          req.end();
        });
        if (status === 200) ok++;
        else if (status > 0) failures.push(`h1 ${tenant.host}: ${status}`);
      }
    } finally {
      agent.destroy();
    }
  };
  const h2 = async (tenant: typeof fx.a) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      servername: tenant.host,
      rejectUnauthorized: false,
      cert: tenant.client.cert,
      key: tenant.client.key,
    });
    session.on('error', (e) => failures.push(`h2 session ${tenant.host}: ${e.message}`));
    try {
      while (Date.now() < until) {
        const status = await new Promise<number>((resolve) => {
          const req = session.request({ ':path': '/t/h2', ':authority': tenant.host });
          let code = 0;
          req.on('response', (h) => (code = Number(h[':status'])));
          req.on('end', () => resolve(code));
          req.on('error', (e) => resolve(-failures.push(`h2 ${tenant.host}: ${e.message}`)));
          req.resume();
          req.end();
        });
        if (status === 200) ok++;
        else if (status > 0) failures.push(`h2 ${tenant.host}: ${status}`);
      }
    } finally {
      session.close();
    }
  };
  await Promise.all([h1(fx.a), h1(fx.b), h1(fx.a), h1(fx.b), h2(fx.a), h2(fx.b), h2(fx.a), h2(fx.b)]);
  await editor;
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed of ${ok + failures.length}`);
  assert.ok(ok > 200, `requests served: ${ok}`);
  // The edits were applied (not merely written): many revisions, no refused configuration.
  const st = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as {
    revision: number;
    lastError: unknown;
  };
  assert.ok(st.revision >= 5, `revisions applied: ${st.revision} for ${edits} edits`);
  assert.equal(st.lastError, undefined);
  console.log(`# reload under load: ${ok} requests, 0 failed, ${edits} edits, ${st.revision} revisions applied`);
});
