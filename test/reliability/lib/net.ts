// Loopback servers and raw clients for the reliability tests.

import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { ClientCertificate } from '../../../src/testing/index.js';
import { pem } from './der.js';

/** The same certificate with one bit of its signature flipped (the last DER byte lies in the signature value). */
export function damageSignature(certPem: string): string {
  const der = Buffer.from(new X509Certificate(certPem).raw);
  der[der.length - 1]! ^= 0x01;
  return pem(der);
}

import { type Listening, listen } from '../../helpers.js';

export { type Listening, listen };

export interface EchoSeen {
  url: string;
  rawHeaders: string[];
}

/** An HTTP/1.1 upstream that records what it received and answers with it as JSON. */
export async function startEcho(): Promise<Listening & { seen: EchoSeen[] }> {
  const seen: EchoSeen[] = [];
  const server = http.createServer((req, res) => {
    const s = { url: req.url ?? '', rawHeaders: req.rawHeaders };
    seen.push(s);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(s));
    });
  });
  return { ...(await listen(server)), seen };
}

export interface RawReply {
  status: number;
  head: string;
  body: string;
}

/**
 * Writes `requests` (raw HTTP/1.1, several for pipelining) on one TLS connection and reads until
 * the server closes it or `idleMs` pass without data. Returns every response found, in order.
 */
export function rawHttp1(
  port: number,
  o: { servername?: string; client?: ClientCertificate; requests: string; idleMs?: number },
): Promise<RawReply[]> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: o.servername,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(o.client ? { cert: o.client.chain ?? o.client.cert, key: o.client.key } : {}),
    });
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponses(Buffer.concat(chunks).toString('latin1')));
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, o.idleMs ?? 1500);
    };
    socket.on('secureConnect', () => {
      socket.write(o.requests);
      arm();
    });
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      arm();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length) finish();
      else reject(err);
    });
  });
}

function parseResponses(text: string): RawReply[] {
  const out: RawReply[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    const head = rest.slice(0, end);
    const status = Number(head.slice(9, 12));
    const len = /\r\ncontent-length: *(\d+)/i.exec(head);
    let body = '';
    let next = end + 4;
    if (len) {
      body = rest.slice(next, next + Number(len[1]));
      next += Number(len[1]);
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      let p = next;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', p);
        if (lineEnd === -1) break;
        const size = parseInt(rest.slice(p, lineEnd), 16);
        p = lineEnd + 2;
        if (!size) {
          p += 2;
          break;
        }
        body += rest.slice(p, p + size);
        p += size + 2;
      }
      next = p;
    } else {
      body = rest.slice(next);
      next = rest.length;
    }
    out.push({ status, head, body });
    rest = rest.slice(next);
  }
  return out;
}

/** One HTTP/2 session for several streams (the way a browser coalesces hosts onto one connection). */
export function h2Session(port: number, o: { servername?: string; client?: ClientCertificate; session?: Buffer }) {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    servername: o.servername,
    rejectUnauthorized: false,
    ...(o.client ? { cert: o.client.chain ?? o.client.cert, key: o.client.key } : {}),
    ...(o.session ? { session: o.session } : {}),
  });
  session.on('error', () => {});
  const request = (headers: http2.OutgoingHttpHeaders): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const st = session.request({ ':method': 'GET', ...headers });
      let status = 0;
      const chunks: Buffer[] = [];
      st.on('response', (h) => (status = Number(h[':status'])));
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8') }));
      st.on('error', reject);
      st.end();
    });
  return { session, request, close: () => new Promise<void>((r) => session.close(() => r())) };
}
