import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { requestHost } from './host.js';
import { normalizePath } from './path.js';
import { targetOf } from './target.js';

type Req = IncomingMessage | Http2ServerRequest;
const kHost = Symbol('mtls-gate.host');
const kPath = Symbol('mtls-gate.path');
type Cached = { [kHost]?: string | undefined | null; [kPath]?: string | undefined | null };

/**
 * The request's host and normalised path, computed once per request and shared by the guard and
 * the router, so both decide on the very same values (and the work is not done twice).
 * `null` marks "computed, malformed" in the cache; callers get undefined.
 */
export function hostOf(req: Req): string | undefined {
  const c = req as unknown as Cached;
  let v = c[kHost];
  if (v === undefined) c[kHost] = v = requestHost(req) ?? null;
  return v ?? undefined;
}

export function pathOf(req: Req): string | undefined {
  const c = req as unknown as Cached;
  let v = c[kPath];
  if (v === undefined) c[kPath] = v = normalizePath(targetOf(req)) ?? null;
  return v ?? undefined;
}
