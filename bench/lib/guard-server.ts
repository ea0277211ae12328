// The two servers the guard benchmark compares, same certificates, same answer:
//   bare:  node:https with requestCert, answering 200 itself (the floor mtls-gate sits on)
//   guard: the same behind mtlsGuard with an SSL store (SNI object with client.ca)
//   node --import tsx bench/lib/guard-server.ts <bare|guard> <json: {cert,key,ca,servername}>
import https from 'node:https';
import type { AddressInfo } from 'node:net';
// The built library (npm run build), as users run it; a non-literal specifier keeps type-checking
// independent of the build, the types come from the source.
const entry: string = '../../dist/index.js';
const { createSslStore, mtlsGuard } = (await import(entry)) as typeof import('../../src/index.js');

const [mode, json] = process.argv.slice(2);
const { cert, key, ca, servername } = JSON.parse(json!) as { cert: string; key: string; ca: string; servername: string };
const body = Buffer.from('{"ok":true}\n');
const answer = (res: import('node:http').ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
};

let server: https.Server;
if (mode === 'bare') {
  server = https.createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, (req, res) => answer(res));
} else {
  const store = createSslStore();
  store.set({ id: 'bench', cert, key, snis: [servername], client: { ca } });
  const guard = mtlsGuard({ store });
  server = https.createServer({ ...store.tlsOptions(), ALPNProtocols: ['http/1.1'] }, (req, res) => guard(req, res, () => answer(res)));
}
server.keepAliveTimeout = 60_000;
process.on('SIGINT', () => process.exit(0));
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
