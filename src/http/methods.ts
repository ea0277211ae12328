/** The request methods a route (or a policy entry) may name, as APISIX's. HEAD is not GET. */
export const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'PURGE',
] as const;
