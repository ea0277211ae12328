/**
 * The part of etcd's v3 API a gateway needs, spoken over etcd's own HTTP/JSON gateway (`/v3/kv/range`,
 * `/v3/kv/txn`, `/v3/watch`), the way APISIX talks to etcd, with undici (already the proxy's client).
 * Not the npm `etcd3` client: unreleased since 2023, 37 packages with gRPC, and measured to lose the
 * compaction revision of a cancelled watch and to refuse writes for seconds after etcd returns
 * (its circuit breaker). Keys and values are base64 on the wire; 64-bit numbers are decimal strings.
 */
import { undici } from '../internal/deps.js';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64');

/** The key just after every key starting with `prefix` (etcd's `range_end` of a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** One key as etcd holds it. */
export interface EtcdKv {
  key: string;
  value: Buffer;
  modRevision: number;
  createRevision: number;
}

/**
 * One watch response: events in revision order. Usually one revision (a transaction's changes arrive
 * together); a watch catching up from a past revision gets many revisions in one response.
 */
export interface WatchResponse {
  revision: number;
  events: { type: 'PUT' | 'DELETE'; kv: EtcdKv }[];
  /** The watch was cancelled because its start revision was compacted: re-read from scratch. */
  compactRevision?: number;
  canceled?: boolean;
}

/** An etcd error with the HTTP status (0 = unreachable). */
export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

class CallbackError {
  constructor(readonly error: unknown) {}
}

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
  create_revision?: string;
}
const kvOf = (k: RawKv): EtcdKv => ({
  key: unb64(k.key).toString('utf8'),
  value: unb64(k.value),
  modRevision: Number(k.mod_revision ?? 0),
  createRevision: Number(k.create_revision ?? 0),
});

export interface EtcdClientOptions {
  /** `http://127.0.0.1:2379`, one or more: tried in turn. */
  endpoints: readonly string[];
  /** Per request (not for a watch's stream), default 5,000 ms. */
  timeoutMs?: number;
}

/** A small etcd v3 client over the JSON gateway. */
export class EtcdClient {
  readonly #endpoints: string[];
  readonly #timeout: number;
  #current = 0;

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new Error('etcd: no endpoint');
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.#timeout = options.timeoutMs ?? 5000;
  }

  get endpoint(): string {
    return this.#endpoints[this.#current]!;
  }

  /** Moves to the next endpoint (after a watch on this one failed or went silent). */
  rotate(): void {
    this.#current = (this.#current + 1) % this.#endpoints.length;
  }

  /** POSTs to the first endpoint that answers, starting with the last one that did. */
  async #post(path: string, body: unknown): Promise<Record<string, unknown>> {
    let last: unknown;
    for (let n = 0; n < this.#endpoints.length; n++) {
      const i = (this.#current + n) % this.#endpoints.length;
      try {
        const res = await undici.request(`${this.#endpoints[i]}${path}`, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
          headersTimeout: this.#timeout,
          bodyTimeout: this.#timeout,
        });
        const text = await res.body.text();
        if (res.statusCode >= 500)
          throw new EtcdError(`etcd ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`, res.statusCode);
        this.#current = i;
        if (res.statusCode !== 200) {
          // etcd caps a transaction at --max-txn-ops operations (128 by default).
          const hint = /too many operations in txn/.test(text)
            ? ' (etcd allows --max-txn-ops operations per transaction, 128 by default: raise it on the etcd servers)'
            : '';
          throw new EtcdError(`etcd ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}${hint}`, res.statusCode);
        }
        return JSON.parse(text) as Record<string, unknown>;
      } catch (err) {
        if (err instanceof EtcdError && err.status > 0 && err.status < 500) throw err;
        last = err;
      }
    }
    throw last instanceof EtcdError
      ? last
      : new EtcdError(`etcd unreachable (${this.#endpoints.join(', ')}): ${(last as Error)?.message}`, 0);
  }

  /** Every key under `prefix`, and the store's revision at the read. */
  async rangePrefix(prefix: string): Promise<{ revision: number; kvs: EtcdKv[] }> {
    const r = await this.#post('/v3/kv/range', { key: b64(prefix), range_end: b64(prefixEnd(prefix)) });
    const header = r.header as { revision?: string } | undefined;
    return { revision: Number(header?.revision ?? 0), kvs: ((r.kvs as RawKv[] | undefined) ?? []).map(kvOf) };
  }

  /** Keys under `prefix` with their mod revisions, no values (a cheap check of what a watch should have seen). */
  async keysUnder(prefix: string): Promise<{ revision: number; count: number; maxModRevision: number }> {
    const r = await this.#post('/v3/kv/range', {
      key: b64(prefix),
      range_end: b64(prefixEnd(prefix)),
      keys_only: true,
    });
    const kvs = (r.kvs as RawKv[] | undefined) ?? [];
    return {
      revision: Number((r.header as { revision?: string } | undefined)?.revision ?? 0),
      count: kvs.length,
      maxModRevision: kvs.reduce((m, k) => Math.max(m, Number(k.mod_revision ?? 0)), 0),
    };
  }

  /** One key, or undefined. */
  async get(key: string): Promise<EtcdKv | undefined> {
    const r = await this.#post('/v3/kv/range', { key: b64(key) });
    const kvs = (r.kvs as RawKv[] | undefined) ?? [];
    return kvs[0] ? kvOf(kvs[0]) : undefined;
  }

  /**
   * A transaction: every `put` and `delete` at once, if every compare holds (`modRevision` of a key
   * equal to the given value; 0 = the key does not exist). Returns whether it was applied and the
   * revision it made.
   */
  async txn(ops: {
    put?: { key: string; value: string }[];
    delete?: string[];
    deletePrefix?: string[];
    ifModRevision?: { key: string; modRevision: number }[];
  }): Promise<{ succeeded: boolean; revision: number; deleted: number }> {
    const compare = (ops.ifModRevision ?? []).map((c) => ({
      key: b64(c.key),
      target: 'MOD',
      result: 'EQUAL',
      mod_revision: String(c.modRevision),
    }));
    const success = [
      ...(ops.put ?? []).map((p) => ({ request_put: { key: b64(p.key), value: b64(p.value) } })),
      ...(ops.delete ?? []).map((k) => ({ request_delete_range: { key: b64(k) } })),
      ...(ops.deletePrefix ?? []).map((k) => ({ request_delete_range: { key: b64(k), range_end: b64(prefixEnd(k)) } })),
    ];
    const r = await this.#post('/v3/kv/txn', { compare, success, failure: [] });
    const responses = (r.responses as { response_delete_range?: { deleted?: string } }[] | undefined) ?? [];
    const deleted = responses.reduce((n, x) => n + Number(x.response_delete_range?.deleted ?? 0), 0);
    return {
      succeeded: r.succeeded === true,
      revision: Number((r.header as { revision?: string } | undefined)?.revision ?? 0),
      deleted,
    };
  }

  /** Compacts the history up to `revision` (tests, operators). */
  async compact(revision: number): Promise<void> {
    await this.#post('/v3/kv/compaction', { revision: String(revision), physical: true });
  }

  /**
   * Watches every key under `prefix` from `startRevision`, calling `onResponse` per response (one per
   * revision). Resolves when the stream ends (etcd gone, `signal` aborted, or the watch cancelled,
   * which the last response says); rejects when etcd cannot be reached.
   */
  async watchPrefix(
    prefix: string,
    startRevision: number,
    onResponse: (r: WatchResponse) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const res = await undici
      .request(`${this.endpoint}/v3/watch`, {
        method: 'POST',
        body: JSON.stringify({
          create_request: {
            key: b64(prefix),
            range_end: b64(prefixEnd(prefix)),
            start_revision: String(startRevision),
            progress_notify: true,
          },
        }),
        headers: { 'content-type': 'application/json' },
        headersTimeout: this.#timeout,
        // A watch is quiet for as long as nothing changes: no body timeout here. The source checks
        // the stream is alive itself (a partition or a dead host ends nothing).
        bodyTimeout: 0,
        signal,
      })
      .catch((err: unknown) => {
        throw new EtcdError(`etcd watch unreachable (${this.endpoint}): ${(err as Error)?.message}`, 0);
      });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      throw new EtcdError(`etcd watch: HTTP ${res.statusCode} ${text.slice(0, 200)}`, res.statusCode);
    }
    let buffered = '';
    try {
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        // The gateway writes one JSON object per line.
        let nl: number;
        while ((nl = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (!line) continue;
          const msg = JSON.parse(line) as { result?: Record<string, unknown>; error?: { message?: string } };
          if (msg.error) throw new EtcdError(`etcd watch: ${msg.error.message ?? 'error'}`, 0);
          const r = msg.result ?? {};
          const header = r.header as { revision?: string } | undefined;
          const events = ((r.events as { type?: string; kv?: RawKv }[] | undefined) ?? []).map((e) => ({
            type: (e.type === 'DELETE' ? 'DELETE' : 'PUT') as 'PUT' | 'DELETE',
            kv: kvOf(e.kv ?? {}),
          }));
          try {
            onResponse({
              revision: Number(header?.revision ?? 0),
              events,
              ...(r.canceled ? { canceled: true } : {}),
              ...(r.compact_revision && r.compact_revision !== '0'
                ? { compactRevision: Number(r.compact_revision) }
                : {}),
            });
          } catch (err) {
            // The caller's own failure, passed on as it is (not an etcd error).
            throw new CallbackError(err);
          }
          if (r.canceled) return;
        }
      }
    } catch (err) {
      if (err instanceof CallbackError) throw err.error;
      if (signal.aborted) return;
      throw err instanceof EtcdError ? err : new EtcdError(`etcd watch ended: ${(err as Error)?.message}`, 0);
    }
  }
}
