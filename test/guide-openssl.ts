// The guide's certificate commands (enable-mutual-tls), run by the openssl command in `dir`: ca.crt/key,
// server.crt/key (CN `host`, X.509 v1 as `openssl x509 -req` writes it) and client.crt/key. The server
// request gets -subj because the guide's is interactive.
import { execFileSync } from 'node:child_process';

export function guideOpensslCerts(dir: string, host: string): void {
  const openssl = (command: string) =>
    execFileSync('openssl', command.split(' '), { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req -x509 -nodes -new -keyout ca.key -out ca.crt -days 3650 -subj /C=/ST=/L=/O=/OU=web/CN=private_ca');
  openssl(`req -newkey rsa:2048 -nodes -days 3650 -keyout server.key -out server.req -subj /CN=${host}`);
  openssl('x509 -req -days 3650 -set_serial 01 -in server.req -out server.crt -CA ca.crt -CAkey ca.key');
  openssl('req -newkey rsa:2048 -nodes -days 3650 -keyout client.key -out client.req -subj /C=/ST=/L=/O=/OU=web/');
  openssl('x509 -req -days 3650 -set_serial 01 -in client.req -out client.crt -CA ca.crt -CAkey ca.key');
}
