import { createPrivateKey, hash, X509Certificate } from 'node:crypto';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { MAX_AUTHORITY, normalizeHost } from '../http/host.js';
import { isPrintableAscii } from '../internal/hostname.js';
import { plainCopy } from '../internal/plain.js';
import { parse } from '../internal/schema.js';
import { describe, pemText } from '../internal/validate.js';
import { type CompiledForward, compileForward } from '../policy/forward.js';
import { type CompiledPolicy, compilePolicy } from '../policy/policy.js';

import type { CompiledUpstream, PassHost } from '../proxy/upstream.js';
import { normalizeServername, sniPatternProblem } from '../ssl/sni.js';
import { LIMITS, type ServiceConfig, servicesSchema } from './schema.js';

export type { RouteConfig, ServiceConfig, UpstreamNode, UpstreamOptions } from './schema.js';
export type { CompiledUpstream, PassHost };
export { LIMITS };

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
  /** The route's `mtls` policy, else its service's. */
  readonly mtls: CompiledPolicy | undefined;
  /** Whether the policy was written on the route or its service (checked against the SSL objects by the gateway). */
  readonly mtlsField: string | undefined;
  /** The service's `forwardClientCert`. */
  readonly forward: CompiledForward | undefined;
  /** The service's `enableWebsocket`. */
  readonly websocket: boolean;
}

const invalid = (field: string, msg: string) => new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, msg);

function hostPatterns(v: readonly string[], field: string): string[] {
  return v.map((h, i) => {
    const n = normalizeServername(h);
    const problem = n === '*' ? 'a lone "*" is the same as no hosts; leave hosts out' : sniPatternProblem(n);
    if (problem)
      throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, `${field}[${i}]`, `${describe(h)}: ${problem}`);
    return n;
  });
}

type UpstreamInput = Exclude<ServiceConfig['upstream'], string>;

/** An upstream URL as the object it stands for. */
function upstreamFromUrl(v: string, field: string): UpstreamInput {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(field, `expected an http(s) URL or an upstream object, received ${describe(v)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    // `localhost:8080` parses as a URL of scheme "localhost:": name the value, not the scheme.
    throw invalid(
      field,
      `expected an http:// or https:// URL such as "http://127.0.0.1:8080", received ${describe(v)}`,
    );
  }
  if (url.username || url.password || url.search || url.hash)
    throw invalid(field, 'the URL must not carry credentials, a query or a fragment');
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  return {
    nodes: [{ host: url.hostname, port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80 }],
    scheme,
    pathPrefix: url.pathname === '/' ? undefined : url.pathname.replace(/\/$/, ''),
  };
}

function compileUpstream(v: ServiceConfig['upstream'], field: string): CompiledUpstream {
  const opts = typeof v === 'string' ? upstreamFromUrl(v, field) : v;
  const scheme = opts.scheme ?? 'http';
  const nodes = opts.nodes.map((n) => {
    const host = n.host.replace(/^\[|\]$/g, '');
    const hostPart = host.includes(':') ? `[${host}]` : host;
    return Object.freeze({ host, port: n.port, weight: n.weight ?? 1, origin: `${scheme}://${hostPart}:${n.port}` });
  });
  const passHost = opts.passHost ?? 'pass';
  const upstreamHost = opts.upstreamHost;
  if (passHost === 'rewrite' && upstreamHost === undefined)
    throw invalid(`${field}.upstreamHost`, 'is required with passHost "rewrite"');
  if (
    upstreamHost !== undefined &&
    (upstreamHost.length > MAX_AUTHORITY ||
      !isPrintableAscii(upstreamHost) ||
      normalizeHost(upstreamHost) === undefined)
  ) {
    throw invalid(`${field}.upstreamHost`, `expected a host[:port], received ${describe(upstreamHost)}`);
  }
  const timeout = {
    connect: opts.timeout?.connect ?? 6,
    send: opts.timeout?.send ?? 60,
    read: opts.timeout?.read ?? 60,
  };
  const ca = opts.tls?.ca === undefined ? undefined : (pemText(opts.tls.ca) as string);
  const cert = opts.tls?.cert === undefined ? undefined : (pemText(opts.tls.cert) as string);
  const key = opts.tls?.key === undefined ? undefined : (pemText(opts.tls.key) as string);
  if (cert !== undefined && key !== undefined) {
    let matches: boolean;
    try {
      matches = new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
    } catch (err) {
      throw new MtlsGateConfigError(
        ErrorCodes.PEM_INVALID,
        `${field}.tls.cert`,
        `the client certificate or key cannot be read: ${(err as Error).message}`,
        err,
      );
    }
    if (!matches)
      throw new MtlsGateConfigError(ErrorCodes.KEY_MISMATCH, `${field}.tls.key`, 'the key does not belong to tls.cert');
  }
  if ((cert !== undefined || opts.tls?.servername !== undefined) && scheme !== 'https')
    throw invalid(`${field}.tls`, 'cert, key and servername apply to https upstreams only');
  const servername = opts.tls?.servername;
  const tls = {
    ca,
    verify: opts.tls?.verify ?? true,
    servername,
    cert,
    key,
    id: hash('sha256', JSON.stringify([ca, opts.tls?.verify ?? true, servername, cert, key]), 'base64'),
  };
  const compiled: Omit<CompiledUpstream, 'key'> = {
    scheme,
    nodes: Object.freeze(nodes),
    passHost,
    upstreamHost,
    timeout: Object.freeze(timeout),
    pathPrefix: (opts.pathPrefix ?? '').replace(/\/$/, ''),
    tls: Object.freeze(tls),
    maxConnections: opts.maxConnections ?? 64,
  };
  return Object.freeze({ ...compiled, key: JSON.stringify(compiled) });
}

/** Joins prefix and path with exactly one slash. */
export function joinPath(prefix: string, p: string): string {
  if (!prefix) return p;
  return `${prefix.replace(/\/+$/, '')}/${p.replace(/^\/+/, '')}`;
}

/** Validates the services completely and compiles them to routes; throws before anything is used. */
export function compileServices(raw: unknown): CompiledRoute[] {
  // Validated and compiled from a copy (internal/plain.ts): the shape of every service first, every
  // problem listed; then what a schema cannot say.
  const input = parse(servicesSchema(), plainCopy(raw, 'services'), 'services');
  const routes: CompiledRoute[] = [];
  const serviceNames = new Set<string>();
  input.forEach((s, si) => {
    const sf = `services[${si}]`;
    const sname = s.name;
    if (serviceNames.has(sname)) throw invalid(`${sf}.name`, `duplicate service name ${JSON.stringify(sname)}`);
    serviceNames.add(sname);
    const prefix = (s.pathPrefix ?? '').replace(/\/+$/, '');
    const protocols = new Set<string>(s.protocols ?? ['http', 'https']);
    const serviceHosts = s.hosts === undefined ? [] : hostPatterns(s.hosts, `${sf}.hosts`);
    const upstream = compileUpstream(s.upstream, `${sf}.upstream`);
    const strip = s.stripPathPrefix ?? true;
    const serviceMtls = s.mtls === undefined ? undefined : compilePolicy(s.mtls, `${sf}.mtls`);
    const forward = s.forwardClientCert === undefined ? undefined : compileForward(s.forwardClientCert);
    const websocket = s.enableWebsocket ?? false;
    const routeNames = new Set<string>();
    s.routes.forEach((r, ri) => {
      const rf = `${sf}.routes[${ri}]`;
      const rname = r.name;
      if (routeNames.has(rname))
        throw invalid(
          `${rf}.name`,
          `duplicate route name ${JSON.stringify(rname)} in service ${JSON.stringify(sname)}`,
        );
      routeNames.add(rname);
      let rpath = r.path;
      let pathType = r.pathType ?? 'exact';
      // APISIX's path syntax: a trailing `*` is a prefix match (`/foo*` matches /foo, /foo1,
      // /foo/bar; `/foo/*` matches /foo/ and below, not /foo). `:param` and `*name` segments belong
      // to APISIX's parameter router only: refused here rather than matched as literal text.
      if (rpath.endsWith('*') && !rpath.slice(0, -1).includes('*')) {
        if (r.pathType === 'exact')
          throw invalid(
            `${rf}.path`,
            `${describe(rpath)} ends in "*", a prefix match: leave pathType out or set it to "prefix"`,
          );
        rpath = rpath.slice(0, -1);
        pathType = 'prefix';
      }
      if (rpath.includes('*') || /\/:/.test(rpath)) {
        throw invalid(
          `${rf}.path`,
          `${describe(rpath)}: "*" is allowed only at the end (a prefix match), and ":param" segments are not supported; use pathType "prefix"`,
        );
      }
      const methods = r.methods === undefined ? undefined : new Set<string>(r.methods);
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
          mtls: r.mtls === undefined ? serviceMtls : compilePolicy(r.mtls, `${rf}.mtls`),
          mtlsField: r.mtls !== undefined ? `${rf}.mtls` : s.mtls !== undefined ? `${sf}.mtls` : undefined,
          forward,
          websocket,
        }),
      );
    });
  });
  return routes;
}
