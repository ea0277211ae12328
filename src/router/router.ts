import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import type { GuardRequest, GuardResponse } from '../guard/guard.js';
import { hostOf, pathOf } from '../http/facts.js';
import { HeaderNames } from '../http/forwarded.js';
import { normalizeHost } from '../http/host.js';
import { sendErrorPage, sendRouteNotFound } from '../http/pages.js';
import { normalizePath } from '../http/path.js';
import { targetOf } from '../http/target.js';
import { tlsSocketOf } from '../http/types.js';
import { callHook } from '../internal/hooks.js';
import { plainCopy } from '../internal/plain.js';
import { lazySchema, parse, z } from '../internal/schema.js';
import { describe, isPlainObject, underField } from '../internal/validate.js';
import { UpstreamPools } from '../proxy/pools.js';
import { forward, type ProxyErrorInfo } from '../proxy/proxy.js';
import { forwardUpgrade, refuseUpgrade } from '../proxy/upgrade.js';
import { type CompiledRoute, compileServices, type ServiceConfig } from './config.js';
import { type RouterSettings, routerSettingsSchema } from './schema.js';

export type { CompiledRoute };

import { getClientIdentity } from '../guard/guard.js';
import { RouteTable } from '../http/route-table.js';
import { kMatched, kPolicyLookup } from '../policy/lookup.js';
import type { CompiledPolicy } from '../policy/policy.js';

type Matched = { [kMatched]?: { table: object; route: CompiledRoute | undefined } };

type Req = GuardRequest;
type Res = GuardResponse;

/**
 * Options of {@link createRouter}: the services, the data settings (`httpsPort`, `page`, `stripRequestHeaders`) and the
 * hook.
 */
export interface RouterOptions extends RouterSettings {
  services: ServiceConfig[];
  /**
   * Called when proxying fails (502/503/504), for logs and metrics. Exceptions are contained (reported once as a
   * process warning).
   */
  onProxyError?: (info: ProxyErrorInfo, req: Req) => void;
}

const routerOptionsSchema = lazySchema(() =>
  routerSettingsSchema().extend({
    // The services are validated by compileServices, with their full paths.
    services: z.unknown(),
    onProxyError: z
      .custom<(info: ProxyErrorInfo, req: Req) => void>((v) => typeof v === 'function', {
        error: 'expected a function',
      })
      .optional(),
  }),
);
const batchSchema = lazySchema(() =>
  z.strictObject({
    set: z.array(z.unknown()).optional(),
    delete: z
      .array(z.string(), { error: (i) => (i.input === undefined ? undefined : 'expected an array of service names') })
      .optional(),
  }),
);

/** What a request matched. */
export interface RouteMatch {
  service: string;
  route: string;
  /** Path and query sent upstream (prefix stripped, upstream prefix not yet added). */
  upstreamPath: string;
}

/** `(req, res)` final handler or `(req, res, next)` middleware (no match: `next()` instead of 404). */
export interface Router {
  (req: Req, res: Res, next?: (err?: unknown) => void): void;
  /**
   * Replaces services and routes. Validates first; on a throw the old configuration keeps serving. Requests in flight
   * finish on the old one.
   */
  update(services: ServiceConfig[]): void;
  /**
   * Sets (inserts or replaces, by name) and deletes services at once: every service of `set` is
   * validated first (errors name the entry: `set[1].routes[0].path`), then the table is swapped
   * whole. A replaced service keeps its place in the configuration order; new ones go last.
   */
  apply(batch: { set?: ServiceConfig[]; delete?: string[] }): void;
  /**
   * What a request would match, without proxying (or undefined). `host` is normalised as a Host
   * header is. The guard's ownership check is not applied: a request the guard passed may still be
   * refused a host-bound route whose host belongs to another SSL object.
   */
  match(method: string, host: string, target: string, scheme?: 'http' | 'https'): RouteMatch | undefined;
  /** Closes upstream connection pools (after the servers stopped). */
  close(): Promise<void>;
  readonly size: number;
  /**
   * Proxies an HTTP/1.1 Upgrade request (`server.on('upgrade', ...)`, after the guard's `upgrade`):
   * to its route's upstream when the service has `enableWebsocket`, else refused with 400. No match:
   * 404.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** @internal The guard's policy lookup (`mtlsGuard({ policies: router })`). */
  [kPolicyLookup](req: object, host: string, path: string, method: string): CompiledPolicy | undefined;
  /** @internal The compiled routes (the gateway checks their policies against the SSL objects). */
  routes(): readonly CompiledRoute[];
}

/** `Upgrade: h2c` (HTTP/2 over cleartext, curl --http2 on http://) is served as a plain HTTP/1.1 request. */
export const isH2c = (v: string | string[] | undefined): boolean =>
  typeof v === 'string' && v.trim().toLowerCase() === 'h2c';

/**
 * An HTTP/1.1 upgrade request: an Upgrade header named in Connection (RFC 9110 7.8), h2c aside. An
 * Upgrade header alone is a hop-by-hop header like any other, removed on the way.
 */
function isUpgradeRequest(req: Req): boolean {
  const h = req.headers;
  if (req.httpVersionMajor !== 1 || h.upgrade === undefined || isH2c(h.upgrade)) return false;
  const c = h.connection;
  return typeof c === 'string' && c.split(',').some((t) => t.trim().toLowerCase() === 'upgrade');
}

/** Re-encodes a normalised (decoded) path for the upstream request line. */
function encodePath(p: string): string {
  return encodeURI(p).replace(/[?#]/g, (c) => encodeURIComponent(c));
}

function upstreamPath(route: CompiledRoute, normalized: string, target: string): string {
  const q = target.indexOf('?');
  const query = q === -1 ? '' : target.slice(q);
  const rawPath = q === -1 ? target : target.slice(0, q);
  const stripped = normalized.slice(route.stripPrefix.length) || '/';
  const path = stripped.startsWith('/') ? stripped : `/${stripped}`;
  // The raw path is sent as is when it is already normal (the common case); otherwise the
  // normalised path, re-encoded, so the upstream sees what the router matched.
  return (rawPath === normalized ? path : encodePath(path)) + query;
}

/**
 * Creates the router: services (path prefix, hosts, protocols, upstream) holding routes (exact or
 * prefix path, methods), matched in APISIX's order, and proxied to their upstream.
 *
 * A hand-written table rather than find-my-way: APISIX's semantics are host-scope first (a
 * host-bound prefix route beats a host-less exact one), plain string prefixes, and a method
 * mismatch that falls through to the next candidate; find-my-way is path-first with per-method
 * trees. The table is an exact-path Map plus prefixes by length, built once per update.
 *
 * @example
 * ```ts
 * import https from 'node:https';
 * import { createRouter, createSslStore, mtlsGuard } from 'mtls-gate';
 *
 * const store = createSslStore();
 * const guard = mtlsGuard({ store });
 * const router = createRouter({ services: [{ name: 'mtls-auth-app', pathPrefix: '/v1', hosts: ['mtls.httpbin.org'],
 *   protocols: ['https'], upstream: 'http://127.0.0.1:8080', routes: [{ name: 'json', path: '/json', methods: ['GET'] }] }] });
 * https.createServer(store.tlsOptions(), (req, res) => guard(req, res, () => router(req, res)));
 * ```
 */
export function createRouter(input: RouterOptions): Router {
  if (!isPlainObject(input))
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'options',
      `expected an object, received ${describe(input)}`,
    );
  // Each option read once, own properties only (internal/plain.ts); services are copied deeply by compileServices.
  const options = parse(routerOptionsSchema(), plainCopy(input, '', { shallow: true }));
  const httpsPort = options.httpsPort ?? 443;
  const page = options.page ?? 'default';
  const strip =
    options.stripRequestHeaders === undefined
      ? undefined
      : new HeaderNames(plainCopy(options.stripRequestHeaders, 'stripRequestHeaders') as string[]);
  const pools = new UpstreamPools();
  const proxyContext = { pools, page, onError: options.onProxyError, strip };
  // The services as configured (copied), by which apply() merges a batch by name.
  let current = plainCopy(options.services, 'services') as unknown[];
  let routes = compileServices(current);
  let table = new RouteTable(routes);

  const lookup = (method: string, host: string, normalized: string, scheme: 'http' | 'https', req?: object) => {
    // The guard's policy lookup matched this request already: the same route, even when the table
    // changed since (the policy judged is the route served; requests in flight finish on the old
    // configuration).
    const m = req === undefined ? undefined : (req as Matched)[kMatched];
    const r = m !== undefined ? m.route : table.match(host, normalized, method, req);
    if (!r) return undefined;
    if (!r.protocols.has(scheme)) return { route: r, redirect: scheme === 'http' };
    return { route: r, redirect: false };
  };

  const router = function mtlsGateRouter(req: Req, res: Res, next?: (err?: unknown) => void): void {
    try {
      route(req, res, next);
    } catch (err) {
      // A bug of ours must not crash the server or hang the request.
      callHook(
        'onProxyError',
        options.onProxyError,
        { status: 502, kind: 'error', upstream: undefined, error: err },
        req,
      );
      if (!res.headersSent) sendErrorPage(res, 502, { preset: page, format: 'html', accept: undefined });
      else res.destroy();
    }
  } as Router;

  const route = (req: Req, res: Res, next?: (err?: unknown) => void): void => {
    const target = targetOf(req);
    const host = hostOf(req);
    const normalized = pathOf(req);
    if (host === undefined || normalized === undefined) {
      sendErrorPage(res, 400, { preset: page, format: 'auto', accept: req.headers.accept });
      return;
    }
    const scheme = tlsSocketOf(req) ? 'https' : 'http';
    const found = lookup(req.method ?? 'GET', host, normalized, scheme, req);
    if (!found || (!found.redirect && !found.route.protocols.has(scheme))) {
      if (next) next();
      else sendRouteNotFound(res);
      return;
    }
    if (found.redirect) {
      // An HTTPS-only service asked over plain HTTP: 301 for GET/HEAD, 308 otherwise (the method is kept).
      const method = req.method ?? 'GET';
      const authority = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
      const r = res as ServerResponse;
      r.statusCode = method === 'GET' || method === 'HEAD' ? 301 : 308;
      r.setHeader(
        'location',
        `https://${authority}${httpsPort === 443 ? '' : `:${httpsPort}`}${target.startsWith('/') ? target : normalized}`,
      );
      r.setHeader('content-length', 0);
      r.end();
      return;
    }
    if (isUpgradeRequest(req)) {
      // An upgrade that reached the request path (no upgrade listener, or a route without
      // enableWebsocket): refused, not proxied as a plain request.
      sendErrorPage(res, 400, {
        preset: page,
        format: 'auto',
        accept: req.headers.accept,
        reason: found.route.websocket
          ? 'upgrade requests need the upgrade handler (router.upgrade)'
          : 'upgrade not enabled for this service (enableWebsocket)',
      });
      return;
    }
    const f = found.route.forward;
    forward(
      req,
      res,
      found.route.upstream,
      upstreamPath(found.route, normalized, target),
      proxyContext,
      f ? { forward: f, identity: getClientIdentity(req) } : undefined,
    );
  };

  const swap = (services: unknown[]) => {
    const next = compileServices(services);
    const nextTable = new RouteTable(next);
    current = services;
    routes = next;
    table = nextTable;
    pools.retain(next.map((r) => r.upstream));
  };
  router.update = (services) => swap(plainCopy(services, 'services') as unknown[]);
  router.apply = (input) => {
    if (!isPlainObject(input))
      throw new MtlsGateConfigError(
        ErrorCodes.INVALID_OPTION,
        'batch',
        `expected { set?, delete? }, received ${describe(input)}`,
      );
    const batch = parse(batchSchema(), plainCopy(input, ''));
    const sets = batch.set ?? [];
    const deletes = batch.delete ?? [];
    const names = new Set<string>();
    sets.forEach((service: unknown, i: number) => {
      try {
        compileServices([service]);
      } catch (err) {
        throw underField(err, `set[${i}]`, 'services[0]');
      }
      const name = (service as { name: string }).name;
      if (names.has(name))
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          `set[${i}].name`,
          `${JSON.stringify(name)} is set twice in one batch`,
        );
      names.add(name);
    });
    deletes.forEach((name: string, i: number) => {
      if (names.has(name))
        throw new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          `delete[${i}]`,
          `${JSON.stringify(name)} is both set and deleted`,
        );
    });
    const byName = new Map((sets as { name: string }[]).map((s) => [s.name, s]));
    const gone = new Set(deletes as string[]);
    const merged: unknown[] = [];
    for (const s of current) {
      const name = (s as { name: string }).name;
      if (gone.has(name)) continue;
      merged.push(byName.get(name) ?? s);
      byName.delete(name);
    }
    merged.push(...byName.values());
    swap(merged);
  };
  router.match = (method, host, target, scheme = 'https') => {
    const normalized = normalizePath(target);
    if (normalized === undefined) return undefined;
    const name = host === '' ? '' : normalizeHost(host);
    if (name === undefined) return undefined;
    const found = lookup(method, name, normalized, scheme);
    if (!found || found.redirect) return undefined;
    return {
      service: found.route.service,
      route: found.route.route,
      upstreamPath: upstreamPath(found.route, normalized, target),
    };
  };
  router.close = () => pools.close();
  router.upgrade = (req, socket, head) => {
    const target = targetOf(req);
    const host = hostOf(req);
    const normalized = pathOf(req);
    if (host === undefined || normalized === undefined) return refuseUpgrade(socket, 400, 'Bad Request');
    const scheme = tlsSocketOf(req) ? 'https' : 'http';
    const found = lookup(req.method ?? 'GET', host, normalized, scheme, req);
    if (!found || found.redirect || !found.route.protocols.has(scheme)) return refuseUpgrade(socket, 404, 'Not Found');
    // WebSocket only: another protocol (h2c, a tunnel of its own) would carry requests no policy judged.
    if (!found.route.websocket || String(req.headers.upgrade).trim().toLowerCase() !== 'websocket')
      return refuseUpgrade(socket, 400, 'Bad Request');
    const f = found.route.forward;
    try {
      forwardUpgrade(
        req,
        socket,
        head,
        found.route.upstream,
        upstreamPath(found.route, normalized, target),
        proxyContext,
        f ? { forward: f, identity: getClientIdentity(req) } : undefined,
      );
    } catch (err) {
      // A bug of ours (or a header Node refuses) must not crash the server or leave the socket open.
      callHook(
        'onProxyError',
        options.onProxyError,
        { status: 502, kind: 'error', upstream: undefined, error: err },
        req,
      );
      refuseUpgrade(socket, 502, 'Bad Gateway');
    }
  };
  router[kPolicyLookup] = (req, host, path, method) => {
    const route = table.match(host, path, method, req);
    (req as Matched)[kMatched] = { table, route };
    return route?.mtls;
  };
  router.routes = () => routes;
  Object.defineProperty(router, 'size', { get: () => routes.length });
  return router;
}
