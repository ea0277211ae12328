/**
 * Dependencies a user may never need (undici for proxying and fetching, yaml for config files,
 * @peculiar/x509 for configured certificates and minted test PKIs), and zod, needed only once
 * something is configured, are loaded on first use, not at `import 'mtls-gate'`:
 * `import { createSslStore, mtlsGuard }` then costs what it uses. They are required through their
 * CommonJS builds, which Node loads synchronously.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A module loaded the first time one of its properties is read. `T` is the module's type
 * (`typeof import('undici')`); the value behaves as the module namespace.
 */
export function lazyModule<T extends object>(load: () => T): T {
  let mod: T | undefined;
  const get = () => (mod ??= load());
  return new Proxy({} as T, {
    // `then` is not a module's: without this, awaiting the proxy would load the module.
    get: (_t, key) => (key === 'then' ? undefined : Reflect.get(get(), key)),
    has: (_t, key) => Reflect.has(get(), key),
  });
}

/** `require` for the lazily loaded dependencies. */
export const requireDependency = (id: string): unknown => require(id);
