/**
 * The guard's settings that are data (a config file's `guard:`), defined once. The options that
 * are code (`store`, `onReject`) are added by `mtlsGuard`.
 */

import { RejectReasons } from '../errors.js';
import { lazySchema, type SchemaInput, z } from '../internal/schema.js';
import { refusalStatus } from '../policy/schema.js';

/** The guard's settings: the 400 page, its format, and plain HTTP. */
export const guardSettingsSchema = lazySchema(() =>
  z.strictObject({
    /** 400 page body: `default` (nginx's page shape, mtls-gate footer) or `apisix` (byte-exact APISIX/OpenResty page). */
    page: z.enum(['default', 'apisix']).optional().meta({
      description: '400 page body: default (nginx shape) or apisix (byte-exact APISIX page).',
      default: 'default',
    }),
    /** `auto` (default): JSON for clients that prefer application/json, HTML otherwise. */
    format: z
      .enum(['auto', 'html', 'json'])
      .optional()
      .meta({ description: 'auto: JSON for clients that prefer application/json, HTML otherwise.', default: 'auto' }),
    /** Put the reject reason in the response body. Default false: the reason goes to `onReject` only. */
    exposeReason: z
      .boolean()
      .optional()
      .meta({ description: 'Put the reject reason in the 400 body.', default: false }),
    /**
     * Serve requests that did not arrive over TLS (a plain `http.createServer`, `app.listen()`) for
     * hosts whose SSL object has no `client`. Default false: every such request is refused with reason
     * `plain_http`, because a security middleware that silently admits everything when TLS is
     * missing is a trap. Hosts of mTLS objects are refused over plain HTTP either way (`missing`).
     */
    allowPlainHttp: z.boolean().optional().meta({
      description: 'Serve requests that did not arrive over TLS, for hosts whose SSL object has no client.',
      default: false,
    }),
    /**
     * The status answered per reject reason, e.g. `{ missing: 496, expired: 495 }`: 400 (default, as
     * the guide), 401, 403, 421, 495 or 496. An allow-list refusal (`not_allowed`) is answered with the
     * route policy's `status`.
     */
    statusByReason: z.partialRecord(z.enum(RejectReasons), refusalStatus()).optional(),
  }),
);

/** The guard's data settings (see {@link GuardOptions}). */
export interface GuardSettings extends SchemaInput<typeof guardSettingsSchema> {}
