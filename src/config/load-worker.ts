/**
 * Reads a config file on a worker thread (`loadConfigFileOffThread`): parsing a large YAML file
 * takes seconds (10,000 entries: 2.2 s with the `yaml` package), which must not stop a gateway that
 * is serving while it reloads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MtlsGateConfigError } from '../errors.js';
import { loadConfigFile } from './load.js';

const { path, env } = workerData as { path: string; env: Record<string, string | undefined> };
loadConfigFile(path, { env }).then(
  (loaded) => parentPort!.postMessage({ ok: true, loaded }),
  (err: unknown) =>
    parentPort!.postMessage({
      ok: false,
      error:
        err instanceof MtlsGateConfigError
          ? { code: err.code, field: err.field, message: err.message, issues: err.issues }
          : { message: (err as Error)?.message ?? String(err) },
    }),
);
