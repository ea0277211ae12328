import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCodes, MtlsGateConfigError, type RejectReason } from '../errors.js';
import { hostOf, pathOf, skipPathOf } from '../http/facts.js';
import { sendErrorPage } from '../http/pages.js';
import { type HttpRequest, type HttpResponse, tlsSocketOf } from '../http/types.js';
import { callHook } from '../internal/hooks.js';
import { plainCopy } from '../internal/plain.js';
import { lazySchema, parse, z } from '../internal/schema.js';
import { describe, isPlainObject } from '../internal/validate.js';
import { channels, type VerdictMessage } from '../observe/channels.js';
import { isPolicySource, matchedRouteName, type PolicyEntry, type PolicySource, policyList } from '../policy/lookup.js';
import { type SslStore, storeInternals } from '../ssl/store.js';
import type { ClientIdentity } from '../verify/identity.js';
import { decide, type GuardVerdict } from './decide.js';
import { type GuardSettings, guardSettingsSchema } from './schema.js';

/** A request the guard handles: node:http(s) or node:http2's compatibility API. */
export type GuardRequest = HttpRequest;
/** Its response. */
export type GuardResponse = HttpResponse;

/** What {@link GuardOptions.onReject} receives. */
export interface RejectInfo {
  reason: RejectReason;
  /** Human-readable detail for logs (never sent to the client unless `exposeReason`). */
  detail: string;
  /** The SSL object the connection's SNI chose, if any. */
  sslId: string | undefined;
  servername: string | undefined;
  /** The request's normalised host; undefined when it was malformed (reason `bad_host`). */
  host: string | undefined;
  req: GuardRequest;
  /** The status the refusal is answered with. */
  status: number;
}

/** A custom answer to a refused request (see {@link GuardOptions.rejectResponse}). */
export interface RejectResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/**
 * Options of {@link mtlsGuard}: the data settings (`page`, `format`, `exposeReason`, `allowPlainHttp`), the store and
 * the hook.
 */
export interface GuardOptions extends GuardSettings {
  store: SslStore;
  /**
   * Called for every rejected request, before the 400 is sent (or, when the response had already
   * started, before the response is destroyed). A throwing or rejecting hook is contained: reported
   * once as a process warning (code `MTLS_GATE_HOOK`), and the client still gets its answer.
   */
  onReject?: (info: RejectInfo) => void;
  /**
   * Per-path policies (`mtls` per route): the router (`policies: router`, its routes' and services'
   * `mtls`, matched once for both) or, for an application with its own routes, a list of
   * `{ path, pathType, methods?, hosts?, mtls }`.
   */
  policies?: PolicySource | PolicyEntry[];
  /**
   * A custom answer for a refused request: return `{ status?, headers?, body? }` (a status outside
   * 400, 401, 403, 421, 495, 496 is ignored), or undefined for the standard page. Contained like
   * `onReject` (a throw gives the standard page).
   */
  rejectResponse?: (info: RejectInfo) => RejectResponse | undefined;
}

const guardOptionsSchema = lazySchema(() =>
  guardSettingsSchema().extend({
    store: z.custom<SslStore>((v) => storeInternals(v) !== undefined, {
      error: (i) => `expected a store from createSslStore(), received ${describe(i.input)}`,
    }),
    onReject: z
      .custom<(info: RejectInfo) => void>((v) => typeof v === 'function', { error: 'expected a function' })
      .optional(),
    policies: z.unknown().optional(),
    rejectResponse: z
      .custom<(info: RejectInfo) => RejectResponse | undefined>((v) => typeof v === 'function', {
        error: 'expected a function',
      })
      .optional(),
  }),
);

/** A `(req, res, next)` middleware; `check` gives the verdict without answering (for adapters). */
export interface MtlsGuard {
  (req: GuardRequest, res: GuardResponse, next: (err?: unknown) => void): void;
  /**
   * The verdict for a request, without side effects on the response. A passing verdict records the
   * owner of the request's host on the request, which the router reads (see docs/concepts.md, "Who
   * owns a host").
   */
  check(req: GuardRequest): GuardVerdict;
  /**
   * Judges the request as the middleware does (waiting for an OCSP answer when one is needed) and
   * resolves to whether it passed; a refused request has been answered. For adapters that await.
   */
  run(req: GuardRequest, res: GuardResponse): Promise<boolean>;
  /**
   * Judges an HTTP/1.1 Upgrade request (`server.on('upgrade', ...)`) as any request, and calls `next`
   * when it passes; a refused one is answered on the socket, which is then closed.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, next: () => void): void;
  /**
   * Calls `onReject` and sends the 400 for a failed verdict; destroys the response instead when it had already started.
   */
  reject(req: GuardRequest, res: GuardResponse, verdict: Extract<GuardVerdict, { ok: false }>): void;
}

const kIdentity = Symbol('mtls-gate.identity');
const STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 421, 495, 496]);

function publishVerdict(req: GuardRequest, verdict: GuardVerdict, status: number | undefined): void {
  const socket = tlsSocketOf(req);
  const sni = socket?.servername;
  const message: VerdictMessage = {
    ok: verdict.ok,
    reason: verdict.ok ? undefined : verdict.reason,
    detail: verdict.ok ? undefined : verdict.detail,
    allowList: verdict.ok ? undefined : verdict.allowList,
    status,
    sni: typeof sni === 'string' && sni !== '' ? sni : undefined,
    host: hostOf(req),
    sslId: verdict.sslId,
    route: matchedRouteName(req),
    resumed: socket?.isSessionReused() ?? false,
    fingerprint256: verdict.ok ? (verdict.identity?.fingerprint256 ?? null) : undefined,
    req,
  };
  channels.verdict.publish(message);
}

/** A custom refusal: its status if allowed, its headers (content-length set by us), its body. */
function sendCustom(res: GuardResponse, custom: RejectResponse, fallback: number): void {
  const r = res as ServerResponse;
  const given: unknown = custom.body;
  if (given !== undefined && typeof given !== 'string' && !(given instanceof Uint8Array))
    throw new TypeError('rejectResponse: body must be a string or bytes');
  const body =
    given === undefined ? Buffer.alloc(0) : typeof given === 'string' ? Buffer.from(given) : Buffer.from(given);
  // Everything read before anything is set: a throwing getter leaves the response untouched.
  const status: unknown = custom.status;
  const headers = Object.entries(custom.headers ?? {}).map(([k, v]) => [String(k), String(v)] as const);
  r.statusCode = typeof status === 'number' && STATUSES.has(status) ? status : fallback;
  for (const [k, v] of headers) {
    const name = k.toLowerCase();
    if (name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue;
    try {
      r.setHeader(k, v);
    } catch {
      // An invalid header name or value is left out.
    }
  }
  r.setHeader('content-length', body.length);
  r.end((r.req as { method?: string } | undefined)?.method === 'HEAD' ? undefined : body);
}

/**
 * The verified client of a request that passed {@link mtlsGuard}, or null (no certificate
 * required for it, or the guard did not run).
 */
export function getClientIdentity(req: object): ClientIdentity | null {
  return (req as Record<symbol, ClientIdentity | undefined>)[kIdentity] ?? null;
}

/**
 * Creates the guard: per request, before routing, it checks the client certificate of the
 * connection against the `client.ca` of the SSL object its SNI chose, and answers 400 when the
 * certificate is missing or bad. On success {@link getClientIdentity} returns the client.
 *
 * @example
 * ```ts
 * import https from 'node:https';
 * import { createSslStore, getClientIdentity, mtlsGuard } from 'mtls-gate';
 *
 * declare const cert: string, key: string, ca: string;
 * const store = createSslStore();
 * store.set({ id: 'api', cert, key, client: { ca } });
 * const guard = mtlsGuard({ store, onReject: (i) => console.warn(i.reason) });
 * https.createServer(store.tlsOptions(), (req, res) =>
 *   guard(req, res, () => res.end(getClientIdentity(req)?.subject)));
 * ```
 */
export function mtlsGuard(input: GuardOptions): MtlsGuard {
  if (!isPlainObject(input))
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      'options',
      `expected an object, received ${describe(input)}`,
    );
  // Each option read once, own properties only: see internal/plain.ts.
  const copy = plainCopy(input, '', { shallow: true }) as Record<string, unknown>;
  const options = parse(guardOptionsSchema(), copy);
  // The store itself, not the schema's output (which is rebuilt without prototypes).
  const store = storeInternals(copy.store)!;
  const page = options.page ?? 'default';
  const format = options.format ?? 'auto';
  const exposeReason = options.exposeReason ?? false;
  const onReject = options.onReject;
  const allowPlainHttp = options.allowPlainHttp ?? false;
  const decideOptions = Object.freeze({ allowPlainHttp });
  const statusByReason = (options.statusByReason ?? {}) as Partial<Record<RejectReason, number>>;
  const rejectResponse = options.rejectResponse;
  let policies: PolicySource | undefined;
  if (copy.policies !== undefined) {
    if (isPolicySource(copy.policies)) policies = copy.policies;
    else if (Array.isArray(copy.policies)) policies = policyList(copy.policies as PolicyEntry[]);
    else
      throw new MtlsGateConfigError(
        ErrorCodes.INVALID_OPTION,
        'policies',
        `expected the router or an array of { path, pathType, methods?, hosts?, mtls }, received ${describe(copy.policies)}`,
      );
  }
  const policyPath = pathOf as (r: object) => string | undefined;

  const check = (req: GuardRequest): GuardVerdict =>
    decide(
      store,
      policies
        ? {
            socket: tlsSocketOf(req),
            host: hostOf(req),
            request: req,
            path: skipPathOf as (r: object) => string | undefined,
            policies,
            policyPath,
            method: req.method,
          }
        : {
            socket: tlsSocketOf(req),
            host: hostOf(req),
            request: req,
            path: skipPathOf as (r: object) => string | undefined,
          },
      Date.now(),
      decideOptions,
    );

  const reject = (req: GuardRequest, res: GuardResponse, verdict: Extract<GuardVerdict, { ok: false }>): void => {
    const status = verdict.status ?? statusByReason[verdict.reason] ?? 400;
    let info: RejectInfo | undefined;
    const infoOf = (): RejectInfo => {
      const servername = tlsSocketOf(req)?.servername;
      return (info ??= {
        reason: verdict.reason,
        detail: verdict.detail,
        sslId: verdict.sslId,
        servername: typeof servername === 'string' ? servername : undefined,
        host: hostOf(req),
        req,
        status,
      });
    };
    // Contained: a logging hook must not turn a 400 into a crash.
    if (onReject) callHook('onReject', onReject, infoOf());
    const r = res as ServerResponse;
    if (r.headersSent || r.writableEnded) {
      // Too late to answer: something before the guard already responded (a Koa middleware that did
      // not await next(), an async step before the guard). Writing now would throw
      // ERR_HTTP_HEADERS_SENT, and the handlers after the guard must not run: end the connection
      // (HTTP/2: the stream) instead. onReject above has reported it.
      r.destroy();
      return;
    }
    if (rejectResponse) {
      let custom: RejectResponse | undefined;
      callHook(
        'rejectResponse',
        (i: RejectInfo) => {
          const got = rejectResponse(i);
          custom = got !== null && typeof got === 'object' && !('then' in got) ? got : undefined;
        },
        infoOf(),
      );
      if (custom) {
        try {
          sendCustom(res, custom, status);
          return;
        } catch (err) {
          // A body or headers that cannot be sent: reported, and the standard page instead.
          callHook('rejectResponse', () => {
            throw err;
          });
          if (r.headersSent) {
            r.destroy();
            return;
          }
        }
      }
    }
    sendErrorPage(res, status, {
      preset: page,
      format,
      accept: req.headers.accept,
      reason: exposeReason ? verdict.reason : undefined,
    });
  };

  /**
   * Judges a request and calls `next` (admitted) or answers it (refused), then `done`. A verdict
   * waiting for OCSP is awaited (the client's own timeout bounds it, twice at most) and judged
   * again; every other request is decided synchronously.
   */
  const handle = (
    req: GuardRequest,
    res: GuardResponse,
    next: (err?: unknown) => void,
    done?: (passed: boolean) => void,
    waited = 0,
  ): void => {
    let verdict: GuardVerdict;
    try {
      verdict = check(req);
    } catch (err) {
      // A verifier bug must not crash the server or let the request through: fail closed.
      verdict = {
        ok: false,
        reason: 'untrusted',
        detail: `internal error while verifying: ${(err as Error)?.message}`,
        sslId: undefined,
      };
    }
    if (!verdict.ok && verdict.pending) {
      // Twice at most (an answer that expired, or an object changed, while waiting); each wait is
      // bounded by the OCSP timeout.
      if (waited < 2) {
        const again = () => handle(req, res, next, done, waited + 1);
        verdict.pending.then(again, again);
        return;
      }
      verdict = {
        ok: false,
        reason: 'revocation_unknown',
        detail: 'no revocation answer (OCSP or CRL fetch) after waiting for it',
        sslId: verdict.sslId,
      };
    }
    if (channels.verdict.hasSubscribers)
      publishVerdict(req, verdict, verdict.ok ? undefined : (verdict.status ?? statusByReason[verdict.reason] ?? 400));
    if (verdict.ok) {
      if (verdict.identity) (req as unknown as Record<symbol, ClientIdentity>)[kIdentity] = verdict.identity;
      done?.(true);
      next();
    } else {
      reject(req, res, verdict);
      done?.(false);
    }
  };

  const guard = function mtlsGuardMiddleware(
    req: GuardRequest,
    res: GuardResponse,
    next: (err?: unknown) => void,
  ): void {
    handle(req, res, next);
  } as MtlsGuard;
  guard.run = (req, res) => new Promise<boolean>((resolve) => handle(req, res, () => {}, resolve));
  guard.upgrade = (req, socket, _head, next) => {
    // A response on the raw socket, for the refusal page; detached again when the request passes.
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as Socket);
    handle(
      req,
      res,
      () => {},
      (passed) => {
        if (passed) {
          res.detachSocket(socket as Socket);
          try {
            next();
          } catch (err) {
            // Whatever proxies the upgrade failed: the socket must not stay open, nor the process fall.
            socket.destroy(err instanceof Error ? err : undefined);
          }
        } else if (res.writableFinished) socket.end();
        else res.once('finish', () => socket.end());
      },
    );
  };
  guard.check = check;
  guard.reject = reject;
  return Object.freeze(guard);
}
