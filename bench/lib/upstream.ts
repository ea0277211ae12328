// A cheap upstream for proxy benchmarks: the httpbin /json document from memory, keep-alive.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SLIDESHOW } from '../../examples/mtls-auth-app/httpbin.js';

const body = Buffer.from(JSON.stringify(SLIDESHOW, null, 2) + '\n');
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n'));
