// npm start [-- --port 9443 --certs DIR --host mtls.httpbin.org --upstream URL]
//
// The guide's mtls-auth-app, served by the `mtls-gate serve` command's own code from gateway.yaml
// (beside this file). Before it starts: certificates in the guide's file names (minted unless DIR
// has them), and, without --upstream, an httpbin-compatible upstream on loopback. The flags reach
// the configuration through its ${VAR} values and the command's --listen.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLog } from '../../src/cli/log.js';
import { serve } from '../../src/cli/serve.js';
import { ensureCertificates } from './app.js';
import { startHttpbin } from './httpbin.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9443' },
    certs: { type: 'string', default: 'examples/mtls-auth-app/certs' },
    host: { type: 'string', default: 'mtls.httpbin.org' },
    upstream: { type: 'string' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: expected 0 to 65535, received ${JSON.stringify(values.port)}`);
  process.exit(2);
}
const certs = resolve(values.certs!);
const host = values.host!;
if (await ensureCertificates(certs, host))
  console.log(`wrote ca.crt, server.crt, server.key, client.crt, client.key to ${certs}`);
const upstream = values.upstream ?? (await startHttpbin()).url;

process.env.MTLS_CERTS = certs;
process.env.MTLS_HOST = host;
process.env.MTLS_UPSTREAM = upstream;
const config = join(dirname(fileURLToPath(import.meta.url)), 'gateway.yaml');
const log = createLog('human');
const serving = await serve({ config, workers: 1, listen: [{ host: '127.0.0.1', port }], log }).catch(
  async (err: unknown) => {
    console.error(`mtls-auth-app: ${(err as Error).message}`);
    await log.flush();
    process.exit(1);
  },
);
await log.flush();

const actual = serving.addresses[0]!.port;
const base = `curl https://${host}:${actual}/v1/json --resolve '${host}:${actual}:127.0.0.1' --cacert ${certs}/ca.crt`;
console.log(`mtls-auth-app listening on https://127.0.0.1:${actual} (HTTP/2 and HTTP/1.1), upstream ${upstream}
configuration: ${config} (edit it and it reloads)

Without a client certificate (HTTP 400):
  ${base} -i

With the client certificate (the slideshow):
  ${base} --cert ${certs}/client.crt --key ${certs}/client.key
`);
