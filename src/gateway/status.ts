/**
 * The status listener: plain HTTP for operators and orchestrators, on its own address (loopback by
 * default). `GET /ready` answers 200 once a configuration serves and 503 while draining; `GET
 * /status` the revision, the counts and the last refused configuration with its issues; `GET
 * /metrics` the counters in the Prometheus text format.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConfigIssue } from '../errors.js';

/** What `GET /status` reports of one gateway. */
export interface GatewayStatus {
  ready: boolean;
  revision: number;
  /** Digest of the configuration serving. */
  digest: string;
  appliedAt: string | undefined;
  ssls: number;
  services: number;
  routes: number;
  inFlight: number;
  /** Requests received since start. */
  requests: number;
  listeners: string[];
  /** The last configuration refused since the last one applied (the running one keeps serving). */
  lastError: { at: string; message: string; issues: readonly ConfigIssue[] } | undefined;
  /** The configuration source's state (etcd: endpoint, revision, connected, invalid values). */
  source?: unknown;
}

/** Starts the status listener. */
export async function serveStatus(
  at: { host?: string; port: number },
  report: { ready: () => boolean; body: () => unknown; metrics?: () => string },
): Promise<{ address: { host: string; port: number }; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('cache-control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/ready') {
      const ok = report.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
    } else if (path === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(report.body(), null, 2)}\n`);
    } else if (path === '/metrics' && report.metrics) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(report.metrics());
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found: try /ready, /status${report.metrics ? ' or /metrics' : ''}\n`);
    }
  });
  // A status client holds nothing open for long.
  server.keepAliveTimeout = 2000;
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: { host: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
