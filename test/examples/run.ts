// Starting an example the way its README line starts it, and curling it.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Running {
  child: ChildProcess;
  port: number;
  output: string[];
}

/** Spawns `node --import tsx <script> ...args` and resolves once it prints "listening on https://127.0.0.1:PORT". */
export async function startExample(script: string, args: string[]): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const output: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not start: ${output.join('\n')}`)), 30_000);
    rl.on('line', (line) => {
      output.push(line);
      // The example's banner ("mtls-auth-app listening on ..."), not a log line (which starts with its time).
      const m = /^[a-z][\w-]* listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`example exited ${code}: ${output.join('\n')}`)));
  });
  return { child, port, output };
}

/** SIGINT, then the exit code. */
export async function stopExample(r: Running): Promise<number | null> {
  if (r.child.exitCode !== null) return r.child.exitCode;
  const exited = new Promise<number | null>((resolve) => r.child.once('exit', (code) => resolve(code)));
  r.child.kill('SIGINT');
  return exited;
}

/** curl -i to `https://host:port/path` resolved to loopback, trusting `dir/ca.crt`. */
export async function curl(dir: string, host: string, port: number, path: string, ...extra: string[]) {
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '-i',
      `https://${host}:${port}${path}`,
      '--resolve',
      `${host}:${port}:127.0.0.1`,
      '--cacert',
      join(dir, 'ca.crt'),
      ...extra,
    ],
    { encoding: 'latin1' },
  );
  const split = stdout.indexOf('\r\n\r\n');
  return {
    status: stdout.slice(0, stdout.indexOf('\r\n')).trim(),
    headers: stdout.slice(0, split).toLowerCase(),
    body: stdout.slice(split + 4),
  };
}
