/**
 * Reading a gateway configuration file (YAML or JSON) into plain data: `${VAR}` replaced from the
 * environment and `{ file: PATH }` references replaced by the referenced file's text. The shape is
 * not checked here; the config schema does that with the data this module produces.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { type ConfigIssue, type ErrorCode, ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { yaml } from '../internal/deps.js';
import { MAX_NESTING } from '../internal/plain.js';

/** Largest configuration file read, in bytes. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Largest file a `{ file: PATH }` reference may name, in bytes: a CRL of 100,000 entries is about 4 MB of PEM. */
const MAX_REFERENCED_BYTES = 16 * 1024 * 1024;

/** A configuration file as data, with the files it was made from. */
export interface LoadedConfig {
  /** The parsed document with ${VAR} replaced and every { file } reference replaced by the file's text. */
  readonly config: unknown;
  /** Absolute paths: the config file first, then every referenced file (for a watcher). */
  readonly files: readonly string[];
  /**
   * sha256 (hex) over the config file's bytes and the referenced files' bytes, in order, and the
   * values substituted for `${VAR}`: equal digests, equal config.
   */
  readonly digest: string;
}

/** Options of {@link loadConfigFile} and {@link loadConfigText}. */
export interface LoadOptions {
  /** Where `${VAR}` values come from; default `process.env`. */
  env?: Record<string, string | undefined>;
}

const FILE = '(file)';
// Keys that would reach a prototype if any later code copied the data with plain assignment.
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
// `$${` (a literal), or `${` with the reference after it when the reference is well formed.
const REFERENCE = /\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\})?/g;
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Context {
  readonly env: Record<string, string | undefined>;
  readonly baseDir: string;
  /** Referenced files by absolute path, in the order first referenced. */
  readonly read: Map<string, { bytes: Buffer; text: string }>;
  /** What each `${...}` became, in document order (for the digest). */
  readonly values: string[];
}

/**
 * Reads a configuration file: `.json` as JSON, `.yaml`/`.yml` as YAML 1.2 (core schema, one document).
 *
 * @example
 * ```ts
 * import { loadConfigFile } from 'mtls-gate';
 *
 * const { config, files, digest } = await loadConfigFile('/etc/mtls-gate/gateway.yaml');
 * ```
 * @throws {MtlsGateConfigError} `ERR_MTLS_CONFIG_FILE`, `ERR_MTLS_CONFIG_VARIABLE`, `ERR_MTLS_UNKNOWN_FIELD`,
 * `ERR_MTLS_INVALID_OPTION`.
 */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const abs = resolve(path);
  const ext = extname(abs).toLowerCase();
  const format = ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  if (format === undefined) throw fileError(FILE, `${abs}: unknown extension "${ext}" (expected .yaml, .yml or .json)`);
  const bytes = await readBounded(abs, MAX_CONFIG_BYTES, FILE);
  const loaded = await load(decode(bytes, abs, FILE), bytes, format, dirname(abs), abs, options);
  return { ...loaded, files: Object.freeze([abs, ...loaded.files]) };
}

/**
 * The same as {@link loadConfigFile} on already-read text (tests, stdin); `baseDir` resolves relative
 * `{ file }` paths. `files` lists the referenced files only.
 *
 * @example
 * ```ts
 * import { loadConfigText } from 'mtls-gate';
 *
 * const { config } = await loadConfigText('ssls: [{ cert: { file: cert.pem } }]', 'yaml', process.cwd());
 * ```
 */
export async function loadConfigText(
  text: string,
  format: 'yaml' | 'json',
  baseDir: string,
  options: LoadOptions = {},
): Promise<Omit<LoadedConfig, 'files'> & { files: readonly string[] }> {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > MAX_CONFIG_BYTES)
    throw fileError(FILE, `(text): ${bytes.length} bytes, more than the ${MAX_CONFIG_BYTES} allowed`);
  return load(text, bytes, format, resolve(baseDir), '(text)', options);
}

async function load(
  text: string,
  bytes: Buffer,
  format: string,
  baseDir: string,
  name: string,
  options: LoadOptions,
): Promise<LoadedConfig> {
  const ctx: Context = { env: options.env ?? process.env, baseDir, read: new Map(), values: [] };
  const config = await walk(parse(text, format, name), '', 0, ctx);
  // Each part is length-prefixed, so moving bytes from one file to the next changes the digest.
  const hash = createHash('sha256');
  const parts = [
    bytes,
    ...[...ctx.read.values()].map((f) => f.bytes),
    ...ctx.values.map((v) => Buffer.from(v, 'utf8')),
  ];
  for (const part of parts) {
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(part.length));
    hash.update(length).update(part);
  }
  return { config, files: Object.freeze([...ctx.read.keys()]), digest: hash.digest('hex') };
}

function parse(text: string, format: string, name: string): unknown {
  if (format === 'json') {
    try {
      return JSON.parse(text);
    } catch (err) {
      // V8 (Node 20) reports an offset, when it reports anything; line and column are what an editor needs.
      const message = (err as Error).message;
      const offset =
        /at position (\d+)/.exec(message)?.[1] ?? (/end of JSON input/.test(message) ? String(text.length) : undefined);
      // V8's message quotes the text around the fault, which may be a private key: only where it is.
      throw fileError(FILE, `${name}${offset === undefined ? '' : at(text, Number(offset))}: not valid JSON`);
    }
  }
  if (format !== 'yaml') throw fileError(FILE, `${name}: unknown format "${format}" (expected yaml or json)`);
  // Core schema: `on`/`yes` stay strings. resolveKnownTags off and warnings treated as errors, so
  // `!!binary`, `!!set`, `!!timestamp` and custom tags are refused rather than becoming Buffers,
  // Sets, Dates or silently untagged strings. stringKeys refuses `? [a]: b` keys.
  const doc = yaml.parseDocument(text, {
    version: '1.2',
    schema: 'core',
    uniqueKeys: true,
    merge: false,
    stringKeys: true,
    resolveKnownTags: false,
  });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const pos = problem.linePos?.[0];
    // yaml's own advice for several documents (parseAllDocuments) is no help to someone writing a config.
    const what =
      problem.code === 'MULTIPLE_DOCS'
        ? 'more than one YAML document (a configuration file holds one)'
        : problem.message.replace(/ at line \d+, column \d+[\s\S]*$/, '');
    // Not kept as the cause: yaml's error carries the source line, which may hold a private key.
    throw fileError(FILE, `${name}${pos ? `, line ${pos.line}, column ${pos.col}` : ''}: ${what}`);
  }
  try {
    // Aliases are the billion-laughs vector: yaml stops resolving them once their expansion passes 100.
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw fileError(FILE, `${name}: ${(err as Error).message}`, err);
  }
}

async function walk(value: unknown, field: string, depth: number, ctx: Context): Promise<unknown> {
  if (typeof value === 'string') return substitute(value, field, ctx);
  if (value === null || typeof value !== 'object') return value;
  // Also where a self-referencing YAML alias (`a: &a [*a]`) ends.
  if (depth > MAX_NESTING)
    throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, field, `nested more than ${MAX_NESTING} levels deep`);
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) out.push(await walk(value[i], `${field}[${i}]`, depth + 1, ctx));
    return out;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  for (const key of keys) {
    if (FORBIDDEN_KEYS.has(key))
      throw new MtlsGateConfigError(ErrorCodes.UNKNOWN_FIELD, join(field, key), `"${key}" is not allowed as a key`);
  }
  if (keys.length === 1 && keys[0] === 'file' && typeof record.file === 'string')
    return reference(record.file, join(field, 'file'), ctx);
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of keys) {
    const v = await walk(record[key], join(field, key), depth + 1, ctx);
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

async function reference(path: string, field: string, ctx: Context): Promise<string> {
  const abs = resolve(ctx.baseDir, substitute(path, field, ctx));
  let file = ctx.read.get(abs);
  if (file === undefined) {
    const bytes = await readBounded(abs, MAX_REFERENCED_BYTES, field);
    file = { bytes, text: decode(bytes, abs, field) };
    ctx.read.set(abs, file);
  }
  return file.text;
}

function substitute(s: string, field: string, ctx: Context): string {
  if (!s.includes('${')) return s;
  // One pass over the original string: a value that itself contains `${X}` is not expanded again.
  return s.replace(
    REFERENCE,
    (match: string, name: string | undefined, fallback: string | undefined, offset: number) => {
      if (match === '$${') return '${';
      if (name === undefined || fallback?.includes('${')) {
        const bad = JSON.stringify(s.slice(offset, offset + 24));
        throw new MtlsGateConfigError(
          ErrorCodes.CONFIG_VARIABLE,
          field,
          `${bad} is not a variable reference: write \${NAME}, \${NAME:=default}, or $\${ for a literal "\${"`,
        );
      }
      // Own properties only: a plain `env` object would otherwise supply `${constructor}`.
      const set = Object.hasOwn(ctx.env, name) ? ctx.env[name] : undefined;
      const value = fallback !== undefined && (set === undefined || set === '') ? fallback : set;
      if (value === undefined)
        throw new MtlsGateConfigError(ErrorCodes.CONFIG_VARIABLE, field, `environment variable ${name} is not set`);
      ctx.values.push(value);
      return value;
    },
  );
}

async function readBounded(path: string, limit: number, field: string): Promise<Buffer> {
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below then refuses it.
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fileError(field, `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw fileError(field, `${path} is not a regular file`);
    if (info.size > limit) throw fileError(field, `${path} is ${info.size} bytes, more than the ${limit} allowed`);
    // readFile on a handle reads up to the size fstat reported; the check after covers a file that grew.
    const bytes = await handle.readFile();
    if (bytes.length > limit) throw fileError(field, `${path} is more than the ${limit} bytes allowed`);
    return bytes;
  } catch (err) {
    if (err instanceof MtlsGateConfigError) throw err;
    throw fileError(field, `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  } finally {
    await handle.close();
  }
}

function decode(bytes: Buffer, path: string, field: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw fileError(field, `${path} is not valid UTF-8`, err);
  }
}

function join(field: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${field}[${JSON.stringify(key)}]`;
  return field === '' ? key : `${field}.${key}`;
}

function at(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `, line ${line}, column ${offset - before.lastIndexOf('\n')}`;
}

function fileError(field: string, message: string, cause?: unknown): MtlsGateConfigError {
  return new MtlsGateConfigError(ErrorCodes.CONFIG_FILE, field, message, cause);
}

/**
 * {@link loadConfigFile} on a worker thread: the same result and errors, without holding the
 * calling thread while a large file is parsed (the command reads its file this way).
 *
 * @example
 * ```ts
 * import { loadConfigFileOffThread } from 'mtls-gate';
 *
 * const { config } = await loadConfigFileOffThread('/etc/mtls-gate/gateway.yaml');
 * ```
 */
export async function loadConfigFileOffThread(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  // Run from source (tsx: the examples), a worker thread could not load TypeScript: read in place.
  if (import.meta.url.endsWith('.ts')) return loadConfigFile(path, options);
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(new URL('./load-worker.js', import.meta.url), {
    workerData: { path, env: { ...(options.env ?? process.env) } },
  });
  try {
    const reply = await new Promise<
      | { ok: true; loaded: LoadedConfig }
      | { ok: false; error: { code?: ErrorCode; field?: string; message: string; issues?: ConfigIssue[] } }
    >((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the config reader exited (${code})`)));
    });
    if (reply.ok) return reply.loaded;
    const e = reply.error;
    if (e.code && e.field !== undefined) {
      const prefix = `${e.field}: `;
      throw new MtlsGateConfigError(
        e.code,
        e.field,
        e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message,
        undefined,
        e.issues,
      );
    }
    throw new Error(e.message);
  } finally {
    void worker.terminate();
  }
}
