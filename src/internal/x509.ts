// The one module that imports @peculiar/x509. Since 2.0 it needs a Reflect metadata polyfill
// loaded first (its tsyringe container throws at import time otherwise), so it is imported here,
// before the library, and nowhere else.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };
