import type { HttpRequest } from './types.js';

type Req = HttpRequest;
const kTarget = Symbol('mtls-gate.target');
type Marked = { [kTarget]?: string };

/**
 * Records the request target as the server received it, for frameworks that rewrite `req.url`
 * while routing (Express strips a mount path, koa-mount too). Adapters call this before the
 * guard or the router looks at the request, so the skip-list and the routes always see the full
 * target, whatever the mount point.
 */
export function setRequestTarget(req: Req, target: string): void {
  const c = req as unknown as Marked;
  if (c[kTarget] === undefined) c[kTarget] = target;
}

/** The request target as received (see {@link setRequestTarget}), otherwise `req.url`. */
export function targetOf(req: Req): string {
  return (req as unknown as Marked)[kTarget] ?? req.url ?? '/';
}
