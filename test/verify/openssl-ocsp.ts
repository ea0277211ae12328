// A real `openssl ocsp` responder on a free port, for an `openssl ca` directory laid out as the OCSP
// tests and bench make it (ca/index.txt, ca/cert.pem, signer.pem with OCSPSigning, signer.key).
// It binds every interface; requests go to 127.0.0.1 only.
import { type ChildProcess, spawn } from 'node:child_process';

export async function startOcspResponder(dir: string): Promise<{ url: string; child: ChildProcess; stop(): void }> {
  const child = spawn(
    'openssl',
    [
      'ocsp',
      '-index',
      'ca/index.txt',
      '-port',
      '0',
      '-rsigner',
      'signer.pem',
      '-rkey',
      'signer.key',
      '-CA',
      'ca/cert.pem',
      '-ndays',
      '1',
      '-ignore_err',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /ACCEPT \S*:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`openssl ocsp exited ${code}: ${out}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child, stop: () => child.kill() };
}
