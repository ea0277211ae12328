/**
 * The test harness: a PKI minted in-process ({@link createTestPki}), a server on 127.0.0.1 with
 * the store's TLS ({@link startTestServer}), and a client that presents a certificate or none,
 * over HTTP/1.1 or HTTP/2 ({@link testRequest}).
 *
 * @module mtls-gate/testing
 */

export type { ClientCertificate, TestRequestOptions, TestResponse } from './client.js';
export { testRequest } from './client.js';
export type { ClientShape, IssueOptions, KeyType, TestCa, TestCert, TestPki, TestPkiOptions } from './pki.js';
export { createTestPki } from './pki.js';
export type { CallbackApp, TestHandler, TestProtocol, TestServer, TestServerOptions } from './server.js';
export { startTestServer } from './server.js';
