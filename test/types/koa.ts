// Type tests for mtls-gate/koa, compiled against the built declarations (not run).

import type { ParameterizedContext } from 'koa';
import Koa from 'koa';
import type { ClientIdentity } from 'mtls-gate';
import { createSslStore } from 'mtls-gate';
import { type MtlsState, mtlsGuard, mtlsRouter } from 'mtls-gate/koa';

const store = createSslStore();
const app = new Koa();

app.use(mtlsGuard({ store })).use((ctx) => {
  const identity: ClientIdentity | null = ctx.state.mtls;
  // @ts-expect-error ctx.state.mtls is ClientIdentity | null, not any
  const wrong: number = ctx.state.mtls;
  // @ts-expect-error no such property on the identity
  ctx.body = ctx.state.mtls?.notAField;
  ctx.body = { identity, wrong, subject: ctx.state.mtls?.subject, san: ctx.state.mtls?.san.dns };
});

// A handler declared apart from app.use states what it needs.
export function whoami(ctx: ParameterizedContext<MtlsState>): string | undefined {
  return ctx.state.mtls?.fingerprint256;
}

// @ts-expect-error unknown guard options are refused
mtlsGuard({ store, exposeReasons: true });
// @ts-expect-error the store is required
mtlsGuard({});
// @ts-expect-error a router from createRouter is required
mtlsRouter({});
