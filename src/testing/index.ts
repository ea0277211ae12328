/**
 * The test harness: a PKI minted in-process ({@link createTestPki}), a server on 127.0.0.1 with
 * the store's TLS ({@link startTestServer}), and a client that presents a certificate or none,
 * over HTTP/1.1 or HTTP/2 ({@link testRequest}).
 *
 * @module mtls-gate/testing
 */
export { createTestPki } from './pki.js';
export type { TestPki, TestPkiOptions, TestCert, TestCa, IssueOptions, ClientShape, KeyType } from './pki.js';
export { startTestServer } from './server.js';
export type { TestServer, TestServerOptions, TestHandler, CallbackApp, TestProtocol } from './server.js';
export { testRequest } from './client.js';
export type { TestRequestOptions, TestResponse, ClientCertificate } from './client.js';
