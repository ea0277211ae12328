/**
 * Where the guard finds the `mtls` policy of a request: the router's routes (the same match the
 * router then uses: one decision), or, for an application with its own routes, a list of
 * `{ path, pathType, methods?, hosts?, mtls }` matched by the router's rules (host scope first, exact
 * paths before prefixes, longer prefixes first, a wildcard host covering any depth).
 */
import { ErrorCodes, MtlsGateConfigError } from '../errors.js';
import { METHODS } from '../http/methods.js';
import { RouteTable } from '../http/route-table.js';
import { targetOf } from '../http/target.js';
import type { HttpRequest } from '../http/types.js';
import { plainCopy } from '../internal/plain.js';
import { lazySchema, parse, pemInput, type SchemaInput, z } from '../internal/schema.js';
import { describe } from '../internal/validate.js';
import { normalizeServername, sniPatternProblem } from '../ssl/sni.js';
import { type CompiledPolicy, compilePolicy } from './policy.js';
import { mtlsPolicySchema } from './schema.js';

/** The symbol under which a policy source answers (the router has it; so does {@link policyList}'s result). */
export const kPolicyLookup = Symbol('mtls-gate.policyLookup');

/**
 * The route a router's policy lookup matched for a request, with the table it came from: the router
 * reuses it (one decision for guard and router), observers read its name.
 */
export const kMatched = Symbol('mtls-gate.matched');
export type Matched = {
  [kMatched]?: { table: object; route: { readonly service: string; readonly route: string } | undefined };
};

/** `service/route` of the route the guard's lookup matched for `req`, if any. */
export function matchedRouteName(req: object): string | undefined {
  const r = (req as Matched)[kMatched]?.route;
  return r ? `${r.service}/${r.route}` : undefined;
}

/** Something the guard can ask for a request's policy: a router, or a {@link policyList}. */
export interface PolicySource {
  /** @internal */
  [kPolicyLookup](req: object, host: string, path: string, method: string): CompiledPolicy | undefined;
}

export const isPolicySource = (v: unknown): v is PolicySource =>
  (typeof v === 'function' || (typeof v === 'object' && v !== null)) &&
  typeof (v as Partial<PolicySource>)[kPolicyLookup] === 'function';

const entrySchema = lazySchema(() =>
  z.strictObject({
    /** Path; with `pathType: 'prefix'` (or a trailing `*`) a plain string prefix. */
    path: z.string().regex(/^\/[^?#\s\\]{0,4095}$/, { error: 'expected a path starting with "/"' }),
    pathType: z.enum(['exact', 'prefix']).optional(),
    methods: z.array(z.enum(METHODS)).min(1).max(16).optional(),
    hosts: z.array(z.string().max(253)).min(1).max(64).optional(),
    mtls: mtlsPolicySchema(pemInput()),
  }),
);
/** One entry of {@link policyList}. */
export interface PolicyEntry extends SchemaInput<typeof entrySchema> {}

interface PolicyRoute {
  readonly fullPath: string;
  readonly exact: boolean;
  readonly methods: ReadonlySet<string> | undefined;
  readonly hosts: readonly string[];
  readonly mtls: CompiledPolicy;
}

/**
 * Compiles per-path policies for a guard used without the router (`mtlsGuard({ store, policies })`
 * takes the array directly). Errors name the entry: `policies[2].mtls.allow.san[0].regex`.
 */
export function policyList(input: readonly PolicyEntry[]): PolicySource {
  const entries = parse(z.array(entrySchema()).max(10_000), plainCopy(input, 'policies'), 'policies');
  const routes: PolicyRoute[] = entries.map((e, i) => {
    const field = `policies[${i}]`;
    let path = e.path;
    let exact = (e.pathType ?? 'exact') === 'exact';
    if (path.endsWith('*') && !path.slice(0, -1).includes('*')) {
      path = path.slice(0, -1);
      exact = false;
    }
    const hosts = (e.hosts ?? []).map((h, j) => {
      const n = normalizeServername(h);
      const problem = n === '*' ? 'a lone "*" is the same as no hosts; leave hosts out' : sniPatternProblem(n);
      if (problem)
        throw new MtlsGateConfigError(ErrorCodes.INVALID_OPTION, `${field}.hosts[${j}]`, `${describe(h)}: ${problem}`);
      return n;
    });
    return Object.freeze({
      fullPath: exact ? fold(path) : path.toLowerCase(),
      exact,
      methods: e.methods && new Set<string>(e.methods),
      hosts,
      mtls: compilePolicy(e.mtls, `${field}.mtls`),
    });
  });
  const table = new RouteTable(routes);
  return Object.freeze({
    [kPolicyLookup]: (req: object, host: string, path: string, method: string) => {
      // Frameworks route the raw path, case-insensitively and with or without a trailing slash
      // (Express's and @koa/router's defaults): entries match that way, on the raw path and on the
      // normalised one; when the two find different entries, both apply.
      const normal = table.match(host, fold(path), method, req)?.mtls;
      const target = targetOf(req as HttpRequest);
      const q = target.indexOf('?');
      const raw = fold(q === -1 ? target : target.slice(0, q));
      const asSent = raw === fold(path) ? normal : table.match(host, raw, method, req)?.mtls;
      if (asSent === normal || asSent === undefined) return normal;
      return normal === undefined ? asSent : combined(normal, asSent);
    },
  });
}

/** A path as list entries are matched: lower-case, without a trailing slash (the root aside). */
const fold = (p: string): string => {
  const l = p.toLowerCase();
  return l.length > 1 && l.endsWith('/') ? l.slice(0, -1) : l;
};

const STRICTNESS = { off: 0, optional: 1, required: 2 } as const;
const combinations = new WeakMap<CompiledPolicy, WeakMap<CompiledPolicy, CompiledPolicy>>();
/** Two policies at once: the stricter mode, only CAs both accept, both allow-lists. */
function combined(a: CompiledPolicy, b: CompiledPolicy): CompiledPolicy {
  let byB = combinations.get(a);
  let c = byB?.get(b);
  if (c) return c;
  const anchors =
    a.anchors && b.anchors ? new Set([...a.anchors].filter((x) => b.anchors!.has(x))) : (a.anchors ?? b.anchors);
  const allow: CompiledPolicy['allow'] =
    a.allow && b.allow
      ? (chain, subject) => a.allow!(chain, subject) && b.allow!(chain, subject)
      : (a.allow ?? b.allow);
  const mode = STRICTNESS[a.mode] >= STRICTNESS[b.mode] ? a.mode : b.mode;
  c = Object.freeze({ ...a, mode, anchors, allow, allowList: a.allowList ?? b.allowList, source: a.source });
  if (!byB) combinations.set(a, (byB = new WeakMap()));
  byB.set(b, c);
  return c;
}
