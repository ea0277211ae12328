/**
 * Services, routes and upstreams, defined once: the TypeScript types, the validation and the JSON
 * Schema come from here. What a schema cannot say (host patterns, the `*` of a route path, an
 * upstream URL, names unique within their list) is checked by `compileServices` after the shape.
 */

import { isPrintableAscii } from '../internal/hostname.js';
import { lazySchema, matching, type PemSchema, pemFile, pemInput, type SchemaInput, z } from '../internal/schema.js';
import { forwardClientCertSchema, mtlsPolicySchema } from '../policy/schema.js';

/** Caps on what one configuration may hold: each a bound on the work a change costs and on error text. */
export const LIMITS = Object.freeze({ services: 10_000, routes: 10_000, hosts: 64, nodes: 256, methods: 16 });

export { METHODS } from '../http/methods.js';

import { METHODS } from '../http/methods.js';

// Shared by the library's and the config file's shapes, as one instance each (internal/schema.ts).
const name = lazySchema(() => matching(/^[A-Za-z0-9._~-]{1,100}$/, '1 to 100 characters of [A-Za-z0-9._~-]'));
const path = lazySchema(() =>
  matching(/^\/[^?#\s\\]{0,4095}$/, 'a path starting with "/" without query, fragment, spaces or "\\"'),
);
const hosts = lazySchema(() =>
  z
    .array(z.string().max(253))
    .min(1)
    .max(LIMITS.hosts)
    .meta({ description: 'Host patterns: exact names or *.example.com (any depth below).' }),
);
const seconds = lazySchema(() => z.number().gt(0).lte(3600));

const node = lazySchema(() =>
  z.strictObject({
    host: z
      .string()
      .min(1)
      .max(253)
      .refine((h) => !/[\s/@]/.test(h) && isPrintableAscii(h), { error: 'expected a host name or IP' }),
    port: z.number().int().min(1).max(65535),
    /** Share of requests, relative to the other nodes. Default 1; 0 disables the node. */
    weight: z.number().int().min(0).optional().meta({ default: 1 }),
  }),
);

function build<P extends PemSchema>(pem: P) {
  const upstreamObject = z.strictObject({
    nodes: z.array(node()).max(LIMITS.nodes),
    scheme: z.enum(['http', 'https']).optional().meta({ default: 'http' }),
    /**
     * How the upstream request's Host is set: the client's (`pass`), the node's (`node`), or `upstreamHost`
     * (`rewrite`).
     */
    passHost: z.enum(['pass', 'node', 'rewrite']).optional().meta({ default: 'pass' }),
    upstreamHost: z.string().min(1).max(1024).optional(),
    /** Seconds, as in APISIX. Defaults: connect 6, send 60, read 60. */
    timeout: z
      .strictObject({ connect: seconds().optional(), send: seconds().optional(), read: seconds().optional() })
      .optional(),
    /** Path prepended to every upstream request path. Default ''. */
    pathPrefix: path().optional(),
    /**
     * For `https` upstreams: extra CA bundle (PEM) to trust, whether to verify the upstream certificate
     * (default true), the name to verify and send as SNI (default the node's host), and the gateway's
     * own client certificate and key for an mTLS upstream (`cert` and `key` together).
     */
    tls: z
      .strictObject({
        ca: z.optional(pem),
        verify: z.boolean().optional(),
        servername: z
          .string()
          .min(1)
          .max(253)
          .regex(/^[A-Za-z0-9.-]+$/, { error: 'expected a DNS name' })
          .optional(),
        cert: z.optional(pem),
        key: z.optional(pem),
      })
      .refine((t) => (t.cert === undefined) === (t.key === undefined), { error: 'cert and key go together' })
      .optional(),
    /** Most connections kept per node. Default 64. */
    maxConnections: z.number().int().min(1).max(65_536).optional(),
  });
  const route = z.strictObject({
    name: name(),
    /**
     * Path below the service's prefix; the full path is prefix + '/' + path. A trailing `*` makes it a
     * prefix match, as in APISIX (`/foo*`, `/foo/*`); `:param` segments are refused.
     */
    path: path(),
    /** `exact` (default) or `prefix` (a plain string prefix). */
    pathType: z.enum(['exact', 'prefix']).optional(),
    /** Allowed methods, upper-case. Default: any. HEAD is not GET. */
    methods: z.array(z.enum(METHODS)).min(1).max(LIMITS.methods).optional(),
    /** Hosts for this route; default the service's. */
    hosts: hosts().optional(),
    /** This route's mTLS policy; overrides the service's. */
    mtls: mtlsPolicySchema(pem).optional(),
  });
  const service = z.strictObject({
    name: name(),
    /** Path prefix of every route of the service, e.g. `/v1`. Default none. */
    pathPrefix: path().optional(),
    /** Schemes served. An https-only service asked over http redirects. Default both. */
    protocols: z
      .array(z.enum(['http', 'https']))
      .min(1)
      .max(2)
      .optional(),
    /** Host patterns: exact names or `*.example.com` (any depth below). Default: any host. */
    hosts: hosts().optional(),
    /** An URL (`https://httpbin.org`) or an upstream object. */
    upstream: z.union([z.string().max(2048), upstreamObject], {
      error: (i) => (i.input === undefined ? undefined : 'expected an http(s) URL or an upstream object'),
    }),
    /** Remove `pathPrefix` before proxying. Default true. */
    stripPathPrefix: z.boolean().optional(),
    routes: z.array(route).max(LIMITS.routes),
    /** The mTLS policy of every route of the service that has none of its own. */
    mtls: mtlsPolicySchema(pem).optional(),
    /** The client's verified identity for the upstream: XFCC and RFC 9440 headers. */
    forwardClientCert: forwardClientCertSchema().optional(),
    /**
     * Proxy WebSocket (and other HTTP/1.1 Upgrade) requests, after the guard and policy. Default false: refused with
     * 400.
     */
    enableWebsocket: z.boolean().optional(),
  });
  return { service, route, upstreamObject };
}

const library = lazySchema(() => build(pemInput()));
/** A service as the library takes it. */
export const serviceSchema = lazySchema(() => library().service);
/** A service as a config file writes it (PEM as text or `{ file: PATH }`). */
export const serviceFileSchema = lazySchema(() => build(pemFile()).service);
/** Every service of a configuration, at most {@link LIMITS}.services. */
export const servicesSchema = lazySchema(() => z.array(serviceSchema()).max(LIMITS.services));
const routeSchema = lazySchema(() => library().route);
const upstreamObjectSchema = lazySchema(() => library().upstreamObject);

/** A service: path prefix, hosts, protocols, upstream, and its routes. */
export interface ServiceConfig extends SchemaInput<typeof serviceSchema> {}
/** A route of a service. */
export interface RouteConfig extends SchemaInput<typeof routeSchema> {}
/** Upstream in object form (APISIX's upstream resource, camelCase). */
export interface UpstreamOptions extends SchemaInput<typeof upstreamObjectSchema> {}
/** An upstream server. */
export interface UpstreamNode extends SchemaInput<typeof node> {}

/** `stripRequestHeaders` entries: a header name, or a prefix ending in `*`. */
export const headerNamePattern = lazySchema(() =>
  matching(/^[A-Za-z0-9!#$%&'+.^_`|~-]{1,100}\*?$/, 'a header name, or a prefix ending in "*"'),
);

/** The router's settings that are data (a config file's `router:`). */
export const routerSettingsSchema = lazySchema(() =>
  z.strictObject({
    /** Port in the Location of the HTTP-to-HTTPS redirect. Default 443 (left out of the URL). */
    httpsPort: z.number().int().min(1).max(65535).optional(),
    /** Error page preset for 400/502/503/504 (`apisix` = byte-exact OpenResty pages). Default `default`. */
    page: z.enum(['default', 'apisix']).optional(),
    /**
     * Request headers never forwarded upstream, besides the built-in client-certificate and identity
     * families: names (`x-tenant-id`) or prefixes (`x-internal-*`), case-insensitive, `_` spellings
     * included. At most 64.
     */
    stripRequestHeaders: z.array(headerNamePattern()).max(64).optional(),
  }),
);
/** The router's data settings (see {@link RouterOptions}). */
export interface RouterSettings extends SchemaInput<typeof routerSettingsSchema> {}
