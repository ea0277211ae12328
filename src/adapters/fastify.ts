/**
 * Fastify 5 adapter: the core guard as a Fastify plugin (and as an `onRequest` hook).
 *
 * Only translation happens here: every verdict comes from the core guard, run on `request.raw` and
 * `reply.raw`. The adapter records `request.originalUrl` as the request target (Fastify's
 * `rewriteUrl` changes `req.url` before routing; prefixes never do), and when the core has answered
 * a refusal it calls `reply.hijack()`, so Fastify neither writes again nor runs the route.
 *
 * Only types are imported from `fastify`: this module loads without Fastify installed. Its one
 * runtime import is `fastify-plugin` (a dependency of mtls-gate: a few dozen lines, no dependencies
 * of its own), which lets the hook and the `request.mtls` decorator apply to the context the
 * plugin is registered in rather than to a context of their own.
 *
 * @module mtls-gate/fastify
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import {
  mtlsGuard as coreGuard,
  type GuardOptions,
  type GuardRequest,
  type GuardResponse,
  getClientIdentity,
  type MtlsGuard,
} from '../guard/guard.js';
import { setRequestTarget } from '../http/target.js';
import type { ClientIdentity } from '../verify/identity.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Set by mtls-gate's guard when the request passed: the verified client, or `null` when the
     * request needed no certificate (an SSL object without `client`, or a skip-list path). Null as
     * well before the guard ran; undefined outside the context the plugin was registered in.
     */
    mtls: ClientIdentity | null;
  }
}

/** The parts of a Fastify request the hook uses (a `FastifyRequest` of any server has them). */
export interface FastifyRequestLike {
  raw: GuardRequest;
  originalUrl: string;
  mtls: ClientIdentity | null;
}

/** The parts of a Fastify reply the hook uses. */
export interface FastifyReplyLike {
  raw: GuardResponse;
  hijack(): unknown;
}

/**
 * An async `onRequest` hook. Typed structurally, so that it fits the hooks of every Fastify
 * server type (HTTP/1.1, HTTPS, HTTP/2), whose requests differ in `raw`.
 */
export type FastifyMtlsHook = (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<void>;

/**
 * The guard as a Fastify `onRequest` hook, for one route (`onRequest: mtlsGuard(...)` in its
 * options) or added by hand; the {@link fastifyMtlsGate} plugin registers this hook for every
 * route of a context. A request that passes continues with `request.mtls` set; a refused one has
 * been answered with the 400 page and goes no further (no handler, no error handler).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createSslStore } from 'mtls-gate';
 * import { mtlsGuard } from 'mtls-gate/fastify';
 *
 * const store = createSslStore();
 * const app = Fastify({ https: store.tlsOptions() });
 * store.attach(app.server);
 * app.decorateRequest('mtls', null);
 * app.get('/admin', { onRequest: mtlsGuard({ store }) }, async (request) => ({ subject: request.mtls?.subject ?? null }));
 * ```
 */
export function mtlsGuard(options: GuardOptions): FastifyMtlsHook {
  const guard: MtlsGuard = coreGuard(options);
  return async function mtlsGuardFastify(request, reply) {
    setRequestTarget(request.raw, request.originalUrl);
    // Awaited: a verdict may wait for an OCSP answer.
    if (!(await guard.run(request.raw, reply.raw))) {
      // Answered by the core (or, when the response had started, destroyed). Hijacked, Fastify
      // leaves reply.raw alone: no second write ("Reply already sent"), no route handler.
      reply.hijack();
      return;
    }
    request.mtls = getClientIdentity(request.raw);
  };
}

const plugin: FastifyPluginAsync<GuardOptions> = async (fastify, options) => {
  // Options checked here, once, when the plugin loads: a bad one fails `ready()` / `listen()`.
  const hook = mtlsGuard(options);
  // Once per instance tree: the plugin registered again in a child context (or beside the route hook) shares it.
  if (!fastify.hasRequestDecorator('mtls')) fastify.decorateRequest('mtls', null);
  fastify.addHook('onRequest', hook);
};

/**
 * The guard as a Fastify plugin: same options and verdicts as the core `mtlsGuard`. It adds an
 * `onRequest` hook, the first step of Fastify's request lifecycle (before body parsing and
 * validation), to every route of the context it is registered in, and decorates `request.mtls`.
 * Wrapped with `fastify-plugin`: registered at the root, it guards every route of the application,
 * the 404 handler included; registered inside an encapsulated plugin, that plugin's routes only.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createSslStore } from 'mtls-gate';
 * import mtlsGate from 'mtls-gate/fastify';
 *
 * declare const cert: string, key: string, ca: string;
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } });
 * const app = Fastify({ https: store.tlsOptions() });
 * store.attach(app.server);
 * await app.register(mtlsGate, { store });
 * app.get('/whoami', async (request) => ({ subject: request.mtls?.subject ?? null }));
 * await app.listen({ port: 8443 });
 * ```
 */
export const fastifyMtlsGate = fp(plugin, { name: 'mtls-gate', fastify: '5.x' });

export default fastifyMtlsGate;

export type { ClientIdentity, GuardOptions };
