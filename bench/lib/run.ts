// What the benchmark drivers share: pinned child processes, their first output line, CPU time, medians.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
export function run(core: number, args: string[]): ChildProcess {
  const full = ['--import', 'tsx', ...args];
  return hasTaskset
    ? spawn('taskset', ['-c', String(core), process.execPath, ...full], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, full, { stdio: ['ignore', 'pipe', 'inherit'] });
}

export async function firstLine(child: ChildProcess): Promise<string> {
  for await (const line of createInterface({ input: child.stdout! })) return line as string;
  throw new Error('no output');
}

/** User + system CPU seconds of a process (all its threads). */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
