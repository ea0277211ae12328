// The scenarios of the development tools (bench/profile.ts, bench/ab.ts), by name:
//   ka | new | nocert | fleet | store<N> (a gate store of N objects, handshakes on random SNIs)

import type { LoadConfig } from './loadgen.js';
import type { BenchPki } from './pki.js';
import { SERVERNAME } from './pki.js';
import type { SystemConfig } from './system.js';

export function devScenario(
  name: string,
  pki: BenchPki,
  system: SystemConfig['system'],
  upstream: string,
): { system: SystemConfig; load: (port: number, durationMs: number, fleetFile?: string) => LoadConfig } {
  if (!/^(ka|new|nocert|fleet|store\d+)$/.test(name))
    throw new Error(`unknown scenario ${name}: ka, new, nocert, fleet or store<N>`);
  const storeSize = name.startsWith('store') ? Number(name.slice(5)) : undefined;
  return {
    system: {
      system,
      ...pki.server,
      ca: pki.ca,
      servername: SERVERNAME,
      upstream,
      tickets: false,
      storeSize,
      storeCerts: pki.storeCerts,
    },
    // `fleetFile`: the fleet scenario's certificates (pki.fleetFile(window)); a server that is kept
    // across windows needs a new fleet each time.
    load: (port, durationMs, fleetFile) => ({
      mode: name === 'ka' ? 'ka' : 'new',
      port,
      servername: SERVERNAME,
      path: '/v1/json',
      connections: name === 'ka' ? 50 : 32,
      warmupMs: Number(process.env.BENCH_WARMUP_MS ?? 2000),
      durationMs,
      ...(name === 'nocert' ? {} : pki.client),
      ...(name === 'fleet' ? { fleetFile, fleetWarmupFile: pki.fleetWarmupFile } : {}),
      ...(storeSize && storeSize > 1
        ? { servernames: Array.from({ length: storeSize - 1 }, (_, i) => `store-${i + 1}.bench.test`) }
        : {}),
    }),
  };
}
