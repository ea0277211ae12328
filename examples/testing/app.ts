// The application under test: a small orders API behind the mtls-gate guard. Only clients whose
// certificate subject carries OU=orders may write; everyone the CA vouches for may read.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getClientIdentity, mtlsGuard, type SslStore } from 'mtls-gate';

export function createOrdersApp(store: SslStore) {
  const guard = mtlsGuard({ store });
  const orders: { id: number; by: string }[] = [];
  return (req: IncomingMessage, res: ServerResponse) =>
    guard(req, res, () => {
      const client = getClientIdentity(req);
      res.setHeader('content-type', 'application/json');
      if (req.url === '/orders' && req.method === 'GET') {
        res.end(JSON.stringify(orders));
      } else if (req.url === '/orders' && req.method === 'POST') {
        if (!client || !/(^|,)OU=orders(,|$)/.test(client.subject)) {
          res.statusCode = 403;
          res.end(JSON.stringify({ error: 'writers need OU=orders' }));
          return;
        }
        orders.push({ id: orders.length + 1, by: client.subject });
        res.statusCode = 201;
        res.end(JSON.stringify(orders.at(-1)));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
}
