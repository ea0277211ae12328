import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { type GatewayConfig, type ParsedGatewayConfig, validateConfig } from '../config/schema.js';
import { ErrorCodes, MtlsGateConfigError, type RejectReason } from '../errors.js';
import { type GuardRequest, type GuardResponse, type MtlsGuard, mtlsGuard } from '../guard/guard.js';
import { createLineWriter, type LineWriter } from '../internal/lines.js';
import { plainCopy } from '../internal/plain.js';
import { isPlainObject } from '../internal/validate.js';
import { channels } from '../observe/channels.js';
import { kPolicyLookup, type PolicySource } from '../policy/lookup.js';
import type { ProxyErrorInfo } from '../proxy/proxy.js';
import { refuseUpgrade } from '../proxy/upgrade.js';
import { compileServices, LIMITS } from '../router/config.js';
import { type CompiledRoute, createRouter, isH2c, type Router } from '../router/router.js';
import type { SinkResult, SourceChanges } from '../sources/etcd.js';
import { sourceKey } from '../ssl/object.js';
import { createSslStore, type SslStore, type StoreInternals, storeInternals } from '../ssl/store.js';
import { accessLogger, noteRejection } from './access-log.js';
import { createMetrics } from './metrics.js';
import { type GatewayStatus, serveStatus } from './status.js';

/** What a gateway reports, one event at a time (the `mtls-gate` command logs each as one line). */
export type GatewayEvent =
  | { type: 'listening'; url: string; protocols: string }
  | {
      type: 'applied';
      revision: number;
      ssls: number;
      services: number;
      routes: number;
      restartNeeded: readonly string[];
    }
  | { type: 'config_error'; error: MtlsGateConfigError | Error }
  | {
      type: 'reject';
      reason: RejectReason;
      sni: string | undefined;
      host: string | undefined;
      sslId: string | undefined;
      detail: string;
    }
  | { type: 'proxy_error'; status: number; kind: string; upstream: string | undefined }
  | { type: 'draining'; inFlight: number; timeoutMs: number }
  | { type: 'closed'; dropped: number };

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** Where {@link Gateway.reload} reads the configuration (the command: the config file). */
  load?: () => Promise<{ config: unknown; digest?: string }>;
  /**
   * Secret for TLS session ticket keys (see the store's `ticketSecret`): gateways holding the same
   * secret and the same SSL objects resume each other's sessions (the command's workers).
   */
  ticketSecret?: string | Buffer;
  /**
   * Every event (listening, applied configuration, refused configuration, refused request, proxy error, drain).
   * Exceptions are ignored.
   */
  onEvent?: (event: GatewayEvent) => void;
  /**
   * Where access log lines go when the configuration has `accessLog` (one line per call, no newline). Default: stdout,
   * buffered.
   */
  accessLog?: (line: string) => void;
  /**
   * Leave out the status listener even when the configuration has one (the command's workers: the primary serves it).
   */
  noStatus?: boolean;
  /** Not ready (`/ready` 503) until a source's first {@link Gateway.applyChanges}. */
  awaitSource?: boolean;
}

/** What {@link Gateway.apply} did. */
export interface ApplyResult {
  /** False when the configuration equals the one serving (nothing was touched). */
  changed: boolean;
  revision: number;
  /** Settings that only a restart changes (`listen`, `status`, `store`), when they differ from those serving. */
  restartNeeded: string[];
}

/**
 * An `mtls` policy written on a service or route whose hosts belong to an SSL object without
 * `client` (or, without hosts, when no object has one) is a configuration error: that object's
 * handshake asks for no certificate, so the policy could never be met.
 */
function policyProblem(routes: readonly CompiledRoute[], publicStore: SslStore): MtlsGateConfigError | undefined {
  const store: StoreInternals = storeInternals(publicStore)!;
  let anyMtls: boolean | undefined;
  for (const r of routes) {
    if (!r.mtls || !r.mtlsField || r.mtls.mode === 'off') continue;
    if (r.hosts.length === 0) {
      anyMtls ??= publicStore.list().some((v) => v.client !== undefined);
      if (!anyMtls)
        return new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          r.mtlsField,
          'an mtls policy needs an SSL object with client, and there is none',
        );
      continue;
    }
    for (const h of r.hosts) {
      const owner = store.ownerOfPattern(h);
      if (owner && !owner.client)
        return new MtlsGateConfigError(
          ErrorCodes.INVALID_OPTION,
          r.mtlsField,
          `host ${JSON.stringify(h)} belongs to SSL object ${JSON.stringify(owner.id)}, which has no client (its handshake asks for no certificate)`,
        );
    }
  }
  return undefined;
}

/** A running gateway: store, guard, router and listeners built from one configuration. */
export interface Gateway {
  /**
   * Validates a whole configuration, then applies it at once (SSL objects as one batch, then services); on a throw the
   * running configuration keeps serving.
   */
  apply(config: GatewayConfig): ApplyResult;
  /**
   * Applies changes of a configuration source where each object stands alone (etcd): SSL objects and
   * services to set (by id / name) and delete, as one batch. An invalid object is left out and listed
   * in `rejected` (its index in `set`); the object of its id or name keeps serving. The source's
   * `revision` is shown by `/status`.
   */
  applyChanges(changes: SourceChanges): SinkResult;
  /** Shown by `/status` as `source` (the etcd source's state). */
  setSourceStatus(report: () => unknown): void;
  /**
   * The counters and gauges served on `/metrics` (`name{labels}`: value), when the configuration has a status listener.
   */
  metrics(): Record<string, number> | undefined;
  /** Reads the configuration again from `options.load` and applies it. */
  reload(): Promise<ApplyResult>;
  /** Stops accepting, lets requests in flight finish (up to `drainTimeoutMs`), then closes everything. */
  close(): Promise<void>;
  status(): GatewayStatus;
  /** Where the listeners are, in the order of `listen`. */
  readonly addresses: readonly { host: string; port: number; tls: boolean }[];
  readonly statusAddress: { host: string; port: number } | undefined;
  /** Counts applied configurations that changed something; 1 after start. */
  readonly revision: number;
  readonly store: SslStore;
}

interface Listener {
  server: http.Server | http2.Http2SecureServer;
  tls: boolean;
}

const json = (v: unknown) => JSON.stringify(v ?? null);

/** Would this plain-HTTP request be redirected to HTTPS (its route serves https only)? */
function redirects(router: Router, req: GuardRequest): boolean {
  const host = typeof req.headers.host === 'string' ? req.headers.host : '';
  const method = req.method ?? 'GET';
  const target = req.url ?? '/';
  return (
    router.match(method, host, target, 'https') !== undefined &&
    router.match(method, host, target, 'http') === undefined
  );
}

/**
 * Creates a gateway from one configuration object (a config file's content, PEM as strings or
 * Buffers): an SSL store, the guard, the router, HTTPS listeners (HTTP/2 and HTTP/1.1 by ALPN),
 * optional plain-HTTP listeners and a status listener. Resolves once every listener listens.
 *
 * @example
 * ```ts
 * import { createGateway } from 'mtls-gate';
 *
 * declare const cert: string, key: string, ca: string;
 * const gateway = await createGateway({
 *   listen: [{ host: '127.0.0.1', port: 9443 }],
 *   ssls: [{ id: 'api', cert, key, snis: ['api.example.com'], client: { ca } }],
 *   services: [{ name: 'api', hosts: ['api.example.com'], upstream: 'http://127.0.0.1:8080', routes: [{ name: 'all', path: '/*' }] }],
 * });
 * console.log(gateway.addresses);
 * await gateway.close();
 * ```
 */
export async function createGateway(input: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const emit = (e: GatewayEvent) => {
    // Requests are on mtls-gate:verdict and :proxy already; the rest goes to :config.
    if (e.type !== 'reject' && e.type !== 'proxy_error' && channels.config.hasSubscribers)
      channels.config.publish({ ...e, at: Date.now() });
    try {
      options.onEvent?.(e);
    } catch {
      // A logging hook must not break the gateway.
    }
  };
  const first = isPlainObject(input) ? plainCopy(input, '') : input;
  let config: ParsedGatewayConfig = validateConfig(first, { compileSsls: false });
  const store = createSslStore({
    ...config.store,
    ...(options.ticketSecret ? { ticketSecret: options.ticketSecret } : {}),
  });

  const onReject = (i: {
    reason: RejectReason;
    servername: string | undefined;
    host: string | undefined;
    sslId: string | undefined;
    detail: string;
    req: object;
  }) => {
    if (accessLog) noteRejection(i.req, i.reason);
    emit({ type: 'reject', reason: i.reason, sni: i.servername, host: i.host, sslId: i.sslId, detail: i.detail });
  };
  // The access log, when the configuration asks for one: lines to options.accessLog, else stdout.
  let accessSink: LineWriter | undefined;
  const accessWrite =
    options.accessLog ??
    ((line: string) =>
      (accessSink ??= createLineWriter(process.stdout, (n) =>
        JSON.stringify({ time: new Date().toISOString(), event: 'warning', message: `${n} access log lines dropped` }),
      )).write(line));
  let accessLog: ((req: GuardRequest, res: GuardResponse) => void) | undefined;
  let accessFormat: string | undefined;
  const setAccessLog = (c: ParsedGatewayConfig) => {
    const format = c.accessLog ? (c.accessLog.format ?? 'json') : undefined;
    if (format === accessFormat) return;
    accessFormat = format;
    accessLog = format ? accessLogger(format, accessWrite) : undefined;
  };
  const onProxyError = (i: ProxyErrorInfo) =>
    emit({ type: 'proxy_error', status: i.status, kind: i.kind, upstream: i.upstream });
  // The guard finds route policies through whichever router is current (one match for both).
  const policies: PolicySource = Object.freeze({
    [kPolicyLookup]: (req: object, host: string, path: string, method: string) =>
      router[kPolicyLookup](req, host, path, method),
  });
  const makeGuard = (c: ParsedGatewayConfig, plain: boolean): MtlsGuard =>
    mtlsGuard({ store, ...c.guard, ...(plain ? { allowPlainHttp: true } : {}), onReject, policies });
  const httpsPort = () => config.listen.find((l) => l.tls !== false)?.port;
  const makeRouter = (c: ParsedGatewayConfig, port: number | undefined): Router =>
    // The redirect of https-only services names the TLS listener's port unless router.httpsPort says otherwise.
    createRouter({
      ...c.router,
      page: c.guard?.page,
      ...((c.router?.httpsPort ?? port) ? { httpsPort: c.router?.httpsPort ?? port } : {}),
      services: [],
      onProxyError,
    });

  let revision = 0;
  let digest = '';
  let appliedAt: Date | undefined;
  let lastError: { at: Date; error: Error } | undefined;
  let guardTls = makeGuard(config, false);
  let guardPlain = makeGuard(config, true);
  let router = makeRouter(config, httpsPort());
  let routes = 0;
  let closing = false;
  let inFlight = 0;
  let sourceLoaded = options.awaitSource !== true;
  let sourceStatus: (() => unknown) | undefined;
  let serviceCount = 0;
  /** Services by name as a source set them (applyChanges). */
  const sourceServices = new Map<string, unknown>();

  const applyParsed = (c: ParsedGatewayConfig, key: string): ApplyResult => {
    const restartNeeded = (['listen', 'status', 'store'] as const).filter(
      (k) => revision > 0 && json(c[k]) !== json(config[k]),
    );
    const ssls = c.ssls ?? [];
    const keep = new Set(ssls.map((s) => String(s.id)));
    try {
      // One batch: one change of the store, unchanged objects keep their compiled state.
      store.apply({
        set: ssls,
        delete: store
          .list()
          .map((v) => v.id)
          .filter((id) => !keep.has(id)),
      });
    } catch (err) {
      throw err instanceof MtlsGateConfigError
        ? new MtlsGateConfigError(
            err.code,
            (err.field ?? '').replace(/^set\[/, 'ssls['),
            err.message.replace(/^set\[[^:]*: /, ''),
            err.cause,
            err.issues.map((i) => ({ ...i, field: i.field.replace(/^set\[/, 'ssls[') })),
          )
        : err;
    }
    // An explicit mtls policy needs SSL objects that ask for a certificate: checked against the
    // store as just applied, which is put back as it was when the check fails (nothing half-applied).
    const problem = policyProblem(compileServices(c.services ?? []), store);
    if (problem) {
      const before = config.ssls ?? [];
      const had = new Set(before.map((x) => String(x.id)));
      store.apply({
        set: before,
        delete: store
          .list()
          .map((v) => v.id)
          .filter((id) => !had.has(id)),
      });
      throw problem;
    }
    // Services were validated whole by validateConfig: this swap does not throw.
    if (revision > 0 && (json(c.router) !== json(config.router) || c.guard?.page !== config.guard?.page)) {
      const old = router;
      router = makeRouter(c, httpsPort());
      // Requests in flight finish on the old router's pools.
      setTimeout(() => void old.close(), (c.drainTimeoutMs ?? 10_000) + 1000).unref();
    }
    router.update(c.services ?? []);
    routes = router.size;
    serviceCount = (c.services ?? []).length;
    if (revision === 0 || json(c.guard) !== json(config.guard)) {
      guardTls = makeGuard(c, false);
      guardPlain = makeGuard(c, true);
    }
    if (revision > 0 && json(c.limits) !== json(config.limits))
      for (const l of listeners) if (l.tls) store.attach(l.server as unknown as tls.Server, { limits: c.limits ?? {} });
    setAccessLog(c);
    // Settings that need a restart keep their running values.
    config = { ...c, listen: config.listen, status: config.status, store: config.store };
    digest = key;
    revision++;
    appliedAt = new Date();
    lastError = undefined;
    // A gateway waiting for its source starts empty: that start is not news.
    if (!(options.awaitSource && !sourceLoaded))
      emit({ type: 'applied', revision, ssls: store.size, services: (c.services ?? []).length, routes, restartNeeded });
    return { changed: true, revision, restartNeeded };
  };

  const apply = (input: unknown): ApplyResult => {
    try {
      // Read once (internal/plain.ts): the copy is what is compared, validated and applied.
      const next = isPlainObject(input) ? plainCopy(input, '') : input;
      const key = sourceKey(next);
      if (key === digest) return { changed: false, revision, restartNeeded: [] };
      return applyParsed(validateConfig(next, { compileSsls: false }), key);
    } catch (err) {
      lastError = { at: new Date(), error: err as Error };
      emit({ type: 'config_error', error: err as Error });
      throw err;
    }
  };

  // Listeners.
  const listeners: Listener[] = [];
  const h1Sockets = new Map<Socket, number>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let requests = 0;
  const track = (req: GuardRequest, res: GuardResponse) => {
    inFlight++;
    requests++;
    const socket = req.httpVersionMajor === 2 ? undefined : (req.socket as Socket);
    if (socket) h1Sockets.set(socket, (h1Sockets.get(socket) ?? 0) + 1);
    if (closing && socket) (res as http.ServerResponse).shouldKeepAlive = false;
    res.once('close', () => {
      inFlight--;
      if (socket) {
        const n = (h1Sockets.get(socket) ?? 1) - 1;
        if (n > 0 || !closing) h1Sockets.set(socket, n);
        else socket.end();
      }
      if (closing && inFlight === 0) drained?.();
    });
  };
  const handler = (plain: boolean) => (req: GuardRequest, res: GuardResponse) => {
    track(req, res);
    accessLog?.(req, res);
    res.setHeader('server', 'mtls-gate');
    const guard = plain ? guardPlain : guardTls;
    const r = router;
    // Plain HTTP for an https-only service: the router's redirect, before the guard (which would
    // refuse a host of an mTLS object over plain HTTP). Nothing reaches an upstream this way.
    if (plain && redirects(r, req)) r(req, res);
    else guard(req, res, () => r(req, res));
  };
  // HTTP/1.1 Upgrade requests (WebSocket): judged by the guard and the route's policy like any
  // request, then proxied by the router for services with enableWebsocket (refused otherwise).
  // `Upgrade: h2c` is served as a plain request on a connection that then closes.
  const onUpgrade = (plain: boolean) => (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (isH2c(req.headers.upgrade)) {
      // Node hands an upgrade request over without its body: one with a body cannot be served.
      const cl = req.headers['content-length'];
      if (req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0'))
        return refuseUpgrade(socket, 400, 'Bad Request');
      const res = new http.ServerResponse(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket as Socket);
      res.once('finish', () => socket.end());
      handler(plain)(req, res);
      return;
    }
    const guard = plain ? guardPlain : guardTls;
    const r = router;
    guard.upgrade(req, socket, head, () => r.upgrade(req, socket, head));
  };
  const onSocket = (socket: Socket) => {
    if (!h1Sockets.has(socket)) h1Sockets.set(socket, 0);
    socket.once('close', () => h1Sockets.delete(socket));
  };
  for (const l of config.listen) {
    if (l.tls === false) {
      const server = http.createServer(handler(true));
      server.on('connection', onSocket);
      server.on('upgrade', onUpgrade(true));
      listeners.push({ server, tls: false });
    } else {
      const server = store.attach(
        http2.createSecureServer(store.tlsOptions({ sessionTickets: l.sessionTickets ?? false }), handler(false)),
        { limits: config.limits ?? {} },
      );
      server.on('secureConnection', onSocket);
      server.on('upgrade', onUpgrade(false));
      server.on('session', (s: http2.ServerHttp2Session) => {
        sessions.add(s);
        s.once('close', () => sessions.delete(s));
      });
      listeners.push({ server, tls: true });
    }
  }
  applyParsed(config, sourceKey(first));

  const addresses: { host: string; port: number; tls: boolean }[] = [];
  try {
    for (const [i, l] of listeners.entries()) {
      const want = config.listen[i]!;
      await new Promise<void>((resolve, reject) => {
        l.server.once('error', reject);
        l.server.listen(want.port, want.host ?? '127.0.0.1', () => {
          l.server.off('error', reject);
          resolve();
        });
      });
      const a = l.server.address() as AddressInfo;
      addresses.push({ host: a.address, port: a.port, tls: l.tls });
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      emit({
        type: 'listening',
        url: `${l.tls ? 'https' : 'http'}://${host}:${a.port}`,
        protocols: l.tls ? 'h2, http/1.1' : 'http/1.1',
      });
    }
  } catch (err) {
    for (const l of listeners) l.server.close();
    await router.close();
    throw err;
  }
  // The redirect of https-only services goes to the first TLS listener's actual port.
  const actualHttps = addresses.find((a) => a.tls)?.port;
  if (actualHttps !== undefined && actualHttps !== httpsPort()) {
    const old = router;
    router = makeRouter(config, actualHttps);
    router.update(config.services ?? []);
    void old.close();
  }

  const status = (): GatewayStatus => ({
    ready: !closing && revision > 0 && sourceLoaded,
    revision,
    digest,
    appliedAt: appliedAt?.toISOString(),
    ssls: store.size,
    services: serviceCount,
    routes,
    inFlight,
    requests,
    listeners: addresses.map((a) => `${a.tls ? 'https' : 'http'}://${a.host}:${a.port}`),
    lastError: lastError && {
      at: lastError.at.toISOString(),
      message: lastError.error.message,
      issues: lastError.error instanceof MtlsGateConfigError ? lastError.error.issues : [],
    },
    ...(sourceStatus ? { source: sourceStatus() } : {}),
  });
  // Counters exist where a status listener serves them (here, or the command's primary for its workers).
  const metrics = config.status ? createMetrics({ store }) : undefined;
  const statusServer =
    config.status && !options.noStatus
      ? await serveStatus(config.status, {
          ready: () => status().ready,
          body: status,
          metrics: () => metrics!.render(),
        })
      : undefined;

  let drained: (() => void) | undefined;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      closing = true;
      const timeoutMs = config.drainTimeoutMs ?? 10_000;
      emit({ type: 'draining', inFlight, timeoutMs });
      const serversClosed = Promise.all(
        listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))),
      );
      // Idle connections go now; busy ones after their last response (HTTP/1.1: Connection: close;
      // HTTP/2: GOAWAY, open streams finish).
      for (const s of sessions) s.close();
      for (const [socket, n] of h1Sockets) if (n === 0) socket.end();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          drained = resolve;
          setTimeout(resolve, timeoutMs).unref();
        });
      }
      const dropped = inFlight;
      for (const s of sessions) s.destroy();
      for (const socket of h1Sockets.keys()) socket.destroy();
      await serversClosed;
      await router.close();
      await statusServer?.close();
      metrics?.close();
      await accessSink?.flush();
      emit({ type: 'closed', dropped });
    })());

  const applyChanges = (changes: SourceChanges): SinkResult => {
    const rejected: SinkResult['rejected'] = [];
    // Services first checked one by one (cheap): an invalid one is left out, its name keeps its old service.
    const services: unknown[] = [];
    const serviceIndex: number[] = [];
    changes.services.set.forEach((svc, i) => {
      try {
        compileServices([svc]);
        services.push(svc);
        serviceIndex.push(i);
      } catch (err) {
        if (!(err instanceof MtlsGateConfigError)) throw err;
        rejected.push({ kind: 'service', index: i, error: err });
      }
    });
    // The whole service list must fit the router's caps before anything changes: services beyond
    // them are refused one by one (the store is not touched by a router that would throw).
    const names = new Set(sourceServices.keys());
    for (const n of changes.services.delete) names.delete(n);
    for (let j = 0; j < services.length; ) {
      const name = (services[j] as { name: string }).name;
      if (names.has(name) || names.size < LIMITS.services) {
        names.add(name);
        j++;
        continue;
      }
      rejected.push({
        kind: 'service',
        index: serviceIndex[j]!,
        error: new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, 'services', `more than ${LIMITS.services} services`),
      });
      services.splice(j, 1);
      serviceIndex.splice(j, 1);
    }
    const stored = store.apply(
      { set: changes.ssls.set as never[], delete: changes.ssls.delete },
      { skipInvalid: true },
    );
    for (const r of stored.rejected) rejected.push({ kind: 'ssl', index: r.index, error: r.error });
    for (const name of changes.services.delete) sourceServices.delete(name);
    for (const svc of services) sourceServices.set((svc as { name: string }).name, svc);
    router.update([...sourceServices.values()] as never[]);
    routes = router.size;
    serviceCount = sourceServices.size;
    revision++;
    appliedAt = new Date();
    sourceLoaded = true;
    emit({ type: 'applied', revision, ssls: store.size, services: serviceCount, routes, restartNeeded: [] });
    return { rejected };
  };

  return {
    apply: (c) => apply(c),
    applyChanges,
    setSourceStatus(report) {
      sourceStatus = report;
    },
    async reload() {
      if (!options.load)
        throw new Error('mtls-gate: this gateway has no configuration source to reload from (options.load)');
      let loaded: { config: unknown; digest?: string };
      try {
        loaded = await options.load();
      } catch (err) {
        lastError = { at: new Date(), error: err as Error };
        emit({ type: 'config_error', error: err as Error });
        throw err;
      }
      return apply(loaded.config);
    },
    close,
    status,
    addresses,
    statusAddress: statusServer?.address,
    metrics: () => metrics?.snapshot(),
    get revision() {
      return revision;
    },
    store,
  };
}
