// What the benchmark drivers share: pinned child processes, their output lines, CPU time, memory, medians.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

/** Runs a TypeScript script (through tsx) pinned to `core` when taskset exists. */
export function run(core: number, args: string[], nodeArgs: string[] = []): ChildProcess {
  const full = [...nodeArgs, '--import', 'tsx', ...args];
  return spawnPinned(core, process.execPath, full);
}

// Every child still running when the driver exits (normally or on an error) is stopped.
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
});

/** Spawns any program pinned to `core` (stdout piped, stderr inherited). taskset execs, so the pid is the program's. */
export function spawnPinned(core: number, file: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const opts = { stdio: ['ignore', 'pipe', 'inherit'] as ('ignore' | 'pipe' | 'inherit')[], ...(env ? { env } : {}) };
  const child = hasTaskset ? spawn('taskset', ['-c', String(core), file, ...args], opts) : spawn(file, args, opts);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Successive stdout lines of a child: `next()` resolves with the next one, rejects when the output ends. */
export function lines(child: ChildProcess): { next(): Promise<string> } {
  const it = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async next() {
      const r = await it.next();
      if (r.done) throw new Error('no more output');
      return r.value as string;
    },
  };
}

export async function firstLine(child: ChildProcess): Promise<string> {
  return lines(child).next();
}

/** The last line of a child's output (the load generator's result). */
export async function lastLine(child: ChildProcess): Promise<string> {
  let last: string | undefined;
  for await (const line of createInterface({ input: child.stdout! })) last = line as string;
  if (last === undefined) throw new Error('no output');
  return last;
}

/** User + system CPU seconds of a process (all its threads); 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** Resident memory of a process in MB (VmRSS); 0 once it is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** A process and its direct children (nginx: master + workers). */
export function withChildren(pid: number): number[] {
  const out = [pid];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const c = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (c) out.push(...c.split(' ').map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** CPU seconds used by every process on the machine (from /proc/stat), for spotting foreign load. */
export function machineCpuSeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0)) / 100;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
