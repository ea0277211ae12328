// The one module that imports @peculiar/x509 and its ASN.1 stack (@peculiar/asn1-ocsp for OCSP
// messages). Since 2.0 @peculiar/x509 needs a Reflect metadata polyfill loaded first (its tsyringe
// container throws at import time otherwise), so it is imported here, before the library, and
// nowhere else.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as ocsp from '@peculiar/asn1-ocsp';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Extension } from '@peculiar/asn1-x509';

export { x509, ocsp, AsnConvert, OctetString, AlgorithmIdentifier, Extension };
