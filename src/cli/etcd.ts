/**
 * `mtls-gate etcd apply|put|delete`: the writers of a fleet's configuration. Every value is checked
 * by the schema (and the deeper checks: PEM, key pairs, CA flags) before anything is written; a whole
 * file goes in one transaction; one object can be written with compare-and-swap on its key's
 * `mod_revision` (`--if-revision`, 0 = the key must not exist), so two operators cannot overwrite
 * each other unknowingly.
 */
import { readFileSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import { validateConfig } from '../config/schema.js';
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { EtcdClient } from '../sources/etcd-client.js';
import { UsageError } from './usage.js';

interface EtcdCommandOptions {
  endpoints: string[];
  prefix: string;
  config: string | undefined;
  prune: boolean;
  ifRevision: number | undefined;
}

const keyOf = (prefix: string, kind: 'ssl' | 'service', name: string) =>
  `${prefix}/${kind === 'ssl' ? 'ssls' : 'services'}/${name}`;

/** Runs one writer; resolves to the line to print. */
export async function etcdCommand(args: string[], o: EtcdCommandOptions): Promise<string> {
  const client = new EtcdClient({ endpoints: o.endpoints });
  const [verb, kindArg, target] = args;
  if (o.ifRevision !== undefined && (!Number.isSafeInteger(o.ifRevision) || o.ifRevision < 0))
    throw new UsageError('--if-revision: expected a revision (0 = the key must not exist)');
  if (verb === 'apply') {
    if (!o.config) throw new UsageError('etcd apply: --config FILE is required');
    if (o.ifRevision !== undefined)
      throw new UsageError(
        'etcd apply: --if-revision applies to put and delete (one key); apply writes the whole file',
      );
    const loaded = await loadConfigFile(o.config);
    // The file is the whole configuration (listen and the rest may be there too: only ssls and services are written).
    const raw = loaded.config as Record<string, unknown>;
    const config = validateConfig({ listen: [{ port: 0 }], ssls: raw.ssls ?? [], services: raw.services ?? [] });
    const put = [
      ...(config.ssls ?? []).map((s) => ({
        key: keyOf(o.prefix, 'ssl', String(s.id)),
        value: JSON.stringify(jsonable(s)),
      })),
      ...(config.services ?? []).map((s) => ({ key: keyOf(o.prefix, 'service', s.name), value: JSON.stringify(s) })),
    ];
    let remove: string[] = [];
    if (o.prune) {
      const keep = new Set(put.map((p) => p.key));
      const existing = await client.rangePrefix(`${o.prefix}/`);
      // Only keys of the layout ({prefix}/ssls/{id}, {prefix}/services/{name}): what readers skip is left alone.
      const layout = new RegExp(`^${o.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(ssls|services)/[^/]+$`);
      remove = existing.kvs.map((kv) => kv.key).filter((k) => !keep.has(k) && layout.test(k));
    }
    const r = await client.txn({ put, delete: remove });
    return `wrote ${put.length} keys${o.prune ? `, removed ${remove.length}` : ''} under ${o.prefix} in one transaction (revision ${r.revision})`;
  }
  if (verb !== 'put' && verb !== 'delete')
    throw new UsageError(`etcd: expected apply, put or delete, received ${JSON.stringify(verb)}`);
  if (kindArg !== 'ssl' && kindArg !== 'service')
    throw new UsageError(`etcd ${verb}: expected ssl or service, received ${JSON.stringify(kindArg)}`);
  if (!target) throw new UsageError(`etcd ${verb} ${kindArg}: ${verb === 'put' ? 'FILE.json' : 'ID'} is required`);
  const cas = o.ifRevision === undefined ? [] : [{ key: '', modRevision: o.ifRevision }];
  if (verb === 'delete') {
    const key = keyOf(o.prefix, kindArg, target);
    for (const c of cas) c.key = key;
    const r = await client.txn({ delete: [key], ifModRevision: cas });
    if (!r.succeeded) throw conflict(key, o.ifRevision!, await client.get(key));
    return r.deleted > 0 ? `deleted ${key} (revision ${r.revision})` : `${key} was not there; nothing deleted`;
  }
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(target, 'utf8'));
  } catch (err) {
    throw new MtlsGateConfigError(
      ErrorCodes.CONFIG_FILE,
      '(file)',
      `${target}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const parsed = validateConfig({
    listen: [{ port: 0 }],
    ...(kindArg === 'ssl' ? { ssls: [body] } : { services: [body] }),
  });
  const value = kindArg === 'ssl' ? jsonable(parsed.ssls![0]!) : parsed.services![0]!;
  const name = kindArg === 'ssl' ? String((value as { id: unknown }).id) : (value as { name: string }).name;
  const key = keyOf(o.prefix, kindArg, name);
  for (const c of cas) c.key = key;
  const r = await client.txn({ put: [{ key, value: JSON.stringify(value) }], ifModRevision: cas });
  if (!r.succeeded) throw conflict(key, o.ifRevision!, await client.get(key));
  return `wrote ${key} (revision ${r.revision})`;
}

/** PEM Buffers (a library caller's) written as text. */
function jsonable(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x: unknown) =>
      x instanceof Uint8Array
        ? Buffer.from(x).toString('utf8')
        : (x as { type?: string; data?: number[] })?.type === 'Buffer'
          ? Buffer.from((x as { data: number[] }).data).toString('utf8')
          : x,
    ),
  );
}

function conflict(key: string, expected: number, now: { modRevision: number } | undefined): Error {
  return new Error(
    `conflict: ${key} is ${now ? `at revision ${now.modRevision}` : 'absent'}, not ${expected === 0 ? 'absent' : `at revision ${expected}`} as --if-revision said; nothing was written (read it again and retry)`,
  );
}
