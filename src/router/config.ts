import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { describe, isPlainObject, rejectUnknown } from '../internal/validate.js';
import { normalizeServername, sniPatternProblem } from '../ssl/sni.js';
import { MAX_AUTHORITY, normalizeHost } from '../http/host.js';
import { isPrintableAscii } from '../internal/hostname.js';
import { plainCopy } from '../internal/plain.js';

import type { CompiledUpstream, PassHost } from '../proxy/upstream.js';

export type { CompiledUpstream, PassHost };

/** An upstream server. */
export interface UpstreamNode {
  host: string;
  port: number;
  /** Share of requests, relative to the other nodes. Default 1; 0 disables the node. */
  weight?: number;
}

/** Upstream in object form (APISIX's upstream resource, camelCase). */
export interface UpstreamOptions {
  nodes: UpstreamNode[];
  scheme?: 'http' | 'https';
  passHost?: PassHost;
  upstreamHost?: string;
  /** Seconds, as in APISIX. Defaults: connect 6, send 60, read 60. */
  timeout?: { connect?: number; send?: number; read?: number };
  /** Path prepended to every upstream request path. Default ''. */
  pathPrefix?: string;
  /** For `https` upstreams: extra CA bundle (PEM) to trust, and whether to verify the upstream certificate (default true). */
  tls?: { ca?: string; verify?: boolean };
  /** Most connections kept per node. Default 64. */
  maxConnections?: number;
}

export interface RouteConfig {
  name: string;
  /**
   * Path below the service's prefix; the full path is prefix + '/' + path. A trailing `*` makes it a
   * prefix match, as in APISIX (`/foo*`, `/foo/*`); `:param` segments are refused.
   */
  path: string;
  /** `exact` (default) or `prefix` (a plain string prefix). */
  pathType?: 'exact' | 'prefix';
  /** Allowed methods, upper-case. Default: any. HEAD is not GET. */
  methods?: string[];
  /** Hosts for this route; default the service's. */
  hosts?: string[];
}

export interface ServiceConfig {
  name: string;
  /** Path prefix of every route of the service, e.g. `/v1`. Default none. */
  pathPrefix?: string;
  /** Schemes served. An https-only service asked over http redirects. Default both. */
  protocols?: ('http' | 'https')[];
  /** Host patterns: exact names or `*.example.com` (any depth below). Default: any host. */
  hosts?: string[];
  /** An URL (`https://httpbin.org`) or an upstream object. */
  upstream: string | UpstreamOptions;
  /** Remove `pathPrefix` before proxying. Default true. */
  stripPathPrefix?: boolean;
  routes: RouteConfig[];
}

export interface CompiledRoute {
  readonly service: string;
  readonly route: string;
  readonly fullPath: string;
  readonly exact: boolean;
  readonly methods: ReadonlySet<string> | undefined;
  readonly hosts: readonly string[];
  readonly protocols: ReadonlySet<string>;
  readonly stripPrefix: string;
  readonly upstream: CompiledUpstream;
}

const SERVICE_FIELDS = new Set(['name', 'pathPrefix', 'protocols', 'hosts', 'upstream', 'stripPathPrefix', 'routes']);
const ROUTE_FIELDS = new Set(['name', 'path', 'pathType', 'methods', 'hosts']);
const UPSTREAM_FIELDS = new Set(['nodes', 'scheme', 'passHost', 'upstreamHost', 'timeout', 'pathPrefix', 'tls', 'maxConnections']);
const NODE_FIELDS = new Set(['host', 'port', 'weight']);
const TIMEOUT_FIELDS = new Set(['connect', 'send', 'read']);
const TLS_FIELDS = new Set(['ca', 'verify']);
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE', 'PURGE']);

const invalid = (field: string, msg: string) => new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, msg);
const missing = (field: string) => new MtlsGateConfigError(ErrorCodes.MISSING_FIELD, field, 'is required');

function name(v: unknown, field: string): string {
  if (v === undefined) throw missing(field);
  if (typeof v !== 'string' || !/^[A-Za-z0-9._~-]{1,100}$/.test(v)) throw invalid(field, `expected 1 to 100 characters of [A-Za-z0-9._~-], received ${describe(v)}`);
  return v;
}

function path(v: unknown, field: string): string {
  if (typeof v !== 'string' || !v.startsWith('/') || /[?#\s\\]/.test(v) || v.length > 4096) {
    throw invalid(field, `expected a path starting with "/" without query, fragment, spaces or "\\", received ${describe(v)}`);
  }
  return v;
}

/** Caps on what one configuration may hold: each a bound on the work a change costs and on error text. */
export const LIMITS = Object.freeze({ services: 10_000, routes: 10_000, hosts: 64, nodes: 256, methods: 16 });

function hostPatterns(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw invalid(field, `expected a non-empty array of host names, received ${describe(v)}`);
  if (v.length > LIMITS.hosts) throw invalid(field, `expected at most ${LIMITS.hosts} hosts, received ${v.length}`);
  return v.map((h, i) => {
    if (typeof h !== 'string') throw invalid(`${field}[${i}]`, `expected a host name, received ${describe(h)}`);
    const n = normalizeServername(h);
    const problem = n === '*' ? 'a lone "*" is the same as no hosts; leave hosts out' : sniPatternProblem(n);
    if (problem) throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, `${field}[${i}]`, `${describe(h)}: ${problem}`);
    return n;
  });
}

function seconds(v: unknown, field: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 3600) throw invalid(field, `expected seconds in (0, 3600], received ${describe(v)}`);
  return v;
}

function compileUpstream(v: unknown, field: string): CompiledUpstream {
  let opts: Record<string, unknown>;
  if (typeof v === 'string') {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw invalid(field, `expected an http(s) URL or an upstream object, received ${describe(v)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      // `localhost:8080` parses as a URL of scheme "localhost:": name the value, not the scheme.
      throw invalid(field, `expected an http:// or https:// URL such as "http://127.0.0.1:8080", received ${describe(v)}`);
    }
    if (url.username || url.password || url.search || url.hash) throw invalid(field, 'the URL must not carry credentials, a query or a fragment');
    const scheme = url.protocol === 'https:' ? 'https' : 'http';
    opts = {
      nodes: [{ host: url.hostname, port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80 }],
      scheme,
      pathPrefix: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''),
    };
  } else if (isPlainObject(v)) {
    rejectUnknown(v, UPSTREAM_FIELDS, `${field}.`);
    opts = v;
  } else {
    throw (v === undefined ? missing(field) : invalid(field, `expected an http(s) URL or an upstream object, received ${describe(v)}`));
  }
  const scheme = opts.scheme ?? 'http';
  if (scheme !== 'http' && scheme !== 'https') throw invalid(`${field}.scheme`, `expected "http" or "https", received ${describe(scheme)}`);
  if (!Array.isArray(opts.nodes)) throw invalid(`${field}.nodes`, `expected an array of { host, port }, received ${describe(opts.nodes)}`);
  if (opts.nodes.length > LIMITS.nodes) throw invalid(`${field}.nodes`, `expected at most ${LIMITS.nodes} nodes, received ${opts.nodes.length}`);
  const nodes = opts.nodes.map((n: unknown, i: number) => {
    const f = `${field}.nodes[${i}]`;
    if (!isPlainObject(n)) throw invalid(f, `expected { host, port }, received ${describe(n)}`);
    rejectUnknown(n, NODE_FIELDS, `${f}.`);
    if (typeof n.host !== 'string' || n.host.length === 0 || n.host.length > 253 || /[\s/@]/.test(n.host) || !isPrintableAscii(n.host)) {
      throw invalid(`${f}.host`, `expected a host name or IP, received ${describe(n.host)}`);
    }
    if (typeof n.port !== 'number' || !Number.isInteger(n.port) || n.port < 1 || n.port > 65535) throw invalid(`${f}.port`, `expected 1 to 65535, received ${describe(n.port)}`);
    const weight = n.weight ?? 1;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0) throw invalid(`${f}.weight`, `expected an integer >= 0, received ${describe(weight)}`);
    const host = n.host.replace(/^\[|\]$/g, '');
    const hostPart = host.includes(':') ? `[${host}]` : host;
    return Object.freeze({ host, port: n.port, weight, origin: `${scheme}://${hostPart}:${n.port}` });
  });
  const passHost = opts.passHost ?? 'pass';
  if (passHost !== 'pass' && passHost !== 'node' && passHost !== 'rewrite') throw invalid(`${field}.passHost`, `expected "pass", "node" or "rewrite", received ${describe(passHost)}`);
  const upstreamHost = opts.upstreamHost;
  if (passHost === 'rewrite' && (typeof upstreamHost !== 'string' || upstreamHost.length === 0)) throw invalid(`${field}.upstreamHost`, 'is required with passHost "rewrite"');
  if (upstreamHost !== undefined && (typeof upstreamHost !== 'string' || upstreamHost.length > MAX_AUTHORITY || !isPrintableAscii(upstreamHost) || normalizeHost(upstreamHost) === undefined)) {
    throw invalid(`${field}.upstreamHost`, `expected a host[:port], received ${describe(upstreamHost)}`);
  }
  let timeout = { connect: 6, send: 60, read: 60 };
  if (opts.timeout !== undefined) {
    if (!isPlainObject(opts.timeout)) throw invalid(`${field}.timeout`, `expected { connect, send, read } in seconds, received ${describe(opts.timeout)}`);
    rejectUnknown(opts.timeout, TIMEOUT_FIELDS, `${field}.timeout.`);
    timeout = {
      connect: seconds(opts.timeout.connect, `${field}.timeout.connect`, 6),
      send: seconds(opts.timeout.send, `${field}.timeout.send`, 60),
      read: seconds(opts.timeout.read, `${field}.timeout.read`, 60),
    };
  }
  const pathPrefix = opts.pathPrefix ?? '';
  if (pathPrefix !== '') path(pathPrefix, `${field}.pathPrefix`);
  let tls = { ca: undefined as string | undefined, verify: true };
  if (opts.tls !== undefined) {
    if (!isPlainObject(opts.tls)) throw invalid(`${field}.tls`, `expected { ca?, verify? }, received ${describe(opts.tls)}`);
    rejectUnknown(opts.tls, TLS_FIELDS, `${field}.tls.`);
    if (opts.tls.ca !== undefined && typeof opts.tls.ca !== 'string') throw invalid(`${field}.tls.ca`, `expected a PEM string, received ${describe(opts.tls.ca)}`);
    if (opts.tls.verify !== undefined && typeof opts.tls.verify !== 'boolean') throw invalid(`${field}.tls.verify`, `expected a boolean, received ${describe(opts.tls.verify)}`);
    tls = { ca: opts.tls.ca as string | undefined, verify: (opts.tls.verify as boolean | undefined) ?? true };
  }
  const maxConnections = opts.maxConnections ?? 64;
  if (typeof maxConnections !== 'number' || !Number.isInteger(maxConnections) || maxConnections < 1) {
    throw invalid(`${field}.maxConnections`, `expected a positive integer, received ${describe(maxConnections)}`);
  }
  const compiled: Omit<CompiledUpstream, 'key'> = {
    scheme: scheme as 'http' | 'https',
    nodes: Object.freeze(nodes),
    passHost: passHost as PassHost,
    upstreamHost: upstreamHost as string | undefined,
    timeout: Object.freeze(timeout),
    pathPrefix: (pathPrefix as string).replace(/\/$/, ''),
    tls: Object.freeze(tls),
    maxConnections,
  };
  return Object.freeze({ ...compiled, key: JSON.stringify(compiled) });
}

/** Joins prefix and path with exactly one slash. */
export function joinPath(prefix: string, p: string): string {
  if (!prefix) return p;
  return prefix.replace(/\/+$/, '') + '/' + p.replace(/^\/+/, '');
}

/** Validates the services completely and compiles them to routes; throws before anything is used. */
export function compileServices(raw: unknown): CompiledRoute[] {
  if (!Array.isArray(raw)) throw invalid('services', `expected an array of services, received ${describe(raw)}`);
  // Validated and compiled from a copy: see internal/plain.ts.
  const input = plainCopy(raw, 'services') as unknown[];
  if (input.length > LIMITS.services) throw invalid('services', `expected at most ${LIMITS.services} services, received ${input.length}`);
  const routes: CompiledRoute[] = [];
  const serviceNames = new Set<string>();
  input.forEach((s: unknown, si: number) => {
    const sf = `services[${si}]`;
    if (!isPlainObject(s)) throw invalid(sf, `expected a service object, received ${describe(s)}`);
    rejectUnknown(s, SERVICE_FIELDS, `${sf}.`);
    const sname = name(s.name, `${sf}.name`);
    if (serviceNames.has(sname)) throw invalid(`${sf}.name`, `duplicate service name ${JSON.stringify(sname)}`);
    serviceNames.add(sname);
    const prefix = s.pathPrefix === undefined ? '' : path(s.pathPrefix, `${sf}.pathPrefix`).replace(/\/+$/, '');
    let protocols = new Set<string>(['http', 'https']);
    if (s.protocols !== undefined) {
      if (!Array.isArray(s.protocols) || s.protocols.length === 0 || s.protocols.some((p) => p !== 'http' && p !== 'https')) {
        throw invalid(`${sf}.protocols`, `expected a non-empty array of "http" / "https", received ${describe(s.protocols)}`);
      }
      protocols = new Set(s.protocols as string[]);
    }
    const serviceHosts = s.hosts === undefined ? [] : hostPatterns(s.hosts, `${sf}.hosts`);
    const upstream = compileUpstream(s.upstream, `${sf}.upstream`);
    const strip = s.stripPathPrefix ?? true;
    if (typeof strip !== 'boolean') throw invalid(`${sf}.stripPathPrefix`, `expected a boolean, received ${describe(strip)}`);
    if (!Array.isArray(s.routes)) throw (s.routes === undefined ? missing(`${sf}.routes`) : invalid(`${sf}.routes`, `expected an array of routes, received ${describe(s.routes)}`));
    if (s.routes.length > LIMITS.routes) throw invalid(`${sf}.routes`, `expected at most ${LIMITS.routes} routes, received ${s.routes.length}`);
    const routeNames = new Set<string>();
    s.routes.forEach((r: unknown, ri: number) => {
      const rf = `${sf}.routes[${ri}]`;
      if (!isPlainObject(r)) throw invalid(rf, `expected a route object, received ${describe(r)}`);
      rejectUnknown(r, ROUTE_FIELDS, `${rf}.`);
      const rname = name(r.name, `${rf}.name`);
      if (routeNames.has(rname)) throw invalid(`${rf}.name`, `duplicate route name ${JSON.stringify(rname)} in service ${JSON.stringify(sname)}`);
      routeNames.add(rname);
      if (r.path === undefined) throw missing(`${rf}.path`);
      let rpath = path(r.path, `${rf}.path`);
      let pathType = r.pathType ?? 'exact';
      if (pathType !== 'exact' && pathType !== 'prefix') throw invalid(`${rf}.pathType`, `expected "exact" or "prefix", received ${describe(pathType)}`);
      // APISIX's path syntax: a trailing `*` is a prefix match (`/foo*` matches /foo, /foo1,
      // /foo/bar; `/foo/*` matches /foo/ and below, not /foo). `:param` and `*name` segments belong
      // to APISIX's parameter router only: refused here rather than matched as literal text.
      if (rpath.endsWith('*') && !rpath.slice(0, -1).includes('*')) {
        if (r.pathType === 'exact') throw invalid(`${rf}.path`, `${describe(rpath)} ends in "*", a prefix match: leave pathType out or set it to "prefix"`);
        rpath = rpath.slice(0, -1);
        pathType = 'prefix';
      }
      if (rpath.includes('*') || /\/:/.test(rpath)) {
        throw invalid(`${rf}.path`, `${describe(rpath)}: "*" is allowed only at the end (a prefix match), and ":param" segments are not supported; use pathType "prefix"`);
      }
      let methods: Set<string> | undefined;
      if (r.methods !== undefined) {
        if (!Array.isArray(r.methods) || r.methods.length === 0 || r.methods.length > LIMITS.methods) {
          throw invalid(`${rf}.methods`, `expected a non-empty array of at most ${LIMITS.methods} methods, received ${describe(r.methods)}`);
        }
        methods = new Set(
          r.methods.map((m: unknown, mi: number) => {
            if (typeof m !== 'string' || !METHODS.has(m)) throw invalid(`${rf}.methods[${mi}]`, `expected one of ${[...METHODS].join(', ')}, received ${describe(m)}`);
            return m;
          }),
        );
      }
      const hosts = r.hosts === undefined ? serviceHosts : hostPatterns(r.hosts, `${rf}.hosts`);
      routes.push(
        Object.freeze({
          service: sname,
          route: rname,
          fullPath: joinPath(prefix, rpath),
          exact: pathType === 'exact',
          methods,
          hosts: Object.freeze([...hosts]),
          protocols,
          stripPrefix: strip ? prefix : '',
          upstream,
        }),
      );
    });
  });
  return routes;
}
