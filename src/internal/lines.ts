/**
 * A bounded, buffered line writer: lines are written in chunks a few times a second, never one
 * synchronous write per line (stdout to a pipe or a file is synchronous in Node on Linux), so a
 * client that makes the gateway log cannot make it wait on its own log. Beyond the buffer, lines are
 * dropped and counted. Chunks are cut at line ends below 4 KiB, the size a pipe writes atomically,
 * so the lines of several processes sharing one stdout never interleave.
 */
import type { Writable } from 'node:stream';

const MAX_BUFFER = 4 * 1024 * 1024;
const CHUNK = 4000;
const FLUSH_MS = 50;

export interface LineWriter {
  write(line: string): void;
  /** Writes what is buffered now (before exit). */
  flush(): Promise<void>;
}

/** `dropped(n)` gives the line that reports n dropped lines. */
export function createLineWriter(out: Writable, dropped: (n: number) => string): LineWriter {
  let buffer: string[] = [];
  let size = 0;
  let lost = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  const put = (chunk: string) =>
    new Promise<void>((resolve) => {
      if (out.write(chunk)) resolve();
      else out.once('drain', resolve);
    });
  const drain = async () => {
    timer = undefined;
    const lines = buffer;
    buffer = [];
    size = 0;
    if (lost > 0) {
      lines.push(dropped(lost));
      lost = 0;
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
  return {
    write(line) {
      if (size + line.length > MAX_BUFFER) {
        lost++;
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
      timer = undefined;
      writing = writing.then(drain);
      await writing;
    },
  };
}
