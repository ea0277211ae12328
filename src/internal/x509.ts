// The one module that loads @peculiar/x509 and its ASN.1 stack (@peculiar/asn1-ocsp for OCSP
// messages), on first use (internal/lazy.ts): reading configured certificates thoroughly, OCSP, and
// minting test certificates need it; a guard judging clients does not. Since 2.0 @peculiar/x509 needs
// a Reflect metadata polyfill loaded first (its tsyringe container throws at load time otherwise),
// so it is loaded here, before the library, and nowhere else. The polyfill defines Reflect.metadata
// globally: loaded only with @peculiar/x509, it is not there for an application that never needs it.

import type * as Ocsp from '@peculiar/asn1-ocsp';
import type * as Schema from '@peculiar/asn1-schema';
import type * as AsnX509 from '@peculiar/asn1-x509';
import type * as X509 from '@peculiar/x509';
import { lazyModule, requireDependency } from './lazy.js';

export type { Ocsp, X509 };

export const x509 = lazyModule<typeof X509>(() => {
  requireDependency('reflect-metadata');
  return requireDependency('@peculiar/x509') as typeof X509;
});
/** @peculiar/asn1-ocsp, asn1-schema and asn1-x509: the same instances @peculiar/x509 uses. */
const asn1 = lazyModule<{ ocsp: typeof Ocsp; schema: typeof Schema; x509: typeof AsnX509 }>(() => {
  requireDependency('reflect-metadata');
  return {
    ocsp: requireDependency('@peculiar/asn1-ocsp') as typeof Ocsp,
    schema: requireDependency('@peculiar/asn1-schema') as typeof Schema,
    x509: requireDependency('@peculiar/asn1-x509') as typeof AsnX509,
  };
});
export const ocsp = lazyModule<typeof Ocsp>(() => asn1.ocsp);
export const asnSchema = lazyModule<typeof Schema>(() => asn1.schema);
export const asnX509 = lazyModule<typeof AsnX509>(() => asn1.x509);
