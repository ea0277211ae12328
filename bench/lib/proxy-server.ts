// Systems for the proxy benchmark, each proxying GET /v1/json to the same upstream:
//   node-proxy: bare node:https with requestCert, checks the certificate, forwards with a keep-alive
//               http.Agent (hop-by-hop headers removed), no library
//   gate:       mtls-gate store + guard + router + proxy, as in the mtls-auth-app example
//   node --import tsx bench/lib/proxy-server.ts <node-proxy|gate> <json: {cert,key,ca,servername,upstream}>
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
// The built library (npm run build), as users run it; a non-literal specifier keeps type-checking
// independent of the build, the types come from the source.
const entry: string = '../../dist/index.js';
const { createRouter, createSslStore, mtlsGuard } = (await import(entry)) as typeof import('../../src/index.js');

const [mode, json] = process.argv.slice(2);
const { cert, key, ca, servername, upstream } = JSON.parse(json!) as { cert: string; key: string; ca: string; servername: string; upstream: string };
let server: https.Server;

if (mode === 'node-proxy') {
  const up = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const hop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
  server = https.createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, (req, res) => {
    const sock = req.socket as TLSSocket;
    if (!sock.authorized || !sock.getPeerX509Certificate()) {
      res.writeHead(400, { connection: 'close', 'content-type': 'text/html' });
      res.end('bad request');
      return;
    }
    if (req.url !== '/v1/json' || req.method !== 'GET') {
      res.writeHead(404);
      res.end();
      return;
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!hop.has(k)) headers[k] = v;
    headers['x-forwarded-for'] = sock.remoteAddress;
    const p = http.request({ host: up.hostname, port: up.port, path: '/json', method: 'GET', headers, agent }, (r) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(r.headers)) if (!hop.has(k)) out[k] = v;
      res.writeHead(r.statusCode!, out);
      r.pipe(res);
    });
    p.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    p.end();
  });
} else {
  const store = createSslStore();
  store.set({ id: 'bench', cert, key, snis: [servername], client: { ca } });
  const guard = mtlsGuard({ store });
  const router = createRouter({
    services: [{ name: 'mtls-auth-app', pathPrefix: '/v1', protocols: ['https'], hosts: [servername], upstream, routes: [{ name: 'json', path: '/json', methods: ['GET'] }] }],
  });
  server = https.createServer({ ...store.tlsOptions(), ALPNProtocols: ['http/1.1'] }, (req, res) => guard(req, res, () => router(req, res)));
}
server.keepAliveTimeout = 60_000;
process.on('SIGINT', () => process.exit(0));
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port, pid: process.pid }) + '\n'));
