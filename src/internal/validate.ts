/**
 * What every validating factory needs, in one place: how a received value is described in an
 * error, what counts as an options object, and the refusal of unknown keys.
 */
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';

/** A received value as an error message names it: short, never the value itself when it is long. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return v.length > 40 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/**
 * PEM as users have it, as Node's `tls` takes it: a string or bytes (a Buffer read from a file).
 * Bytes are decoded as UTF-8; anything else is returned unchanged for the caller to refuse.
 */
export function pemText(v: unknown): unknown {
  return v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : v;
}

/** An options or configuration record (not an array, not bytes). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Throws UNKNOWN_FIELD for the first key of `obj` that is not in `known`: a typo must not weaken a check. */
export function rejectUnknown(obj: Record<string, unknown>, known: ReadonlySet<string>, prefix: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) {
      throw new MtlsGateConfigError(
        ErrorCodes.UNKNOWN_FIELD,
        prefix + (k.length > 64 ? `${k.slice(0, 64)}...` : k),
        `unknown field (known: ${[...known].join(', ')})`,
      );
    }
  }
}

/**
 * A configuration error of one entry of a batch, with its field put under the entry's path:
 * `cert` under `set[2]` is `set[2].cert`. A field starting with `strip` (`services[0]` when the
 * entry was validated alone) loses that part first. Other errors are returned as they are.
 */
export function underField(err: unknown, at: string, strip = ''): unknown {
  if (!(err instanceof MtlsGateConfigError)) return err;
  const field = err.field ?? '';
  const message = field && err.message.startsWith(`${field}: `) ? err.message.slice(field.length + 2) : err.message;
  const rest = field === '(object)' ? '' : field.startsWith(strip) ? field.slice(strip.length) : field;
  const path = rest === '' ? at : rest.startsWith('[') || rest.startsWith('.') ? `${at}${rest}` : `${at}.${rest}`;
  return new MtlsGateConfigError(err.code, path, message, err.cause ?? err);
}
