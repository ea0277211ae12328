// The same tests with vitest:  npx vitest run --config examples/testing/vitest.config.ts
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startOrders } from './setup.js';

let orders: Awaited<ReturnType<typeof startOrders>>;
beforeAll(async () => {
  orders = await startOrders();
});
afterAll(() => orders.server.close());

test('a writer creates an order, over HTTP/2 as well', async () => {
  const r = await orders.send(orders.clients.writer, { method: 'POST', protocol: 'h2' });
  expect(r.status).toBe(201);
  expect(r.json<{ by: string }>().by).toBe('CN=checkout,OU=orders,O=shop');
});

test('a reader reads but may not write', async () => {
  expect((await orders.send(orders.clients.reader)).status).toBe(200);
  expect((await orders.send(orders.clients.reader, { method: 'POST' })).status).toBe(403);
});

test.each([['no certificate'], ['expired'], ['stranger']] as const)('%s: 400 before the app runs', async (which) => {
  const client = which === 'no certificate' ? undefined : orders.clients[which];
  expect((await orders.send(client)).status).toBe(400);
});
