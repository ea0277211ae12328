// Type tests for mtls-gate/fastify, compiled against the built declarations (not run).
import Fastify from 'fastify';
import { type ClientIdentity, createSslStore } from 'mtls-gate';
import mtlsGate, { fastifyMtlsGate, mtlsGuard } from 'mtls-gate/fastify';

const store = createSslStore();
const app = Fastify({ https: store.tlsOptions() });
store.attach(app.server);
await app.register(mtlsGate, { store, exposeReason: false, onReject: (info) => console.warn(info.reason, info.sslId) });
await app.register(fastifyMtlsGate, { store });
app.get('/me', async (request) => {
  const identity: ClientIdentity | null = request.mtls;
  // @ts-expect-error request.mtls is ClientIdentity | null, not any
  const wrong: number = request.mtls;
  // @ts-expect-error no such property on the identity
  const nope = request.mtls?.notAField;
  return { identity, wrong, nope, subject: request.mtls?.subject };
});

// The route-level hook fits HTTPS and HTTP/2 servers alike.
app.get('/admin', { onRequest: mtlsGuard({ store }) }, async (request) => request.mtls?.fingerprint256);
const h2 = Fastify({ http2: true, https: store.tlsOptions() });
store.attach(h2.server);
await h2.register(mtlsGate, { store });
h2.get('/admin', { onRequest: mtlsGuard({ store }) }, async (request) => request.mtls?.subject);

// @ts-expect-error unknown guard options are refused
await app.register(mtlsGate, { store, exposeReasons: true });
// @ts-expect-error the store is required
await app.register(mtlsGate, {});
// @ts-expect-error unknown guard options are refused
mtlsGuard({ store, exposeReasons: true });
