// A real etcd for the fleet's tests: Debian's etcd-server on loopback ports, a temporary data dir,
// stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from '../../src/sources/etcd-client.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Etcd {
  url: string;
  client: EtcdClient;
  child: ChildProcess;
  /** Starts it again on the same ports and data (after stop or kill). */
  restart(): Promise<void>;
  /** SIGKILL (no clean shutdown), resolves when gone. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<Etcd> {
  const dir = mkdtempSync(join(tmpdir(), 'mtls-gate-etcd-'));
  const client = await freePort();
  const peer = await freePort();
  const url = `http://127.0.0.1:${client}`;
  const args = [
    '--name',
    'test',
    '--data-dir',
    join(dir, 'data'),
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls',
    `http://127.0.0.1:${peer}`,
    '--initial-cluster',
    `test=http://127.0.0.1:${peer}`,
  ];
  const etcd: Etcd = {
    url,
    client: new EtcdClient({ endpoints: [url], timeoutMs: 2000 }),
    child: undefined as unknown as ChildProcess,
    async restart() {
      etcd.child = spawn('etcd', args, { stdio: 'ignore' });
      const until = Date.now() + 15_000;
      for (;;) {
        try {
          await etcd.client.rangePrefix('/health-check/');
          return;
        } catch (err) {
          if (Date.now() > until) throw new Error(`etcd did not start: ${(err as Error).message}`, { cause: err });
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    async kill() {
      const gone = new Promise((r) => etcd.child.once('exit', r));
      etcd.child.kill('SIGKILL');
      await gone;
    },
    async stop() {
      if (etcd.child.exitCode === null && etcd.child.signalCode === null) {
        const gone = new Promise((r) => etcd.child.once('exit', r));
        etcd.child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await etcd.restart();
  return etcd;
}
