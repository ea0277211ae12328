// The orders app's own tests with node:test:  node --import tsx --test examples/testing/orders.test.ts

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startOrders } from './setup.js';

let orders: Awaited<ReturnType<typeof startOrders>>;
before(async () => {
  orders = await startOrders();
});
after(() => orders.server.close());

test('a writer creates an order, over HTTP/2 as well', async () => {
  const r = await orders.send(orders.clients.writer, { method: 'POST', protocol: 'h2' });
  assert.equal(r.status, 201);
  assert.equal(r.json<{ by: string }>().by, 'CN=checkout,OU=orders,O=shop');
});

test('a reader reads but may not write', async () => {
  assert.equal((await orders.send(orders.clients.reader)).status, 200);
  assert.equal((await orders.send(orders.clients.reader, { method: 'POST' })).status, 403);
});

test('no certificate, an expired one or one from another CA: 400 before the app runs', async () => {
  for (const client of [undefined, orders.clients.expired, orders.clients.stranger]) {
    assert.equal((await orders.send(client)).status, 400);
  }
});
