// Type tests for mtls-gate/hono, compiled against the built declarations (not run).

import type { HttpBindings } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { type ClientIdentity, createSslStore } from 'mtls-gate';
import { type MtlsVariables, mtlsGuard } from 'mtls-gate/hono';

const store = createSslStore();

// Typed by the app's Variables.
const app = new Hono<{ Bindings: HttpBindings; Variables: MtlsVariables }>();
app.use(mtlsGuard({ store, exposeReason: false, onReject: (info) => console.warn(info.reason) }));
app.get('/me', (c) => {
  const identity: ClientIdentity | null = c.var.mtls;
  // @ts-expect-error c.var.mtls is ClientIdentity | null, not any
  const wrong: number = c.get('mtls');
  // @ts-expect-error no such property on the identity
  const nope = c.var.mtls?.notAField;
  return c.json({ identity: identity?.subject ?? null, wrong, nope, san: c.var.mtls?.san.dns ?? [] });
});

// Typed by app.use alone, as Koa's ctx.state.
const plain = new Hono().use(mtlsGuard({ store })).get('/', (c) => {
  const identity: ClientIdentity | null = c.var.mtls;
  return c.text(identity?.subject ?? '');
});

// A handler declared apart states what it needs.
export function whoami(c: Context<{ Variables: MtlsVariables }>): Response {
  return c.json({ subject: c.var.mtls?.subject ?? null });
}
app.get('/whoami', whoami);
plain.get('/whoami', whoami);

// @ts-expect-error unknown guard options are refused
mtlsGuard({ store, exposeReasons: true });
// @ts-expect-error the store is required
mtlsGuard({});
