/**
 * An upstream as the proxy uses it: compiled from a service's `upstream` by the router's
 * configuration, read by the pools and the forwarder. It lives here, below the router, so that the
 * proxy never reaches up into router/.
 */

/**
 * How the upstream request's Host is set: the client's (`pass`), the node's (`node`), or `upstreamHost` (`rewrite`).
 */
export type PassHost = 'pass' | 'node' | 'rewrite';

/** A validated, frozen upstream: its nodes with their origins, and the settings the proxy applies. */
export interface CompiledUpstream {
  readonly key: string;
  readonly scheme: 'http' | 'https';
  readonly nodes: readonly {
    readonly host: string;
    readonly port: number;
    readonly weight: number;
    readonly origin: string;
  }[];
  readonly passHost: PassHost;
  readonly upstreamHost: string | undefined;
  readonly timeout: { readonly connect: number; readonly send: number; readonly read: number };
  readonly pathPrefix: string;
  readonly tls: {
    readonly ca: string | undefined;
    readonly verify: boolean;
    /** SNI and the name verified; default the node's host (or upstreamHost under passHost rewrite). */
    readonly servername: string | undefined;
    /** The gateway's client certificate and key for an mTLS upstream. */
    readonly cert: string | undefined;
    readonly key: string | undefined;
    /** A digest of the above, for pool keys. */
    readonly id: string;
  };
  readonly maxConnections: number;
}
