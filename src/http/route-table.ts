import { type HostTables, matchHost } from '../internal/hostname.js';
import { routeHostAllowed } from './facts.js';
/** What the table matches on: a route of the router, or a policy entry of the guard. */
export interface MatchableRoute {
  readonly fullPath: string;
  readonly exact: boolean;
  readonly methods: ReadonlySet<string> | undefined;
  readonly hosts: readonly string[];
}

/** Routes of one host scope: exact paths in a Map, prefixes by length, longest first. */
class PathTable<CompiledRoute extends MatchableRoute> {
  readonly #exact = new Map<string, CompiledRoute[]>();
  readonly #prefixes = new Map<string, CompiledRoute[]>();
  #lengths: number[] = [];

  add(r: CompiledRoute): void {
    const map = r.exact ? this.#exact : this.#prefixes;
    const list = map.get(r.fullPath);
    if (list) list.push(r);
    else map.set(r.fullPath, [r]);
    if (!r.exact && !this.#lengths.includes(r.fullPath.length))
      this.#lengths = [...this.#lengths, r.fullPath.length].sort((a, b) => b - a);
  }

  /** First route matching path and method; a method mismatch is no match (the search goes on). */
  match(path: string, method: string): CompiledRoute | undefined {
    const exact = this.#exact.get(path);
    if (exact) for (const r of exact) if (!r.methods || r.methods.has(method)) return r;
    for (const len of this.#lengths) {
      if (len > path.length) continue;
      const list = this.#prefixes.get(path.length === len ? path : path.slice(0, len));
      if (list) for (const r of list) if (!r.methods || r.methods.has(method)) return r;
    }
    return undefined;
  }
}

/**
 * APISIX's order (radixtree_host_uri): routes bound to the request's host first (an exact host
 * before wildcards, the most specific wildcard first: the rule of internal/hostname.ts, which the
 * guard's host ownership uses too), then host-less routes; within each scope exact paths before
 * prefixes and longer prefixes first; configuration order breaks ties.
 */
export class RouteTable<CompiledRoute extends MatchableRoute> {
  readonly #exact = new Map<string, PathTable<CompiledRoute>>();
  readonly #wildcard = new Map<string, PathTable<CompiledRoute>>();
  readonly #hosts: HostTables<PathTable<CompiledRoute>> = { exact: this.#exact, wildcard: this.#wildcard };
  readonly #any = new PathTable<CompiledRoute>();
  readonly size: number;

  constructor(routes: readonly CompiledRoute[]) {
    this.size = routes.length;
    for (const r of routes) {
      if (r.hosts.length === 0) {
        this.#any.add(r);
        continue;
      }
      for (const h of r.hosts) {
        const [map, key] = h.startsWith('*.') ? [this.#wildcard, h.slice(2)] : [this.#exact, h];
        let t = map.get(key);
        if (!t) map.set(key, (t = new PathTable<CompiledRoute>()));
        t.add(r);
      }
    }
  }

  /**
   * The route for a request. `req`, when given, is the request a guard judged: a host-bound route
   * is taken only where its host pattern's owner is the request host's owner (`routeHostAllowed`).
   */
  match(host: string, path: string, method: string, req?: object): CompiledRoute | undefined {
    if (host) {
      const r = matchHost(host, this.#hosts, (t, pattern) =>
        req !== undefined && !routeHostAllowed(req, pattern) ? undefined : t.match(path, method),
      );
      if (r) return r;
    }
    return this.#any.match(path, method);
  }
}
