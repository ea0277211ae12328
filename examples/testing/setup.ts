// What both test files share: a PKI, a store and the app on 127.0.0.1, minted per run.
import { createSslStore } from 'mtls-gate';
import { createTestPki, startTestServer, type TestCert, type TestRequestOptions, testRequest } from 'mtls-gate/testing';
import { createOrdersApp } from './app.js';

export async function startOrders() {
  const pki = await createTestPki({ serverNames: ['orders.test'] });
  const store = createSslStore();
  store.set({
    id: 'orders',
    cert: pki.server.chain,
    key: pki.server.key,
    snis: ['orders.test'],
    client: { ca: pki.root.cert },
  });
  const server = await startTestServer(createOrdersApp(store), { store });
  const clients = {
    writer: await pki.client('valid', { subject: 'O=shop, OU=orders, CN=checkout' }),
    reader: await pki.client('valid', { subject: 'O=shop, OU=reports, CN=dashboard' }),
    expired: await pki.client('expired'),
    stranger: await pki.client('otherCa'),
  };
  const send = (client: TestCert | undefined, o: Partial<TestRequestOptions> = {}) =>
    testRequest({ port: server.port, servername: 'orders.test', path: '/orders', ...(client ? { client } : {}), ...o });
  return { server, clients, send };
}
