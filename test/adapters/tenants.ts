// The adapters' shared fixture: a store of two tenants, A (a.test, with a skip-list for /public/) and B
// (b.test), each with its own client CA, and a valid client certificate of each.
import { createSslStore, type SslStore } from '../../src/index.js';
import { createTestPki, type TestCert } from '../../src/testing/index.js';

export async function twoTenants(): Promise<{ store: SslStore; certA: TestCert; certB: TestCert }> {
  const a = await createTestPki({ serverNames: ['a.test'], name: 'tenant a' });
  const b = await createTestPki({ serverNames: ['b.test'], name: 'tenant b' });
  const store = createSslStore();
  store.set({
    id: 'A',
    cert: a.server.chain,
    key: a.server.key,
    snis: ['a.test', '*.a.test'],
    client: { ca: a.root.cert, skipMtlsUriRegex: ['^/public/'] },
  });
  store.set({
    id: 'B',
    cert: b.server.chain,
    key: b.server.key,
    snis: ['b.test', '*.b.test'],
    client: { ca: b.root.cert },
  });
  return { store, certA: await a.client('valid'), certB: await b.client('valid') };
}
