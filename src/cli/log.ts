/**
 * The command's log: one line per event, human-readable or JSON. Lines are buffered and written in
 * chunks a few times a second, never one synchronous write per request (stdout to a pipe or a file
 * is synchronous in Node on Linux): a client that makes the gateway refuse requests must not make it
 * wait on its own log. The buffer is bounded; beyond it lines are dropped and counted. Chunks are cut
 * at line ends below 4 KiB, the size a pipe writes atomically, so the lines of several workers
 * sharing one stdout never interleave.
 */
import type { Writable } from 'node:stream';
import type { GatewayEvent } from '../gateway/gateway.js';
import { MtlsGateConfigError } from '../errors.js';

export type LogFormat = 'human' | 'json';

const MAX_BUFFER = 4 * 1024 * 1024;
const MAX_FIELD = 512;
const CHUNK = 4000;
const FLUSH_MS = 50;

/** A value a client chose (host, SNI, detail) cut short and printable. */
function clean(v: unknown): string {
  const s = String(v ?? '-');
  const cut = s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}...` : s;
  return /^[\x21-\x7e]*$/.test(cut) && !cut.includes('"') ? cut : JSON.stringify(cut);
}

/** One of our messages with what could break a line (a control character in a quoted value) escaped. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return (s.length > 4 * MAX_FIELD ? `${s.slice(0, 4 * MAX_FIELD)}...` : s).replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The fields of an event, flat, in a fixed order. */
function fields(e: GatewayEvent | LogRecord): Record<string, unknown> {
  if (e.type === 'config_error') {
    const err = e.error;
    return {
      type: e.type,
      message: err.message,
      ...(err instanceof MtlsGateConfigError ? { issues: err.issues.map((i) => ({ field: i.field, code: i.code, message: i.message })) } : {}),
    };
  }
  return e as unknown as Record<string, unknown>;
}

/** A line the command writes that is not a gateway event. */
export interface LogRecord {
  type: 'info' | 'warning' | 'error';
  message: string;
  [key: string]: unknown;
}

export interface Log {
  write(e: GatewayEvent | LogRecord): void;
  /** Writes what is buffered now (before exit). */
  flush(): Promise<void>;
}

export function createLog(format: LogFormat, out: Writable = process.stdout): Log {
  let buffer: string[] = [];
  let size = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  const format1 = (e: GatewayEvent | LogRecord): string => {
    const f = fields(e);
    const time = new Date().toISOString();
    if (format === 'json') return JSON.stringify({ time, event: f.type, ...f, type: undefined });
    const { type, message, issues, ...rest } = f as { type: string; message?: string; issues?: { field: string; code: string; message: string }[] };
    if (e.type === 'listening') return `${time} listening on ${e.url} (${e.protocols})`;
    // Our own sentences read as they are; values a client chose are cut and quoted.
    const text = message === undefined ? [] : [printable(message)];
    if (type === 'info') return `${time} ${text.join('')}`;
    const parts = [time, type, ...text, ...Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? clean(v.join(',')) : clean(v)}`)];
    const lines = [parts.join(' ')];
    for (const i of issues ?? []) lines.push(`${time} ${type}   ${i.field}: ${clean(i.message)} [${i.code}]`);
    return lines.join('\n');
  };

  const drain = async () => {
    timer = undefined;
    const lines = buffer;
    buffer = [];
    size = 0;
    if (dropped > 0) {
      lines.push(format1({ type: 'warning', message: `${dropped} log lines dropped (the log could not keep up)` }));
      dropped = 0;
    }
    let chunk = '';
    for (const l of lines) {
      if (chunk.length + l.length + 1 > CHUNK && chunk) {
        await put(chunk);
        chunk = '';
      }
      chunk += `${l}\n`;
    }
    if (chunk) await put(chunk);
  };
  const put = (chunk: string) =>
    new Promise<void>((resolve) => {
      if (out.write(chunk)) resolve();
      else out.once('drain', resolve);
    });

  return {
    write(e) {
      const line = format1(e);
      if (size + line.length > MAX_BUFFER) {
        dropped++;
        return;
      }
      buffer.push(line);
      size += line.length;
      timer ??= setTimeout(() => {
        writing = writing.then(drain);
      }, FLUSH_MS);
    },
    async flush() {
      if (timer) clearTimeout(timer);
      writing = writing.then(drain);
      await writing;
    },
  };
}
