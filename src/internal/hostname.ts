/**
 * Host names and the one rule that decides which pattern a host falls under.
 *
 * Two questions are answered with host patterns: which SSL object owns the host a request is for
 * (the guard's SNI/Host binding) and which routes serve it (the router's host table). They must
 * get the same answer, or a request is routed to a tenant whose guard never judged it: with SNI
 * rules (`*.a.test` covers one label) in the guard and route rules (any depth) in the router,
 * `Host: x.y.a.test` was judged as nobody's and routed to tenant A. So both call
 * {@link matchHost}, which implements APISIX's route-host semantics:
 *
 * - an exact name first;
 * - then `*.d` for every parent domain `d` of the host, nearest first: `*.a.test` covers
 *   `x.a.test` and `x.y.a.test` (any depth), never `a.test` itself;
 * - then the catch-all `*`, where there is one.
 *
 * The TLS handshake keeps APISIX's SNI rule (one label) for choosing a certificate: that is what a
 * wildcard certificate is valid for. Ownership of a Host is a separate question, answered here.
 */

/** What a host is looked up in: exact names, wildcard suffixes (`*.a.test` stored under `a.test`), the catch-all. */
export interface HostTables<T> {
  readonly exact: ReadonlyMap<string, T>;
  readonly wildcard: ReadonlyMap<string, T>;
  readonly star?: T | undefined;
}

/**
 * Visits the entries a (normalised) host falls under, most specific first, and returns the first
 * result `pick` gives. `pick` receives the pattern that matched (`x.a.test`, `*.a.test`, `*`), so a
 * caller can refuse a candidate and let the search go on.
 */
export function matchHost<T, R>(
  host: string,
  tables: HostTables<T>,
  pick: (entry: T, pattern: string) => R | undefined,
): R | undefined {
  if (host !== '') {
    const exact = tables.exact.get(host);
    if (exact !== undefined) {
      const r = pick(exact, host);
      if (r !== undefined) return r;
    }
    if (tables.wildcard.size > 0) {
      for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
        const suffix = host.slice(dot + 1);
        if (suffix === '') break;
        const wild = tables.wildcard.get(suffix);
        if (wild !== undefined) {
          const r = pick(wild, `*.${suffix}`);
          if (r !== undefined) return r;
        }
      }
    }
  }
  if (tables.star !== undefined) return pick(tables.star, '*');
  return undefined;
}

/** True when `s` holds only printable ASCII (no space): host names and patterns must be ASCII (punycode for IDNs). */
export function isPrintableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}
