// npm start [-- --port 9443 --certs DIR --host mtls.httpbin.org --upstream URL]
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureCertificates, startApp } from './app.js';

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
if (await ensureCertificates(certs, host)) console.log(`wrote ca.crt, server.crt, server.key, client.crt, client.key to ${certs}`);

const app = await startApp({ port, host, certs, upstream: values.upstream, log: (l) => console.log(l) });
let closing = false;
const stop = async () => {
  if (closing) return;
  closing = true;
  console.log('stopping');
  try {
    await app.close();
  } finally {
    process.exit(0);
  }
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const base = `curl https://${host}:${app.port}/v1/json --resolve '${host}:${app.port}:127.0.0.1' --cacert ${certs}/ca.crt`;
console.log(`mtls-auth-app listening on https://127.0.0.1:${app.port} (HTTP/2 and HTTP/1.1), upstream ${app.upstream}

Without a client certificate (HTTP 400):
  ${base} -i

With the client certificate (the slideshow):
  ${base} --cert ${certs}/client.crt --key ${certs}/client.key
`);

