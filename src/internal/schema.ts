/**
 * The schema library's place in the house. Every shape of configuration (SSL objects, services,
 * routes, upstreams, guard options, server limits, the config file's top level) is defined once,
 * with zod 4, in the `schema.ts` of its folder; the TypeScript types, the validation and the JSON
 * Schema shipped as `mtls-gate/schema.json` all come from that one definition.
 *
 * This module turns zod's issues into our errors: the first problem becomes the thrown
 * {@link MtlsGateConfigError}'s `code` and `field`, and every problem is listed in its `issues`,
 * each with the full path as data (`ssls[3].client.ca`).
 *
 * Why zod 4 (4.6.7): no dependencies, works on Node 20, strict objects (unknown keys are errors,
 * as a security library needs), `toJSONSchema` for draft 2020-12 from the same definitions, and
 * paths on every issue. TypeBox gives JSON Schema natively but its error paths are JSON pointers
 * and its TypeScript types need the schema written in its own builder; valibot needs a second
 * package for JSON Schema. Measured on this machine, parsing an SSL object takes microseconds,
 * nothing beside the PEM parsing and TLS context that follow it.
 *
 * zod is loaded on first use, not at `import 'mtls-gate'`: its 95 files and the building of every
 * schema cost about 90 ms, paid now by the first call that validates something (`createSslStore`,
 * `mtlsGuard`, `createRouter`, ...). `z` is the module, loaded synchronously on the first read of
 * one of its properties (internal/lazy.ts); every schema is built by a {@link lazySchema} thunk.
 * Types are written with the type-only namespace {@link Zod} (`Zod.input<...>`), which loads nothing.
 */
import type * as Zod from 'zod';
import { type ConfigIssue, type ErrorCode, ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { lazyModule, requireDependency } from './lazy.js';
import { describe } from './validate.js';

export type { Zod };

/** zod, loaded synchronously (its CommonJS build) the first time one of its properties is read. */
export const z = lazyModule<typeof Zod>(() => requireDependency('zod') as typeof Zod);

/**
 * A schema built on its first call, the same instance on every call after: zod keeps metadata
 * (`.meta()`, read by `toJSONSchema`) in a registry keyed by schema instance, so a schema is made
 * once and shared, never rebuilt nor wrapped in a Proxy.
 */
export function lazySchema<T>(make: () => T): () => T {
  let made: { schema: T } | undefined;
  return () => (made ??= { schema: make() }).schema;
}

/** What a {@link lazySchema} thunk's schema takes: the type users write. */
export type SchemaInput<F extends () => Zod.ZodType> = Zod.input<ReturnType<F>>;
/** What a {@link lazySchema} thunk's schema gives after validation. */
export type SchemaOutput<F extends () => Zod.ZodType> = Zod.output<ReturnType<F>>;

/** A path as error fields write it: keys joined by `.`, indexes as `[i]`, odd keys quoted. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      // A key is the sender's text: long ones are cut, odd ones quoted, so a field stays a short name.
      const key = String(part);
      if (key.length <= 64 && /^[A-Za-z0-9_$-]+$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}...` : key)}]`;
    }
  }
  return out;
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean (true or false)',
  object: 'an object',
  array: 'an array',
  nonoptional: 'a value',
};

const isMissing = (issue: Zod.core.$ZodIssue) =>
  issue.input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union');

/** Our code for a custom issue is carried in its params: `{ params: { code } }`. */
function codeOf(issue: Zod.core.$ZodIssue): ErrorCode {
  if (issue.code === 'unrecognized_keys') return ErrorCodes.UNKNOWN_FIELD;
  if (isMissing(issue)) return ErrorCodes.MISSING_FIELD;
  if (issue.code === 'custom') {
    const code = (issue.params as { code?: ErrorCode } | undefined)?.code;
    if (code) return code;
  }
  return ErrorCodes.INVALID_OPTION;
}

/** zod's default messages are replaced by ours where we know better; a custom `error` is kept. */
function messageOf(issue: Zod.core.$ZodIssue): string {
  const received = `received ${describe(issue.input)}`;
  if (isMissing(issue)) return 'is required';
  if (issue.code === 'custom') return issue.message;
  // Our own wording ("expected PEM text ...") gets what was received added.
  if (issue.message.startsWith('expected '))
    return issue.message.includes('received') ? issue.message : `${issue.message}, ${received}`;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${ARTICLE[issue.expected] ?? issue.expected}, ${received}`;
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, ${received}`;
    case 'too_small':
    case 'too_big': {
      const bound = String(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      if (issue.origin === 'array' || issue.origin === 'set')
        return `expected ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound} item(s), ${received}`;
      if (issue.origin === 'string')
        return `expected ${issue.code === 'too_small' ? 'at least' : 'at most'} ${bound} characters, received ${String((issue.input as string).length)}`;
      const op =
        issue.code === 'too_small'
          ? issue.inclusive
            ? 'at least'
            : 'more than'
          : issue.inclusive
            ? 'at most'
            : 'less than';
      return `expected ${op} ${bound}, ${received}`;
    }
    case 'not_multiple_of':
      return `expected an integer, ${received}`;
    default:
      return `${issue.message}, ${received}`;
  }
}

/**
 * A union failed: when the value had the type of exactly one option (an upstream object with a bad
 * port, a `{ file }` PEM with a typo), that option's problems say more than "expected A or B".
 */
function unionBranch(issue: Zod.core.$ZodIssueInvalidUnion): Zod.core.$ZodIssue[] | undefined {
  const typeMatches = issue.errors.filter(
    (branch) =>
      !branch.some(
        (i) =>
          i.path.length === 0 &&
          (i.code === 'invalid_type' ||
            i.code === 'invalid_union' ||
            i.code === 'invalid_value' ||
            i.code === 'custom'),
      ),
  );
  return typeMatches.length === 1 ? typeMatches[0] : undefined;
}

function flatten(
  issues: readonly Zod.core.$ZodIssue[],
  base: readonly PropertyKey[],
  prefix: string,
  out: ConfigIssue[],
): void {
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code === 'invalid_union') {
      const branch = unionBranch(issue);
      if (branch) {
        flatten(branch, path, prefix, out);
        continue;
      }
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        out.push({
          code: ErrorCodes.UNKNOWN_FIELD,
          field: formatPath([...path, key], prefix),
          message: 'unknown field',
        });
      continue;
    }
    out.push({ code: codeOf(issue), field: formatPath(path, prefix) || '(object)', message: messageOf(issue) });
  }
}

/** zod's issues as ours, every one, each with its full path under `prefix`. */
export function toIssues(error: Zod.core.$ZodError, prefix = ''): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  flatten(error.issues, [], prefix, out);
  return out;
}

/** The thrown form of a list of issues: the first names the error, all are in `issues`. */
export function issuesError(issues: readonly ConfigIssue[], cause?: unknown): MtlsGateConfigError {
  const first = issues[0]!;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new MtlsGateConfigError(first.code, first.field, `${first.message}${more}`, cause, issues);
}

/**
 * zod builds its output objects as `{}`: an optional field left out would then be read from
 * Object.prototype, where a polluted `depth` or `skipMtlsUriRegex` would become configuration.
 * Its plain objects and arrays are rebuilt without a prototype (other values, such as Buffers, a
 * store or a hook, are kept as they are).
 */
export function detached(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(detached);
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== Object.prototype) return v;
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, item] of Object.entries(v)) out[k] = detached(item);
  return out;
}

/**
 * Parses `input` with `schema`, or throws an {@link MtlsGateConfigError} listing every problem.
 * Inputs are already plain copies (internal/plain.ts): zod reads each value once from our copy.
 */
export function parse<S extends Zod.ZodType>(schema: S, input: unknown, prefix = ''): Zod.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return detached(result.data) as Zod.output<S>;
  // zod's error is not kept as the cause: its issues hold the input, and a private key pasted
  // into the wrong field must not travel in an error (our messages describe values, never echo them).
  throw issuesError(toIssues(result.error, prefix));
}

/** A custom problem inside a refinement, with our code: `ctx.addIssue(problem(...))`. */
export function problem(code: ErrorCode, message: string, path: PropertyKey[] = []): Zod.core.$ZodRawIssue {
  return { code: 'custom', message, path, params: { code }, input: undefined };
}

/**
 * A string matching `pattern`, with our wording of what was expected (zod's says "Invalid
 * string: must match pattern").
 */
export const matching = (pattern: RegExp, expected: string) =>
  z
    .string({ error: (i) => (i.input === undefined ? undefined : `expected ${expected}`) })
    .regex(pattern, { error: `expected ${expected}` });

/** Bytes of any kind (a Buffer of any backing store). */
export const bytes = lazySchema(() => z.custom<Uint8Array>((v) => v instanceof Uint8Array));
/** A PEM field as the library takes it: PEM text, or bytes (a Buffer read from a file). */
export const pemInput = lazySchema(() =>
  z.union([z.string(), bytes()], {
    error: (i) => (i.input === undefined ? undefined : 'expected PEM text (a string or a Buffer)'),
  }),
);

/** A PEM field as a config file writes it: PEM text, or `{ file: PATH }` relative to the file. */
export const pemFile = lazySchema(() =>
  z.union(
    [
      z.string().meta({ description: 'PEM text' }),
      z.strictObject({
        file: z.string().min(1).meta({ description: 'Path of a PEM file, relative to the config file' }),
      }),
    ],
    { error: (i) => (i.input === undefined ? undefined : 'expected PEM text or { file: PATH }') },
  ),
);

/** The PEM schema a shape is built with: the library's (strings, bytes) or the config file's (strings, `{ file }`). */
export type PemSchema = ReturnType<typeof pemInput> | ReturnType<typeof pemFile>;
