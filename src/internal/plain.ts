/**
 * Configuration input copied into fresh, inert data before anything validates it.
 *
 * Validation that checks own keys but reads with plain property access can be fooled twice: an
 * inherited value (a polluted `Object.prototype` supplying `skipMtlsUriRegex: ['']` or
 * `tls: { verify: false }`) is read as configuration, and an accessor or Proxy can return one value
 * to the check and another to the compiler (a validated `protocols: ['https']` compiled as http).
 * So every factory copies its input once, reading each own enumerable property exactly once, into
 * null-prototype objects and plain arrays, and validates and compiles that copy alone. A `__proto__`
 * key is copied as an ordinary key (and then refused as an unknown field).
 */
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';

/** Deepest nesting configuration may have. */
export const MAX_NESTING = 32;
/** Most items in one array of configuration. */
export const MAX_ITEMS = 1_000_000;

export interface CopyOptions {
  /** Copy only the first level (options holding a store or callbacks that must stay as they are). */
  shallow?: boolean;
}

/**
 * A deep copy of `value` as null-prototype records, arrays without holes and primitives; functions kept as they are.
 */
export function plainCopy(value: unknown, field: string, options: CopyOptions = {}): unknown {
  return copy(value, field, 0, options.shallow === true);
}

function copy(value: unknown, field: string, depth: number, shallow: boolean): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_NESTING)
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, `nested more than ${MAX_NESTING} levels deep`);
  if (value instanceof Uint8Array) return Buffer.from(value);
  const inner = shallow && depth === 0 ? (v: unknown) => v : (v: unknown, f: string) => copy(v, f, depth + 1, shallow);
  if (Array.isArray(value)) {
    const length = value.length;
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length > MAX_ITEMS) {
      throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, `an array of more than ${MAX_ITEMS} items`);
    }
    // Every index is read and written: a hole would fall through to Array.prototype.
    const out: unknown[] = new Array(length);
    for (let i = 0; i < length; i++) out[i] = inner(value[i], `${field}[${i}]`);
    return out;
  }
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const v = inner((value as Record<string, unknown>)[key], field === '' ? key : `${field}.${key}`);
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
