/**
 * Koa 2 and 3 adapter: the core guard and router as Koa middleware.
 *
 * Only translation happens here: every verdict comes from the core guard. The adapter records
 * `ctx.originalUrl` as the request target (koa-mount rewrites `ctx.path`, hence `req.url`), and
 * when the core answers itself (a 400, or a proxied response) it sets `ctx.respond = false` so
 * Koa leaves the response alone.
 *
 * Only types are imported from `koa`: this module loads without Koa installed.
 *
 * @module mtls-gate/koa
 */
import type { ServerResponse } from 'node:http';
import type { DefaultContext, Middleware } from 'koa';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import {
  mtlsGuard as coreGuard,
  type GuardOptions,
  type GuardRequest,
  getClientIdentity,
  type MtlsGuard,
} from '../guard/guard.js';
import { setRequestTarget } from '../http/target.js';
import type { HttpResponse } from '../http/types.js';
import { describe } from '../internal/validate.js';
import type { Router } from '../router/router.js';
import type { ClientIdentity } from '../verify/identity.js';

/** What the guard adds to `ctx.state`. */
export interface MtlsState {
  /**
   * The verified client, or `null` when the request needed no certificate (an SSL object
   * without `client`, or a skip-list path).
   */
  mtls: ClientIdentity | null;
}

/** The parts of a Koa context the adapter uses. */
interface KoaContextLike {
  req: GuardRequest;
  res: HttpResponse;
  originalUrl: string;
  state: Record<string, unknown>;
  respond?: boolean;
}

/** Resolves when the response is over (sent, or the connection gone). */
function responseDone(res: HttpResponse): Promise<void> {
  const r = res as ServerResponse;
  if (r.writableFinished || r.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      r.off('finish', done);
      r.off('close', done);
      resolve();
    };
    r.on('finish', done);
    r.on('close', done);
  });
}

/**
 * The guard as Koa middleware: same options and verdicts as the core `mtlsGuard`. A request that
 * passes continues with `ctx.state.mtls` set; a failed one is answered with the 400 page and the
 * downstream middleware does not run.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import https from 'node:https';
 * import { createSslStore } from 'mtls-gate';
 * import { mtlsGuard } from 'mtls-gate/koa';
 *
 * declare const cert: string, key: string, ca: string;
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } });
 * const app = new Koa();
 * app.use(mtlsGuard({ store })).use((ctx) => {
 *   ctx.body = { subject: ctx.state.mtls?.subject ?? null };
 * });
 * store.attach(https.createServer(store.tlsOptions(), app.callback())).listen(8443);
 * ```
 */
export function mtlsGuard(options: GuardOptions): Middleware<MtlsState, DefaultContext> {
  const guard: MtlsGuard = coreGuard(options);
  const middleware = async function mtlsGuardKoa(ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> {
    setRequestTarget(ctx.req, ctx.originalUrl);
    // Awaited: a verdict may wait for an OCSP answer.
    const passed = await guard.run(ctx.req, ctx.res);
    if (!passed) {
      ctx.respond = false;
      return;
    }
    ctx.state.mtls = getClientIdentity(ctx.req);
    await next();
  };
  return middleware as unknown as Middleware<MtlsState, DefaultContext>;
}

/**
 * A router from `createRouter` as Koa middleware. A request that matches a route is proxied (or
 * redirected, or answered 400 when its host or path is malformed) and the middleware resolves
 * when the response is over; one that matches none goes on to `next()`. Mount it before any body
 * parser: the router streams the request body to the upstream.
 *
 * @example
 * ```ts
 * import Koa from 'koa';
 * import { createRouter } from 'mtls-gate';
 * import { mtlsRouter } from 'mtls-gate/koa';
 *
 * const router = createRouter({ services: [{ name: 'api', pathPrefix: '/v1', upstream: 'http://127.0.0.1:8080', routes: [{ name: 'all', path: '/', pathType: 'prefix' }] }] });
 * const app = new Koa();
 * app.use(mtlsRouter(router));
 * ```
 */
export function mtlsRouter(router: Router): Middleware {
  if (typeof router !== 'function' || typeof (router as Partial<Router>).update !== 'function') {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'router',
      `expected a router from createRouter(), received ${describe(router)}`,
    );
  }
  const middleware = async function mtlsRouterKoa(ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> {
    setRequestTarget(ctx.req, ctx.originalUrl);
    let unmatched = false;
    router(ctx.req, ctx.res, () => {
      unmatched = true;
    });
    if (unmatched) {
      await next();
      return;
    }
    ctx.respond = false;
    await responseDone(ctx.res);
  };
  return middleware as unknown as Middleware;
}

export type { ClientIdentity, GuardOptions };
