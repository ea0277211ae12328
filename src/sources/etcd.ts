/**
 * An etcd configuration source: SSL objects under `{prefix}/ssls/{id}` and services under
 * `{prefix}/services/{name}`, each value the JSON of one entry of a config file's `ssls` / `services`.
 * Read the way APISIX reads its etcd: one range read of the prefix applied as one batch, then one
 * watch from the read's revision + 1, each watch response (one revision, a whole transaction)
 * applied as one batch. A compacted start revision or a revision going backwards (etcd restored or
 * replaced) means a full re-read, diffed against what is served. An invalid value is skipped and the
 * key's previous value keeps serving. While etcd is unreachable the last configuration serves, and
 * the source retries with jittered backoff.
 */

import { randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { MtlsGateConfigError } from '../errors.js';
import { channels } from '../observe/channels.js';
import { EtcdClient, type EtcdKv, type WatchResponse } from './etcd-client.js';

/** A change for the gateway: SSL objects and services to set and delete, at one source revision. */
export interface SourceChanges {
  ssls: { set: Record<string, unknown>[]; delete: string[] };
  services: { set: Record<string, unknown>[]; delete: string[] };
  revision: number;
  /** A full read: `set` holds every value, `delete` whatever the source no longer has. */
  full: boolean;
}

/** What the gateway refused of a change (the index into `set`). */
export interface SinkResult {
  rejected: { kind: 'ssl' | 'service'; index: number; error: MtlsGateConfigError }[];
}

export interface EtcdSourceOptions {
  endpoints: readonly string[];
  /** Default `/mtls-gate`. */
  prefix?: string;
  /** Every key that failed, every reconnect, every re-read. */
  onLog?: (record: { type: 'info' | 'warning' | 'error'; message: string; [k: string]: unknown }) => void;
  /**
   * Written (atomically, mode 0600: it holds private keys) after every applied revision, read at start when etcd is
   * unreachable.
   */
  snapshot?: string;
  /** How long the first read waits for etcd before falling back to the snapshot. Default 10,000 ms. */
  startTimeoutMs?: number;
}

/** What `/status` shows of the source. */
export interface EtcdSourceStatus {
  kind: 'etcd';
  endpoint: string;
  prefix: string;
  /** The etcd revision the served configuration is at. */
  revision: number;
  connected: boolean;
  /** Served from the snapshot file, etcd not reached yet. */
  fromSnapshot: boolean;
  lastError: string | undefined;
  /** Values refused since start (invalid JSON, a key and id that disagree, a failed validation). */
  invalid: number;
  ssls: number;
  services: number;
}

type Kind = 'ssl' | 'service';
interface Served {
  kind: Kind;
  name: string;
  value: Record<string, unknown>;
}

const MAX_BACKOFF_MS = 2000;
/** How often a quiet watch is checked against a read of the prefix's keys. */
const LIVENESS_MS = 5000;

/** The batch could not be applied: the watch loop reads everything again. */
class RereadError extends Error {}

/**
 * Creates an etcd configuration source; `start(apply)` resolves once a first configuration (etcd's,
 * or the snapshot's) is applied, and keeps calling `apply` with every change until `stop()`.
 *
 * @example
 * ```ts
 * import { createGateway, etcdSource } from 'mtls-gate';
 *
 * const gateway = await createGateway({ listen: [{ port: 9443 }] }, { awaitSource: true });
 * const source = etcdSource({ endpoints: ['http://127.0.0.1:2379'], prefix: '/mtls-gate' });
 * gateway.setSourceStatus(() => source.status());
 * await source.start((changes) => gateway.applyChanges(changes));
 * ```
 */
export function etcdSource(options: EtcdSourceOptions) {
  const prefix = (options.prefix ?? '/mtls-gate').replace(/\/+$/, '');
  const client = new EtcdClient({ endpoints: options.endpoints });
  const onLog = options.onLog;
  // Every source message also goes to mtls-gate:config (type `source`), for subscribers.
  const log: NonNullable<typeof onLog> = (m) => {
    if (channels.config.hasSubscribers)
      channels.config.publish({ ...m, level: m.type, type: 'source', source: 'etcd', at: Date.now() });
    onLog?.(m);
  };
  // The last valid value of every key that has one: what is served.
  const served = new Map<string, Served>();
  // Every key under the prefix as etcd has it (valid or not): what a read of the keys should show.
  const etcdKeys = new Set<string>();
  let revision = 0;
  let connected = false;
  let fromSnapshot = false;
  let lastError: string | undefined;
  let invalid = 0;
  let stopped = false;
  const abort = new AbortController();
  let sink: (c: SourceChanges) => SinkResult = () => ({ rejected: [] });

  /** A key of the layout, or undefined for what readers skip (directory keys, init_dir placeholders, other dirs). */
  const parseKey = (key: string): { kind: Kind; name: string } | undefined => {
    if (!key.startsWith(`${prefix}/`) || key.endsWith('/')) return undefined;
    const rest = key.slice(prefix.length + 1);
    const slash = rest.indexOf('/');
    if (slash === -1) return undefined;
    const dir = rest.slice(0, slash);
    const name = rest.slice(slash + 1);
    if (name === '' || name.includes('/')) return undefined;
    if (dir === 'ssls') return { kind: 'ssl', name };
    if (dir === 'services') return { kind: 'service', name };
    return undefined;
  };

  /** A value as an object for the gateway, or a reason it is refused before validation. */
  const parseValue = (kind: Kind, name: string, raw: Buffer): Record<string, unknown> | string => {
    const text = raw.toString('utf8');
    if (text === 'init_dir' || text === '') return 'placeholder';
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return 'not JSON';
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
    const body = v as Record<string, unknown>;
    const field = kind === 'ssl' ? 'id' : 'name';
    const own = Object.hasOwn(body, field) ? body[field] : undefined;
    // The key names the object: a body naming another is refused (APISIX sets the id from the key).
    if (own === undefined) body[field] = name;
    else if (typeof own !== 'string' && typeof own !== 'number') return `its ${field} is not a string`;
    else if (String(own) !== name)
      return `its ${field} ${JSON.stringify(String(own).slice(0, 64))} is not the key's ${JSON.stringify(name)}`;
    return body;
  };

  const refuse = (key: string, why: string) => {
    invalid++;
    log({ type: 'warning', message: `etcd ${key}: ${why}; the key's previous value keeps serving`, key });
  };

  /** Applies changed keys (PUT with a value, DELETE without) as one batch. */
  const applyKeys = (changes: { key: string; kv?: EtcdKv }[], rev: number, full: boolean) => {
    // A watch catching up gets many revisions in one response: only the last event of a key counts
    // (a key put then deleted is deleted; put twice, its last value).
    const last = new Map<string, EtcdKv | undefined>();
    for (const { key, kv } of changes) {
      last.delete(key);
      last.set(key, kv);
    }
    const batch: SourceChanges = {
      ssls: { set: [], delete: [] },
      services: { set: [], delete: [] },
      revision: rev,
      full,
    };
    const setKeys: { ssl: string[]; service: string[] } = { ssl: [], service: [] };
    const present = new Set<string>();
    for (const [key, kv] of last) {
      if (kv) etcdKeys.add(key);
      else etcdKeys.delete(key);
      const k = parseKey(key);
      if (!k) continue;
      const list = k.kind === 'ssl' ? batch.ssls : batch.services;
      if (!kv) {
        if (served.delete(key)) list.delete.push(k.name);
        continue;
      }
      present.add(key);
      let value: Record<string, unknown> | string;
      try {
        value = parseValue(k.kind, k.name, kv.value);
      } catch (err) {
        value = `cannot be read (${(err as Error).message})`;
      }
      if (value === 'placeholder') continue;
      if (typeof value === 'string') {
        refuse(key, value);
        continue;
      }
      list.set.push(value);
      setKeys[k.kind].push(key);
    }
    if (full) {
      // Deletions while we were not watching: served keys etcd no longer has.
      for (const [key, s] of served) {
        if (present.has(key)) continue;
        served.delete(key);
        (s.kind === 'ssl' ? batch.ssls : batch.services).delete.push(s.name);
      }
    }
    let result: SinkResult;
    try {
      result = sink(batch);
    } catch (err) {
      // Nothing of the batch can be trusted to have applied: read everything again (with backoff).
      log({
        type: 'error',
        message: `applying etcd revision ${rev} failed (${(err as Error).message}); reading everything again`,
      });
      revision = rev;
      throw new RereadError();
    }
    const rejected = new Map(result.rejected.map((r) => [`${r.kind}:${r.index}`, r.error]));
    for (const kind of ['ssl', 'service'] as const) {
      const list = kind === 'ssl' ? batch.ssls.set : batch.services.set;
      list.forEach((value, i) => {
        const key = setKeys[kind][i]!;
        const err = rejected.get(`${kind}:${i}`);
        if (err) refuse(key, `${err.field ?? ''} ${err.message}`.trim());
        else served.set(key, { kind, name: String(value[kind === 'ssl' ? 'id' : 'name']), value });
      });
    }
    revision = rev;
    scheduleSnapshot();
  };

  const fullRead = async () => {
    const r = await client.rangePrefix(`${prefix}/`);
    connected = true;
    lastError = undefined;
    fromSnapshot = false;
    etcdKeys.clear();
    applyKeys(
      r.kvs.map((kv) => ({ key: kv.key, kv })),
      r.revision,
      true,
    );
    log({
      type: 'info',
      message: `etcd ${client.endpoint}${prefix}: read at revision ${r.revision} (${served.size} keys served)`,
    });
  };

  let snapshotWrite: Promise<void> = Promise.resolve();
  let snapshotDirty = false;
  let snapshotBusy = false;
  /** Writes the served state, at most one write at a time; changes meanwhile are written once after it. */
  const scheduleSnapshot = () => {
    if (!options.snapshot || fromSnapshot) return;
    snapshotDirty = true;
    if (snapshotBusy) return;
    snapshotBusy = true;
    snapshotWrite = (async () => {
      while (snapshotDirty) {
        snapshotDirty = false;
        await writeSnapshot(options.snapshot!).catch((err: unknown) =>
          log({ type: 'error', message: `snapshot ${options.snapshot}: ${(err as Error).message}` }),
        );
      }
      snapshotBusy = false;
    })();
  };
  const writeSnapshot = async (path: string) => {
    const text = JSON.stringify({
      revision,
      prefix,
      ssls: [...served.values()].filter((s) => s.kind === 'ssl').map((s) => s.value),
      services: [...served.values()].filter((s) => s.kind === 'service').map((s) => s.value),
    });
    // A fresh name, created exclusively (O_EXCL does not follow a planted symlink), mode 0600 from the start.
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  };

  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
  const jitter = (ms: number) => ms / 2 + Math.random() * (ms / 2);

  const watchLoop = async () => {
    let backoff = 100;
    let reread = false;
    while (!stopped) {
      let liveness: NodeJS.Timeout | undefined;
      try {
        if (reread) {
          await fullRead();
          reread = false;
        }
        let first = true;
        const watchAbort = new AbortController();
        // A partition or a dead host ends no connection: a quiet watch is checked against a read of
        // the prefix's keys. A read that fails, or twice in a row shows keys the watch did not bring,
        // ends the watch; the next one catches up from the served revision.
        let suspicious = 0;
        liveness = setInterval(() => {
          void client.keysUnder(`${prefix}/`).then(
            (k) => {
              suspicious = k.maxModRevision > revision || k.count !== etcdKeys.size ? suspicious + 1 : 0;
              if (suspicious >= 2) {
                log({
                  type: 'warning',
                  message: `etcd watch on ${client.endpoint} is behind (keys at revision ${k.maxModRevision}, served ${revision}): watching again`,
                });
                watchAbort.abort();
              }
            },
            () => watchAbort.abort(),
          );
        }, LIVENESS_MS);
        liveness.unref();
        await client.watchPrefix(
          `${prefix}/`,
          revision + 1,
          (r: WatchResponse) => {
            connected = true;
            lastError = undefined;
            backoff = 100;
            if (r.canceled || r.compactRevision !== undefined) {
              log({
                type: 'warning',
                message: `etcd watch from revision ${revision + 1} cancelled (compacted at ${r.compactRevision ?? '?'}): reading everything again`,
              });
              reread = true;
              return;
            }
            // etcd restored from a backup or replaced: its revisions went backwards.
            if (r.revision !== 0 && r.revision < revision) {
              if (first)
                log({
                  type: 'warning',
                  message: `etcd revision went back from ${revision} to ${r.revision}: reading everything again`,
                });
              reread = true;
              watchAbort.abort();
              return;
            }
            first = false;
            if (r.events.length === 0) return;
            // The revision reached is the last event's: a catch-up response's header names etcd's
            // current revision, which later responses may still be bringing.
            const rev = r.events.reduce((m, e) => Math.max(m, e.kv.modRevision), 0) || r.revision;
            applyKeys(
              r.events.map((e) => ({ key: e.kv.key, kv: e.type === 'PUT' ? e.kv : undefined })),
              rev,
              false,
            );
          },
          AbortSignal.any([abort.signal, watchAbort.signal]),
        );
        if (stopped) return;
        if (!reread) throw new Error('the watch ended');
      } catch (err) {
        if (stopped) return;
        if (err instanceof RereadError) {
          reread = true;
        } else {
          if (connected)
            log({
              type: 'warning',
              message: `etcd: ${(err as Error).message}; serving revision ${revision}, retrying`,
            });
          connected = false;
          lastError = (err as Error).message;
          // Another endpoint next time, if there is one.
          client.rotate();
        }
        await sleep(jitter(backoff));
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      } finally {
        if (liveness) clearInterval(liveness);
      }
    }
  };
  let loop: Promise<void> | undefined;

  return {
    /** Reads etcd (or, when it stays unreachable past `startTimeoutMs`, the snapshot), applies it, then watches. */
    async start(apply: (c: SourceChanges) => SinkResult): Promise<void> {
      sink = apply;
      const until = Date.now() + (options.startTimeoutMs ?? 10_000);
      let backoff = 100;
      for (;;) {
        try {
          await fullRead();
          break;
        } catch (err) {
          lastError = (err as Error).message;
          if (Date.now() >= until) {
            if (!options.snapshot)
              throw new Error(
                `etcd unreachable (${options.endpoints.join(', ')}) for ${options.startTimeoutMs ?? 10_000} ms, and no --snapshot to serve: ${lastError}`,
                { cause: err },
              );
            let snap: { revision: number; ssls: Record<string, unknown>[]; services: Record<string, unknown>[] };
            try {
              snap = JSON.parse(readFileSync(options.snapshot, 'utf8')) as typeof snap;
            } catch (e) {
              throw new Error(
                `etcd unreachable (${lastError}), and the snapshot ${options.snapshot} cannot be read: ${(e as Error).message}`,
                { cause: e },
              );
            }
            fromSnapshot = true;
            for (const s of snap.ssls)
              served.set(`${prefix}/ssls/${String(s.id)}`, { kind: 'ssl', name: String(s.id), value: s });
            for (const s of snap.services)
              served.set(`${prefix}/services/${String(s.name)}`, { kind: 'service', name: String(s.name), value: s });
            sink({
              ssls: { set: snap.ssls, delete: [] },
              services: { set: snap.services, delete: [] },
              revision: snap.revision,
              full: true,
            });
            revision = snap.revision;
            log({
              type: 'warning',
              message: `etcd unreachable: serving the snapshot ${options.snapshot} (revision ${snap.revision}) until it answers`,
            });
            // The watch loop's first success re-reads everything (the snapshot may be stale).
            loop = (async () => {
              let b = 200;
              while (!stopped) {
                try {
                  await fullRead();
                  break;
                } catch {
                  await sleep(jitter(b));
                  b = Math.min(MAX_BACKOFF_MS, b * 2);
                }
              }
              if (!stopped) await watchLoop();
            })();
            return;
          }
          await sleep(jitter(backoff));
          backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
        }
      }
      loop = watchLoop();
    },
    async stop(): Promise<void> {
      stopped = true;
      abort.abort();
      await loop?.catch(() => {});
      await snapshotWrite;
    },
    status(): EtcdSourceStatus {
      let ssls = 0;
      for (const s of served.values()) if (s.kind === 'ssl') ssls++;
      return {
        kind: 'etcd',
        endpoint: client.endpoint,
        prefix,
        revision,
        connected,
        fromSnapshot,
        lastError,
        invalid,
        ssls,
        services: served.size - ssls,
      };
    },
  };
}

/** An etcd config source (see {@link etcdSource}). */
export type EtcdSource = ReturnType<typeof etcdSource>;
