import { requestHost } from './host.js';
import { isCanonicalTarget, normalizePath } from './path.js';
import { targetOf } from './target.js';
import type { HttpRequest } from './types.js';

type Req = HttpRequest;
const kHost = Symbol('mtls-gate.host');
const kPath = Symbol('mtls-gate.path');
type Cached = { [kHost]?: string | undefined | null; [kPath]?: string | undefined | null };

/**
 * The request's host and normalised path, computed once per request and shared by the guard and
 * the router, so both decide on the very same values (and the work is not done twice).
 * `null` marks "computed, malformed" in the cache; callers get undefined.
 */
export function hostOf(req: Req): string | undefined {
  const c = req as unknown as Cached;
  let v = c[kHost];
  if (v === undefined) c[kHost] = v = requestHost(req) ?? null;
  return v ?? undefined;
}

export function pathOf(req: Req): string | undefined {
  const c = req as unknown as Cached;
  let v = c[kPath];
  if (v === undefined) c[kPath] = v = normalizePath(targetOf(req)) ?? null;
  return v ?? undefined;
}

/**
 * The path a skip-list may decide on: the normalised path when the raw target already has that form
 * (see `isCanonicalTarget`), else undefined (no skip: the request needs a certificate).
 */
export function skipPathOf(req: Req): string | undefined {
  const path = pathOf(req);
  return path !== undefined && isCanonicalTarget(targetOf(req)) ? path : undefined;
}

/** An SSL object as host ownership sees it: whether it requires a client certificate. */
export interface HostOwner {
  readonly mtls: boolean;
}

/** Answers "which SSL object owns this host or route host pattern" (one rule: internal/hostname.ts). */
export interface HostOwners {
  ownerOf(hostOrPattern: string): HostOwner | undefined;
  /** {@link HostOwners.ownerOf} for a route's host pattern: the same answer, remembered until the owners change. */
  ownerOfPattern(pattern: string): HostOwner | undefined;
}

const kOwners = Symbol('mtls-gate.owners');
const kOwner = Symbol('mtls-gate.owner');
type Judged = { [kOwners]?: HostOwners; [kOwner]?: HostOwner | undefined };

/**
 * Recorded by the guard on a request it let through: who owns the request's host (the guard bound
 * the request to it), and where to ask about other names. The router reads it back.
 */
export function recordHostOwner(req: object, owners: HostOwners, owner: HostOwner | undefined): void {
  const j = req as Judged;
  j[kOwners] = owners;
  j[kOwner] = owner;
}

/**
 * May a route bound to host `pattern` serve this request? Always, when no guard judged the request
 * (no store, no mTLS) or when the pattern's owner requires no certificate. Otherwise only when the
 * pattern's owner is the owner of the request's host, the object whose guard judged it: a request
 * for `x.b.a.test` owned by `*.b.a.test` (tenant C) is never served by a route of `*.a.test`
 * (tenant A), even when C has no route for it.
 */
export function routeHostAllowed(req: object, pattern: string): boolean {
  const owners = (req as Judged)[kOwners];
  if (owners === undefined) return true;
  const patternOwner = owners.ownerOfPattern(pattern);
  return patternOwner === undefined || !patternOwner.mtls || patternOwner === (req as Judged)[kOwner];
}
