// An Express application behind mtls-gate: the guard runs first, /health is on the skip-list,
// every other handler reads the verified client from req.mtls.
//   node --import tsx examples/express-app/main.ts [--port 9444] [--certs DIR]
import https from 'node:https';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import express from 'express';
import { createSslStore } from 'mtls-gate';
import { mtlsGuard } from 'mtls-gate/express';
import { banner, writeDemoPki } from '../shared/demo-pki.js';

const HOST = 'express.example.test';
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9444' },
    certs: { type: 'string', default: 'examples/express-app/certs' },
  },
});
const { pki, dir } = await writeDemoPki(resolve(values.certs!), HOST);

const store = createSslStore();
store.set({
  id: 'express-app',
  cert: pki.server.chain,
  key: pki.server.key,
  snis: [HOST],
  client: { ca: pki.root.cert, skipMtlsUriRegex: ['^/health$'] },
});

const app = express();
app.use(mtlsGuard({ store, onReject: (i) => console.log(`400 ${i.reason}: ${i.detail}`) }));
app.get('/health', (req, res) => {
  // On the skip-list: no certificate needed, and req.mtls is null.
  res.json({ ok: true, client: req.mtls });
});
app.get('/whoami', (req, res) => {
  // The guard let the request through, so req.mtls is the verified client here.
  res.json({
    subject: req.mtls?.subject,
    issuer: req.mtls?.issuer,
    email: req.mtls?.san.email,
    fingerprint256: req.mtls?.fingerprint256,
  });
});

const server = store.attach(https.createServer(store.tlsOptions(), app));
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address() as import('node:net').AddressInfo;
  console.log(banner('express-app', HOST, port, dir, '/whoami'));
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
