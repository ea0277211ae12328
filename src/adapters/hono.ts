/**
 * Hono 4 adapter, for Hono served by `@hono/node-server`: the core guard as Hono middleware.
 *
 * Only translation happens here: every verdict comes from the core guard, run on the Node request
 * and response that `@hono/node-server` passes as bindings (`c.env.incoming`, `c.env.outgoing`);
 * the TLS socket and its client certificate exist only there. A refused request is answered on
 * that response by the core, and the middleware returns a response marked with the headers of
 * `RESPONSE_ALREADY_SENT`, which `@hono/node-server` does not write.
 *
 * `incoming.url` is the target the client sent: Hono's `route()`, `basePath()` and `mount()`
 * change only the WHATWG `Request` Hono routes on, so the skip-list sees the full path wherever
 * the middleware is used, and no target needs recording (unlike Express and Koa).
 *
 * Only types are imported from `hono` and `@hono/node-server`; at run time the module reads one
 * constant of `@hono/node-server/utils/response`, which imports nothing.
 *
 * @module mtls-gate/hono
 */

import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { MiddlewareHandler } from 'hono';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import {
  mtlsGuard as coreGuard,
  type GuardOptions,
  type GuardRequest,
  type GuardResponse,
  getClientIdentity,
  type MtlsGuard,
} from '../guard/guard.js';
import type { ClientIdentity } from '../verify/identity.js';

/** What the guard sets on the context (`c.get('mtls')`, `c.var.mtls`). */
export interface MtlsVariables {
  /**
   * The verified client, or `null` when the request needed no certificate (an SSL object
   * without `client`, or a skip-list path).
   */
  mtls: ClientIdentity | null;
}

/** The Hono middleware {@link mtlsGuard} returns. */
export type HonoMtlsMiddleware = MiddlewareHandler<{ Variables: MtlsVariables }>;

/** The bindings `@hono/node-server` gives every request (its `HttpBindings` or `Http2Bindings`). */
interface NodeBindings {
  incoming?: GuardRequest;
  outgoing?: GuardResponse;
}

/**
 * A response `@hono/node-server` does not write (the headers of `RESPONSE_ALREADY_SENT`, with no
 * body), carrying the status the core sent, for Hono middleware that looks at `c.res` afterwards
 * (a logger). A new one each time: middleware may change `c.res.headers`, and the constant is
 * shared by every request.
 */
function alreadySent(outgoing: GuardResponse): Response {
  const status = outgoing.statusCode >= 200 && outgoing.statusCode <= 599 ? outgoing.statusCode : 400;
  return new Response(null, { status, headers: RESPONSE_ALREADY_SENT.headers });
}

/**
 * The guard as Hono middleware: same options and verdicts as the core `mtlsGuard`. A request that
 * passes continues with `c.var.mtls` set; a refused one has been answered with the 400 page and
 * the handlers after the guard do not run. Outside `@hono/node-server` (no `incoming`/`outgoing`
 * bindings: another runtime, or `app.request()`), the middleware throws `ERR_MTLS_INVALID_OPTION`
 * and nothing after it runs.
 *
 * @example
 * ```ts
 * import https from 'node:https';
 * import { createAdaptorServer, type HttpBindings } from '@hono/node-server';
 * import { Hono } from 'hono';
 * import { createSslStore } from 'mtls-gate';
 * import { mtlsGuard, type MtlsVariables } from 'mtls-gate/hono';
 *
 * declare const cert: string, key: string, ca: string;
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } });
 * const app = new Hono<{ Bindings: HttpBindings; Variables: MtlsVariables }>();
 * app.use(mtlsGuard({ store }));
 * app.get('/whoami', (c) => c.json({ subject: c.var.mtls?.subject ?? null }));
 * const server = createAdaptorServer({ fetch: app.fetch, createServer: https.createServer, serverOptions: store.tlsOptions() });
 * store.attach(server as https.Server).listen(8443);
 * ```
 */
export function mtlsGuard(options: GuardOptions): HonoMtlsMiddleware {
  const guard: MtlsGuard = coreGuard(options);
  return async function mtlsGuardHono(c, next) {
    const { incoming, outgoing } = (c.env ?? {}) as NodeBindings;
    if (typeof incoming?.headers !== 'object' || typeof outgoing?.end !== 'function') {
      // Fail closed: without the Node request there is no TLS socket to judge.
      throw new MtlsGateConfigError(
        ErrorCodes.INVALID_OPTION,
        'c.env',
        'expected the bindings of @hono/node-server (c.env.incoming, c.env.outgoing): mtls-gate/hono runs on Node only',
      );
    }
    // Awaited: a verdict may wait for an OCSP answer.
    if (!(await guard.run(incoming, outgoing))) return alreadySent(outgoing);
    c.set('mtls', getClientIdentity(incoming));
    await next();
  };
}

export type { ClientIdentity, GuardOptions };
