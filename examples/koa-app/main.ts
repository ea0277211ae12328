// A Koa application behind mtls-gate, over HTTP/2 and HTTP/1.1: the guard runs first, /health is
// on the skip-list, every other middleware reads the verified client from ctx.state.mtls.
//   node --import tsx examples/koa-app/main.ts [--port 9445] [--certs DIR]
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Koa from 'koa';
import { createSslStore } from 'mtls-gate';
import { mtlsGuard } from 'mtls-gate/koa';
import { banner, writeDemoPki } from '../shared/demo-pki.js';

const HOST = 'koa.example.test';
const { values } = parseArgs({
  options: { port: { type: 'string', default: '9445' }, certs: { type: 'string', default: 'examples/koa-app/certs' } },
});
const { pki, dir } = await writeDemoPki(resolve(values.certs!), HOST);

const store = createSslStore();
store.set({
  id: 'koa-app',
  cert: pki.server.chain,
  key: pki.server.key,
  snis: [HOST],
  client: { ca: pki.root.cert, skipMtlsUriRegex: ['^/health$'] },
});

const app = new Koa();
app.use(mtlsGuard({ store, onReject: (i) => console.log(`400 ${i.reason}: ${i.detail}`) })).use((ctx) => {
  if (ctx.path === '/health') {
    // On the skip-list: no certificate needed, and ctx.state.mtls is null.
    ctx.body = { ok: true, client: ctx.state.mtls };
  } else if (ctx.path === '/whoami') {
    const id = ctx.state.mtls;
    ctx.body = {
      subject: id?.subject,
      issuer: id?.issuer,
      email: id?.san.email,
      fingerprint256: id?.fingerprint256,
      protocol: ctx.req.httpVersion,
    };
  } else {
    ctx.status = 404;
  }
});

const server = store.attach(http2.createSecureServer({ ...store.tlsOptions(), allowHTTP1: true }, app.callback()));
const sockets = new Set<import('node:tls').TLSSocket>();
server.on('secureConnection', (s: import('node:tls').TLSSocket) => {
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
});
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as import('node:net').AddressInfo;
  console.log(banner('koa-app', HOST, port, dir, '/whoami'));
});
const stop = () => {
  server.close(() => process.exit(0));
  for (const s of sockets) s.destroy();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
