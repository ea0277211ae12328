/**
 * The gateway's access log: one line per request, JSON or the common log format, with the guard's
 * verdict and the client's certificate fingerprint. Off unless the configuration's `accessLog` asks
 * for it. Values a client chose (target, host, SNI) are cut to 512 characters and escaped; the line
 * is built after the response, off the request's path.
 */
import type { ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { RejectReason } from '../errors.js';
import { type GuardRequest, type GuardResponse, getClientIdentity } from '../guard/guard.js';
import { targetOf } from '../http/target.js';
import { connectionSocket, tlsSocketOf } from '../http/types.js';
import { matchedRouteName } from '../policy/lookup.js';

export type AccessLogFormat = 'json' | 'common';

const kRejected = Symbol('mtls-gate.rejected');
/** Remembers why the guard refused a request (from onReject), for its log line. */
export function noteRejection(req: object, reason: RejectReason): void {
  (req as { [kRejected]?: RejectReason })[kRejected] = reason;
}

const MAX = 512;
const cut = (s: string) => (s.length > MAX ? `${s.slice(0, MAX)}...` : s);
/** Common-format field: printable ASCII without quotes or backslashes, else escaped as \xHH. */
const clf = (s: string) =>
  cut(s).replace(/[^\x20-\x7e]|["\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');
const clfTime = (d: Date) =>
  `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;

/** Starts timing a request; the returned function writes its line when the response is done. */
export function accessLogger(
  format: AccessLogFormat,
  write: (line: string) => void,
): (req: GuardRequest, res: GuardResponse) => void {
  return (req, res) => {
    const start = performance.now();
    // Read now: by the response's end an HTTP/2 stream has left its session, and a socket the client
    // closed has no address any more.
    const remote = connectionSocket(req)?.remoteAddress ?? '-';
    const sni = (tlsSocketOf(req) as TLSSocket | undefined)?.servername;
    res.once('close', () => {
      const identity = getClientIdentity(req);
      const rejected = (req as { [kRejected]?: RejectReason })[kRejected];
      const r = res as ServerResponse;
      const length = r.getHeader('content-length');
      const status = r.headersSent ? r.statusCode : 0;
      const entry = {
        time: new Date().toISOString(),
        remote,
        method: cut(req.method ?? '-'),
        target: cut(targetOf(req)),
        protocol: req.httpVersionMajor === 2 ? 'HTTP/2.0' : `HTTP/${req.httpVersion}`,
        status,
        bytes: typeof length === 'number' || typeof length === 'string' ? Number(length) : null,
        ms: Math.round((performance.now() - start) * 100) / 100,
        sni: typeof sni === 'string' && sni !== '' ? cut(sni) : null,
        host: cut(String(req.headers[':authority'] ?? req.headers.host ?? '')),
        route: matchedRouteName(req) ?? null,
        // `aborted`: the client left before an answer was sent.
        verdict: rejected ?? (status === 0 ? 'aborted' : 'ok'),
        fingerprint256: identity?.fingerprint256 ?? null,
        sslId: identity?.sslId ?? null,
      };
      // JSON escapes control characters but not U+0085, U+2028, U+2029, which some readers take as line ends.
      if (format === 'json')
        write(
          JSON.stringify(entry).replace(
            /[\u0085\u2028\u2029]/g,
            (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
          ),
        );
      else {
        const d = new Date(entry.time);
        write(
          `${entry.remote} - - [${clfTime(d)}] "${clf(`${entry.method} ${entry.target} ${entry.protocol}`)}" ${status || '-'} ${entry.bytes ?? '-'} "${entry.verdict}" "${entry.fingerprint256 ?? '-'}" ${entry.ms}`,
        );
      }
    });
  };
}
