/**
 * undici (the proxy's upstream client, OCSP, CRL fetching, the etcd client) and yaml (config files),
 * loaded on first use: a guard without a router never loads them (internal/lazy.ts).
 */
import type * as Undici from 'undici';
import type * as Yaml from 'yaml';
import { lazyModule, requireDependency } from './lazy.js';

export const undici = lazyModule<typeof Undici>(() => requireDependency('undici') as typeof Undici);
export const yaml = lazyModule<typeof Yaml>(() => requireDependency('yaml') as typeof Yaml);
