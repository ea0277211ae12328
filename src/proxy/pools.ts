import type { Pool } from 'undici';
import { undici } from '../internal/deps.js';
import type { CompiledUpstream } from './upstream.js';

/**
 * Keep-alive connection pools, one per upstream node and TLS setting, shared by every route that
 * points there and kept across router updates while still in use.
 */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #counters = new Map<string, number>();
  /** Per compiled upstream (immutable): total weight and each node's pool key, made once instead of per request. */
  readonly #plans = new WeakMap<CompiledUpstream, { total: number; keys: string[] }>();

  /** The pool for the next node of `u` (weighted round robin), or undefined when no node has weight. */
  pick(u: CompiledUpstream): { pool: Pool; node: CompiledUpstream['nodes'][number] } | undefined {
    let plan = this.#plans.get(u);
    if (!plan) {
      plan = {
        total: u.nodes.reduce((n, x) => n + x.weight, 0),
        keys: u.nodes.map(
          (n) =>
            `${n.origin}|${u.tls.id}|${u.timeout.connect}|${u.maxConnections}|${u.passHost === 'rewrite' ? u.upstreamHost : ''}`,
        ),
      };
      this.#plans.set(u, plan);
    }
    const total = plan.total;
    if (total === 0) return undefined;
    const count = this.#counters.get(u.key) ?? 0;
    this.#counters.set(u.key, (count + 1) % total);
    let slot = count % total;
    let at = 0;
    for (let i = 0; i < u.nodes.length; i++) {
      const weight = u.nodes[i]!.weight;
      if (slot < weight) {
        at = i;
        break;
      }
      slot -= weight;
    }
    const node = u.nodes[at]!;
    return { pool: this.#pool(plan.keys[at]!, u, node), node };
  }

  #pool(key: string, u: CompiledUpstream, node: CompiledUpstream['nodes'][number]): Pool {
    let pool = this.#pools.get(key);
    if (!pool) {
      const sni =
        u.tls.servername ??
        (u.passHost === 'rewrite' && u.upstreamHost ? u.upstreamHost.replace(/:\d+$/, '') : node.host);
      pool = new undici.Pool(node.origin, {
        connections: u.maxConnections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: {
          timeout: u.timeout.connect * 1000,
          ...(u.scheme === 'https'
            ? {
                servername: /^[\d.]+$|:/.test(sni) ? undefined : sni,
                rejectUnauthorized: u.tls.verify,
                ...(u.tls.ca ? { ca: u.tls.ca } : {}),
                ...(u.tls.cert && u.tls.key ? { cert: u.tls.cert, key: u.tls.key } : {}),
              }
            : {}),
        },
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Closes pools no upstream in `keep` uses any more (after a router update); in-flight requests finish. */
  retain(keep: readonly CompiledUpstream[]): void {
    const origins = new Set(keep.flatMap((u) => u.nodes.map((n) => n.origin)));
    for (const [key, pool] of this.#pools) {
      if (!origins.has(key.slice(0, key.indexOf('|')))) {
        this.#pools.delete(key);
        void pool.close().catch(() => {});
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => {})));
  }
}
