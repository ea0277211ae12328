/**
 * A gateway's whole configuration, the top level of a config file (and, for `ssls` and `services`,
 * of etcd values): defined once from the schemas of the floors below. The library takes the same
 * object (`createGateway`), with PEM as strings or Buffers; a file writes PEM as text or
 * `{ file: PATH }`, resolved by config/load.ts before validation.
 */
import { type ConfigIssue, ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { guardSettingsSchema } from '../guard/schema.js';
import { plainCopy } from '../internal/plain.js';
import {
  detached,
  issuesError,
  lazySchema,
  type SchemaInput,
  type SchemaOutput,
  toIssues,
  type Zod,
  z,
} from '../internal/schema.js';
import { isPlainObject } from '../internal/validate.js';
import { compileServices } from '../router/config.js';
import { routerSettingsSchema, serviceFileSchema, serviceSchema } from '../router/schema.js';
import { serverLimitsSchema } from '../server/limits.js';
import { compileSslObject } from '../ssl/object.js';
import { sslObjectFileSchema, sslObjectSchema, storeOptionsSchema } from '../ssl/schema.js';

const host = lazySchema(() =>
  z.string().min(1).max(253).meta({ description: 'Address to listen on, e.g. 127.0.0.1 or ::' }),
);
const port = lazySchema(() => z.number().int().min(0).max(65535));

const listener = lazySchema(() =>
  z.strictObject({
    host: host().optional().meta({ default: '127.0.0.1' }),
    /** 0 picks a free port (tests). */
    port: port(),
    /**
     * true (default): HTTPS with HTTP/2 and HTTP/1.1 by ALPN, SSL objects chosen by SNI. false: plain HTTP (redirects
     * https-only services, serves the others).
     */
    tls: z.boolean().optional().meta({ default: true }),
    /** Offer TLS session tickets (resumption); each resumed session is still checked by the guard. Default false. */
    sessionTickets: z.boolean().optional().meta({ default: false }),
  }),
);

function build<S extends Zod.ZodType, V extends Zod.ZodType>(ssl: S, service: V) {
  return z.strictObject({
    /** For editors: the JSON Schema this file follows. */
    $schema: z.string().optional(),
    listen: z.array(listener()).min(1).max(16),
    ssls: z.array(ssl).max(1_000_000).optional(),
    services: z.array(service).max(10_000).optional(),
    guard: guardSettingsSchema().optional(),
    router: routerSettingsSchema().omit({ page: true }).optional(),
    store: storeOptionsSchema().omit({ ticketSecret: true }).optional(),
    limits: serverLimitsSchema().optional(),
    /** A plain-HTTP listener for operators: GET /ready, GET /status (revision, objects, last error). */
    status: z.strictObject({ host: host().optional().meta({ default: '127.0.0.1' }), port: port() }).optional(),
    /** One line per request (the verdict, the client's fingerprint), JSON or the common log format. Absent: off. */
    accessLog: z.strictObject({ format: z.enum(['json', 'common']).optional().meta({ default: 'json' }) }).optional(),
    /** How long `close()` (SIGTERM) lets requests in flight finish, in ms. Default 10,000. */
    drainTimeoutMs: z.number().int().min(0).max(600_000).optional().meta({ default: 10_000 }),
  });
}

/** The configuration as the library takes it. */
export const gatewayConfigSchema = lazySchema(() => build(sslObjectSchema(), serviceSchema()));
/** The configuration as a file writes it: the schema of `mtls-gate/schema.json`. */
export const gatewayFileSchema = lazySchema(() => build(sslObjectFileSchema(), serviceFileSchema()));

/** A gateway's configuration: listeners, SSL objects, services, and the settings of each part. */
export interface GatewayConfig extends SchemaInput<typeof gatewayConfigSchema> {}
/** {@link GatewayConfig} after validation. */
export interface ParsedGatewayConfig extends SchemaOutput<typeof gatewayConfigSchema> {}

/** The JSON Schema (draft 2020-12) of a config file, as shipped in `mtls-gate/schema.json`. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(gatewayFileSchema(), {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return {
    ...schema,
    $id: 'https://github.com/mtls-gate/mtls-gate/schema.json',
    title: 'mtls-gate gateway configuration',
  };
}

/**
 * Validates a whole configuration and returns it parsed, or throws an {@link MtlsGateConfigError}
 * whose `issues` list every problem found: all shape problems at once, then, for every SSL object
 * and service whose shape passed, its first deeper problem (PEM, key pair, CA, SNI, path rules),
 * and ids or names given twice. Nothing is applied anywhere. `compileSsls: false` leaves the
 * deeper checks of SSL objects to the store that applies them.
 */
export function validateConfig(input: unknown, options: { compileSsls?: boolean } = {}): ParsedGatewayConfig {
  if (!isPlainObject(input))
    throw new MtlsGateConfigError(
      ErrorCodes.INVALID_OPTION,
      '(config)',
      'expected a configuration object with listen, ssls, services',
    );
  const copy = plainCopy(input, '') as Record<string, unknown>;
  const result = gatewayConfigSchema().safeParse(copy, { reportInput: true });
  const issues: ConfigIssue[] = result.success ? [] : toIssues(result.error);
  const bad = (prefix: string) =>
    issues.some((i) => i.field === prefix || i.field.startsWith(`${prefix}.`) || i.field.startsWith(`${prefix}[`));
  const collect = (err: unknown, at: string) => {
    if (!(err instanceof MtlsGateConfigError)) throw err;
    for (const i of err.issues) {
      const field =
        i.field === '(object)'
          ? at
          : i.field.startsWith('services[0]')
            ? `${at}${i.field.slice('services[0]'.length)}`
            : `${at}.${i.field}`;
      issues.push({ ...i, field });
    }
  };
  const ssls = Array.isArray(copy.ssls) ? copy.ssls : [];
  const ids = new Map<string, number>();
  ssls.forEach((object: unknown, i: number) => {
    if (bad(`ssls[${i}]`)) return;
    try {
      // Building an object's TLS context is the costly part (about 2 ms): a gateway applying the
      // configuration leaves it to store.apply, which compiles each changed object once.
      const id = options.compileSsls === false ? String((object as { id: unknown }).id) : compileSslObject(object).id;
      const first = ids.get(id);
      if (first !== undefined)
        issues.push({
          code: ErrorCodes.INVALID_OPTION,
          field: `ssls[${i}].id`,
          message: `${JSON.stringify(id)} is also the id of ssls[${first}]`,
        });
      else ids.set(id, i);
    } catch (err) {
      collect(err, `ssls[${i}]`);
    }
  });
  const services = Array.isArray(copy.services) ? copy.services : [];
  const names = new Map<string, number>();
  services.forEach((service: unknown, i: number) => {
    if (bad(`services[${i}]`)) return;
    try {
      compileServices([service]);
      const name = (service as { name: string }).name;
      const first = names.get(name);
      if (first !== undefined)
        issues.push({
          code: ErrorCodes.INVALID_OPTION,
          field: `services[${i}].name`,
          message: `${JSON.stringify(name)} is also the name of services[${first}]`,
        });
      else names.set(name, i);
    } catch (err) {
      collect(err, `services[${i}]`);
    }
  });
  if (issues.length > 0) throw issuesError(issues);
  // Rebuilt without prototypes, as every parse is (internal/schema.ts): absent settings stay absent.
  return detached((result as { data: ParsedGatewayConfig }).data) as ParsedGatewayConfig;
}
