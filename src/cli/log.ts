/**
 * The command's log: one line per event, human-readable or JSON, through a bounded buffered writer
 * (internal/lines.ts): a client that makes the gateway refuse requests must not make it wait on its
 * own log. The access log, when on, shares the writer.
 */
import type { Writable } from 'node:stream';
import { MtlsGateConfigError } from '../errors.js';
import type { GatewayEvent } from '../gateway/gateway.js';
import { createLineWriter } from '../internal/lines.js';

export type LogFormat = 'human' | 'json';

const MAX_FIELD = 512;

/** A value a client chose (host, SNI, detail) cut short and printable. */
function clean(v: unknown): string {
  const s = String(v ?? '-');
  const cut = s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}...` : s;
  return /^[\x21-\x7e]*$/.test(cut) && !cut.includes('"') ? cut : JSON.stringify(cut);
}

/** One of our messages with what could break a line (a control character in a quoted value) escaped. */
function printable(s: string): string {
  return (s.length > 4 * MAX_FIELD ? `${s.slice(0, 4 * MAX_FIELD)}...` : s).replace(
    /[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** The fields of an event, flat, in a fixed order. */
function fields(e: GatewayEvent | LogRecord): Record<string, unknown> {
  if (e.type === 'config_error') {
    const err = e.error;
    return {
      type: e.type,
      message: err.message,
      ...(err instanceof MtlsGateConfigError
        ? { issues: err.issues.map((i) => ({ field: i.field, code: i.code, message: i.message })) }
        : {}),
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
  /** A line as it is (the access log's). */
  line(text: string): void;
  /** Writes what is buffered now (before exit). */
  flush(): Promise<void>;
}

export function createLog(format: LogFormat, out: Writable = process.stdout): Log {
  const format1 = (e: GatewayEvent | LogRecord): string => {
    const f = fields(e);
    const time = new Date().toISOString();
    if (format === 'json') return JSON.stringify({ time, event: f.type, ...f, type: undefined });
    const { type, message, issues, ...rest } = f as {
      type: string;
      message?: string;
      issues?: { field: string; code: string; message: string }[];
    };
    if (e.type === 'listening') return `${time} listening on ${e.url} (${e.protocols})`;
    // Our own sentences read as they are; values a client chose are cut and quoted.
    const text = message === undefined ? [] : [printable(message)];
    if (type === 'info') return `${time} ${text.join('')}`;
    const parts = [
      time,
      type,
      ...text,
      ...Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? clean(v.join(',')) : clean(v)}`),
    ];
    const lines = [parts.join(' ')];
    for (const i of issues ?? []) lines.push(`${time} ${type}   ${i.field}: ${clean(i.message)} [${i.code}]`);
    return lines.join('\n');
  };
  const writer = createLineWriter(out, (n) =>
    format1({ type: 'warning', message: `${n} log lines dropped (the log could not keep up)` }),
  );
  return {
    write: (e) => writer.write(format1(e)),
    line: (text) => writer.write(text),
    flush: () => writer.flush(),
  };
}
