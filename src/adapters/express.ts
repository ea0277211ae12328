/**
 * Express 4 and 5 adapter: the core guard and router as Express middleware.
 *
 * Only translation happens here: every verdict comes from the core {@link coreGuard}. The adapter
 * records the target Express received (`req.originalUrl`), because Express strips the mount path
 * from `req.url` inside `app.use('/mount', …)`; the skip-list and the routes always see the full
 * path, wherever the middleware is mounted.
 *
 * @module mtls-gate/express
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { mtlsGuard as coreGuard, type GuardOptions, getClientIdentity, type MtlsGuard } from '../guard/guard.js';
import { setRequestTarget } from '../http/target.js';
import { describe } from '../internal/validate.js';
import type { Router } from '../router/router.js';
import type { ClientIdentity } from '../verify/identity.js';

declare global {
  // Express declares its request type in this global namespace; merging adds `req.mtls`.
  namespace Express {
    interface Request {
      /**
       * Set by mtls-gate's guard when the request passed: the verified client, or `null` when
       * the request needed no certificate (an SSL object without `client`, or a skip-list path).
       * Undefined before the guard ran.
       */
      mtls?: ClientIdentity | null;
    }
  }
}

/** The request shape the adapter needs from Express (its `Request` has all of it). */
export type ExpressRequest = IncomingMessage & { originalUrl?: string; mtls?: ClientIdentity | null };

/** An Express middleware. Typed structurally, so this module loads without Express installed. */
export type ExpressMiddleware = (req: ExpressRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

function recordTarget(req: ExpressRequest): void {
  if (typeof req.originalUrl === 'string') setRequestTarget(req, req.originalUrl);
}

/**
 * The guard as Express middleware: same options and verdicts as the core `mtlsGuard`. A request
 * that passes continues with `req.mtls` set; a failed one is answered with the 400 page and the
 * chain stops there (the reject is not an Express error, so error handlers do not see it).
 *
 * @example
 * ```ts
 * import express from 'express';
 * import https from 'node:https';
 * import { createSslStore } from 'mtls-gate';
 * import { mtlsGuard } from 'mtls-gate/express';
 *
 * declare const cert: string, key: string, ca: string;
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } });
 * const app = express();
 * app.use(mtlsGuard({ store }));
 * app.get('/whoami', (req, res) => { res.json({ subject: req.mtls?.subject ?? null }); });
 * store.attach(https.createServer(store.tlsOptions(), app)).listen(8443);
 * ```
 */
export function mtlsGuard(options: GuardOptions): ExpressMiddleware {
  const guard: MtlsGuard = coreGuard(options);
  return function mtlsGuardExpress(req, res, next) {
    recordTarget(req);
    guard(req, res, () => {
      req.mtls = getClientIdentity(req);
      next();
    });
  };
}

/**
 * A router from `createRouter` as Express middleware. A request that matches a route is proxied
 * (or redirected, or answered 400 when its host or path is malformed); one that matches none goes
 * on to the next middleware. Mount it before any body parser: the router streams the request
 * body to the upstream, so nothing may have read it.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createRouter } from 'mtls-gate';
 * import { mtlsRouter } from 'mtls-gate/express';
 *
 * const router = createRouter({ services: [{ name: 'api', pathPrefix: '/v1', upstream: 'http://127.0.0.1:8080', routes: [{ name: 'all', path: '/', pathType: 'prefix' }] }] });
 * const app = express();
 * app.use(mtlsRouter(router));
 * app.use((req, res) => { res.status(404).send('no route'); });
 * ```
 */
export function mtlsRouter(router: Router): ExpressMiddleware {
  if (typeof router !== 'function' || typeof (router as Partial<Router>).update !== 'function') {
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'router',
      `expected a router from createRouter(), received ${describe(router)}`,
    );
  }
  return function mtlsRouterExpress(req, res, next) {
    recordTarget(req);
    router(req, res, () => next());
  };
}

export type { ClientIdentity, GuardOptions };
