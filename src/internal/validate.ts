/**
 * What every validating factory needs, in one place: how a received value is described in an
 * error, what counts as an options object, and the refusal of unknown keys.
 */
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';

/** A received value as an error message names it: short, never the value itself when it is long. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

/** An options or configuration record (not an array, not bytes). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Throws UNKNOWN_FIELD for the first key of `obj` that is not in `known`: a typo must not weaken a check. */
export function rejectUnknown(obj: Record<string, unknown>, known: ReadonlySet<string>, prefix: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) {
      throw new MtlsGateConfigError(ErrorCodes.UNKNOWN_FIELD, prefix + (k.length > 64 ? `${k.slice(0, 64)}...` : k), `unknown field (known: ${[...known].join(', ')})`);
    }
  }
}
